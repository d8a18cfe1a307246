"""Keep freed memory inside the process during inference (glibc only), so large tensors are not re-zeroed.

By default glibc serves every allocation above a dynamic threshold (128 KiB to 32 MiB) with a fresh `mmap`
and returns it with `munmap` when freed. A U-Net forward allocates and frees hundreds of activations of
many MiB each; every one of them comes back as new pages that the kernel must fault in and zero again.
Measured on the 256 px stage-2 forward (docs/benchmarks.md, "U-Net"), that is millions of page faults and
about a tenth of the CPU time. With mmap off and trimming off, freed blocks stay in the heap and are reused.

The price: freed memory is not given back to the system on its own, and blocks of many sizes from several
threads fragment the heap: without a release, the 300 s 1080p run peaked at 1592 MiB against 1396 MiB for
10 s (docs/benchmarks.md). So the pipeline calls `release_freed_memory()` once per 16-frame chunk: the
steps inside a chunk reuse their blocks, and what is free at the chunk's end goes back (`malloc_trim`), so
memory stays flat with length. Turned off with
`allocator.keep_freed_memory: false` in configs/inference.yaml (read by `latentsync.api.build_pipeline`).
Equivalent to starting the process with `MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647`; a no-op on
other C libraries (macOS, musl, Windows).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import platform

logger = logging.getLogger(__name__)

# mallopt parameter numbers from glibc's <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4

_applied = False


@functools.cache
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



def release_freed_memory() -> None:
    """Give the free heap back to the system (glibc `malloc_trim`); a no-op unless the setting is applied."""
    if _applied:
        _glibc().malloc_trim(0)
