"""Keep third-party native log lines (mediapipe / TFLite / absl / glog) off the console unless asked for.

They are written by C++ straight to file descriptor 2, so Python's logging cannot silence them, and lines
like `W0000 ... landmark_projection_calculator.cc:186] Using NORM_RECT without IMAGE_DIMENSIONS` or
`All log messages before absl::InitializeLog() ...` look like failures to a newcomer (so do libav's
`[aac @ 0x55c3...] Input buffer exhausted` lines while a damaged video is checked and listed as broken). `filter_native_logs()`
points fd 2 at a pipe read by a thread that drops those lines and forwards everything else, while Python's
own `sys.stderr` (our messages, tracebacks, tqdm bars) keeps writing to the terminal directly.
"""

from __future__ import annotations

import io
import os
import re
import sys
import threading

NATIVE_LOG_LINE = re.compile(
    rb"^(?:[WIEF]\d{4} \d\d:\d\d:[\d.]+\s+\d+ \S+:\d+\]"  # glog / absl: W0000 00:00:1796159452.28 4905 file.cc:114]
    rb"|WARNING: All log messages before absl::InitializeLog\(\)"
    rb"|INFO: Created TensorFlow Lite"
    rb"|INFO: Initialized TensorFlow Lite"
    rb"|\[[\w,]+ @ 0x[0-9a-f]+\] )"  # libav (ffmpeg inside decord / PyAV) on a damaged file: [aac @ 0x55c3...] ...
)
_installed = False


def quiet_native_environment() -> None:
    """Ask the native libraries themselves for fewer messages (read when they load)."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _forward(read_fd: int, terminal_fd: int) -> None:
    with os.fdopen(read_fd, "rb", buffering=0) as pipe:
        pending = b""
        while True:
            data = pipe.read(65536)
            if not data:
                break
            pending += data
            *lines, pending = pending.split(b"\n")
            out = b"".join(line + b"\n" for line in lines if not NATIVE_LOG_LINE.match(line))
            if out:
                os.write(terminal_fd, out)
        if pending and not NATIVE_LOG_LINE.match(pending):
            os.write(terminal_fd, pending)


def filter_native_logs() -> None:
    """Install the filter once per process (no-op where fd 2 cannot be redirected)."""
    global _installed
    if _installed or sys.stderr is not sys.__stderr__:  # already on, or stderr is captured (tests, notebooks)
        return
    quiet_native_environment()
    try:
        sys.stderr.flush()
        terminal_fd = os.dup(2)
        read_fd, write_fd = os.pipe()
        os.dup2(write_fd, 2)
        os.close(write_fd)
    except (OSError, ValueError):  # pragma: no cover - e.g. no fd 2 at all
        return
    sys.stderr = io.TextIOWrapper(os.fdopen(terminal_fd, "wb", buffering=0), encoding="utf-8",
                                  errors="backslashreplace", line_buffering=True, write_through=True)
    threading.Thread(target=_forward, args=(read_fd, terminal_fd), name="native-log-filter", daemon=True).start()
    _installed = True
