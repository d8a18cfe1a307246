"""The one base class of every error a user can fix, and the errors of a stopped or failed write.

Every bad-input error in the library (media, no face, checkpoints and configs of every model, options,
output paths) derives from `InputError`; the CLI, batch mode and the app turn it into exit code 2 / one
message, with no traceback. Anything else is an internal error (exit 1).
"""

from __future__ import annotations

import contextlib
import errno
import signal
import threading

OUT_OF_SPACE_ERRNOS = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)  # disk full, file-size limit, quota


class InputError(ValueError):
    """The user's input or set-up is wrong (missing file, mismatched checkpoint, bad option, ...): exit 2."""


class NoFaceError(InputError, RuntimeError):
    """No usable face: in a frame (`ImageProcessor.affine_transform`, message "Face not detected ...") or in any
    frame of the input video (the face pass). A user error (exit 2) like every `InputError`; also a
    RuntimeError because the official `ImageProcessor.affine_transform` raises `RuntimeError("Face not
    detected")`, so code written against the official layout still catches it."""


class NoSpeakerError(NoFaceError):
    """`--face_choice speaker` found no shot where a visible face speaks while the video's own audio is sound (a
    voice-over): lip-syncing anyone would edit a face that is not speaking. The message names the choices that
    edit a face anyway. `passthrough`: the face choice that edits nobody (every frame passes through, the speaker
    pass's shots kept), which the app's preview shows instead of stopping."""

    def __init__(self, message: str, passthrough=None):
        super().__init__(message)
        self.passthrough = passthrough


class OutputWriteError(InputError):
    """The output could not be written (disk full, file-size limit, no permission). Nothing was left behind."""


class RunStopped(KeyboardInterrupt):
    """The run was stopped by a signal (SIGINT / SIGTERM); `exit_code` is 128 + the signal number."""

    def __init__(self, signum: int):
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")


def stop_on_signals(signals=(signal.SIGINT, signal.SIGTERM)) -> dict:
    """Turn SIGINT/SIGTERM into `RunStopped` in the main thread, so every `with`/`finally` cleans up
    (partial output, temporary folders, worker threads) before the process exits with 130 / 143.
    Returns the previous handlers, for `restore_signals`."""

    _received.clear()

    def handler(signum, _frame):
        _received.append(signum)
        raise RunStopped(signum)

    return {sig: signal.signal(sig, handler) for sig in signals}


_received: list[int] = []  # the signals `stop_on_signals` turned into RunStopped since it was installed


def raise_if_stopped() -> None:
    """Raise RunStopped again for a stop signal that code in between swallowed (a web server's own
    KeyboardInterrupt handling, for one), so the exit code still says how the run ended."""
    if _received:
        raise RunStopped(_received[0])


def restore_signals(previous: dict) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


@contextlib.contextmanager
def signals_deferred(signals=(signal.SIGINT, signal.SIGTERM)):
    """Hold SIGINT/SIGTERM back while a few steps must happen together (publish a file and record it): a
    signal that arrives meanwhile is delivered to the previous handler right after. Main thread only; a
    no-op elsewhere."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: pending.append(signum)) for sig in signals}
    try:
        yield
    finally:
        restore_signals(previous)
        for signum in pending[:1]:
            signal.raise_signal(signum)
