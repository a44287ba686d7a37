"""Give memory back to the system after load, where glibc's malloc would keep it.

Each thread that allocates gets a malloc arena of its own, up to eight per core, and an arena returns its free
pages to the system only from its top. The debugger runs each page event and each tab's connection in a thread, so
after a burst of tabs the server's RSS stays near its peak though the memory is free (the burst's results, charts
and connections were released). `limit_arenas` caps the arenas (as MALLOC_ARENA_MAX=2 would, for every entry point)
and `return_free_memory` asks malloc to hand back what is free (`malloc_trim`), which the debugger's sweep calls
after it released something. Elsewhere than glibc both do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging

M_ARENA_MAX = -8  # mallopt's parameter number (glibc's malloc.h)
ARENAS = 2

logger = logging.getLogger("metric_tracker_rl.memory")


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


def limit_arenas(arenas: int = ARENAS) -> None:
    """Cap malloc's arenas for threads started from now on (call it before the server starts its threads)."""
    libc = _libc()
    if libc is not None and not libc.mallopt(M_ARENA_MAX, arenas):
        logger.warning("malloc did not accept an arena limit of %d", arenas)


def return_free_memory() -> None:
    """Hand malloc's free pages back to the system (a few milliseconds)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
