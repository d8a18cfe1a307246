"""Keep freed memory inside the process during inference (glibc only), so large tensors are not re-zeroed.

By default glibc serves every allocation above a dynamic threshold (128 KiB to 32 MiB) with a fresh `mmap`
and returns it with `munmap` when freed. A U-Net forward allocates and frees hundreds of activations of
many MiB each; every one of them comes back as new pages that the kernel must fault in and zero again.
Measured on the 256 px stage-2 forward (docs/benchmarks.md, "U-Net"), that is millions of page faults and
about a tenth of the CPU time. With mmap off and trimming off, freed blocks stay in the heap and are reused.

The price: memory the process freed is not given back to the system until it exits (its peak stays
resident). For a lip-sync run that peak is reached in the first chunk anyway, so nothing grows; a
long-running host (the app) keeps the footprint of its largest job. Turned off with
`allocator.keep_freed_memory: false` in configs/inference.yaml (read by `latentsync.api.build_pipeline`).
Equivalent to starting the process with `MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647`; a no-op on
other C libraries (macOS, musl, Windows).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import platform

logger = logging.getLogger(__name__)

# mallopt parameter numbers from glibc's <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4

_applied = False


def _glibc():
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:  # pragma: no cover - no loadable C library
        return None


def keep_freed_memory() -> bool:
    """Apply the setting once per process; returns whether glibc accepted it (False elsewhere)."""
    global _applied
    if _applied:
        return True
    libc = _glibc()
    if libc is None:
        return False
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    # M_TRIM_THRESHOLD takes an int: glibc gives heap back only once 2 GiB at its top are free
    ok = libc.mallopt(M_MMAP_MAX, 0) == 1 and libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1) == 1
    _applied = ok
    logger.info("allocator: freed memory kept in the process (mmap off, trim off): %s", ok)
    return ok

