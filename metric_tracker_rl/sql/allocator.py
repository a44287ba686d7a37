"""The C allocator's trim, for the server and its SQL workers (`serving.memory_release`, `sql.worker`).

glibc's malloc keeps what a thread frees in that thread's arena for reuse, and returns it to the system only from
the top of an arena; `malloc_trim(0)` returns the free pages of every arena. musl and macOS have none.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable


def malloc_trim() -> Callable[[], None] | None:
    """A call of glibc's malloc_trim(0), or None where the C library has none."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int

    def trim_all() -> None:
        trim(0)

    return trim_all
