"""Giving an ended episode's memory back to the system, not only to the allocator.

A warehouse episode's arrays are many small and middle-sized blocks, allocated by whichever thread built or
served it (the event loop, a build thread, a SQL thread). glibc's malloc keeps what they free in that thread's
arena for reuse and returns it to the system only from the top of an arena: after 39 warehouse sessions held and
closed, the server kept 300 MB it no longer used. `malloc_trim(0)` returns the free pages of every arena.

`release_soon()` is called where an episode is let go (a session closed, an episode replaced by a reset). The trim
runs on a timer thread TRIM_DELAY_S later, once for every release within that time: by then the session's objects
are gone (OpenEnv drops a session's environment after closing it), and a wave of closing sessions costs one trim.
Where the C library has no `malloc_trim` (musl, macOS), nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from collections.abc import Callable

TRIM_DELAY_S = 1.0


def _malloc_trim() -> Callable[[], None] | None:
    """glibc's malloc_trim(0), or None where the C library has none."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int

    def trim_all() -> None:
        trim(0)

    return trim_all


class Trimmer:
    """Coalesces requests to trim: one trim `delay_s` after the first request that found none pending."""

    def __init__(self, trim: Callable[[], None] | None, delay_s: float = TRIM_DELAY_S) -> None:
        self.trim, self.delay_s = trim, delay_s
        self.trims = 0  # how many ran (for tests and operators)
        self._pending = False
        self._changed = threading.Condition()

    @property
    def available(self) -> bool:
        return self.trim is not None

    def soon(self) -> None:
        with self._changed:
            if self.trim is None or self._pending:
                return
            self._pending = True
        timer = threading.Timer(self.delay_s, self._run)
        timer.daemon = True
        timer.start()

    def _run(self) -> None:
        with self._changed:
            self._pending = False
        if self.trim is not None:
            self.trim()
        with self._changed:
            self.trims += 1
            self._changed.notify_all()

    def wait_for(self, trims: int, timeout_s: float) -> bool:
        """Whether `trims` trims have run within `timeout_s` (tests wait on this, not on a sleep)."""
        with self._changed:
            return self._changed.wait_for(lambda: self.trims >= trims, timeout_s)


TRIMMER = Trimmer(_malloc_trim())


def release_soon() -> None:
    """An episode was let go: return the memory it freed to the system shortly (see the module docstring)."""
    TRIMMER.soon()
