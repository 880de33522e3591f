"""glibc malloc tuning for the worker: fewer arenas and large buffers mmapped, so freed memory leaves the process.

Part of the worker's resident memory is allocator slack left around freed fetch and checkpoint buffers (on
the peers job, 612 MB peak RSS with glibc's defaults against 533 MB with these; docs/benchmarks.md). glibc
reads `MALLOC_ARENA_MAX` and `MALLOC_MMAP_THRESHOLD_` only from the environment a process starts with;
`mallopt` sets the same parameters from inside it. A value the operator already set in the environment is
left alone, and on a C library without `mallopt` (musl, macOS) nothing changes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from collections.abc import Mapping

log = logging.getLogger(__name__)

# mallopt parameter numbers from glibc's <malloc.h>.
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
ARENA_MAX = 2
MMAP_THRESHOLD_BYTES = 128 * 1024
# What each parameter is called in the environment glibc reads at start.
_ENVIRONMENT = {M_ARENA_MAX: "MALLOC_ARENA_MAX", M_MMAP_THRESHOLD: "MALLOC_MMAP_THRESHOLD_"}


def tune(environ: Mapping[str, str]) -> dict[str, int]:
    """Apply the worker's malloc parameters not already set in `environ`; the ones applied, by variable name."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        log.info("no glibc mallopt here: the allocator keeps its defaults")
        return {}
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    applied = {}
    for param, value in ((M_ARENA_MAX, ARENA_MAX), (M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)):
        name = _ENVIRONMENT[param]
        if name in environ:
            continue
        if mallopt(param, value) == 1:
            applied[name] = value
        else:
            log.warning("mallopt refused %s=%d: the allocator keeps its default", name, value)
    return applied


def trim() -> bool:
    """Hand freed heap memory back to the system now (glibc's `malloc_trim`); False where there is none."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        malloc_trim = libc.malloc_trim
    except (OSError, AttributeError):
        return False
    malloc_trim.argtypes = (ctypes.c_size_t,)
    malloc_trim.restype = ctypes.c_int
    return bool(malloc_trim(0))
