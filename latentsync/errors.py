"""The one base class of every error a user can fix, and the errors of a stopped or failed write.

Every bad-input error in the library (media, no face, checkpoints and configs of every model, options,
output paths) derives from `InputError`; the CLI, batch mode and the app turn it into exit code 2 / one
message, with no traceback. Anything else is an internal error (exit 1).
"""

from __future__ import annotations

import signal


class InputError(ValueError):
    """The user's input or set-up is wrong (missing file, mismatched checkpoint, bad option, ...): exit 2."""


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

    def handler(signum, _frame):
        raise RunStopped(signum)

    return {sig: signal.signal(sig, handler) for sig in signals}


def restore_signals(previous: dict) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)
