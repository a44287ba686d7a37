"""Giving an ended episode's memory back to the system, not only to the allocator.

A warehouse episode's arrays are many small and middle-sized blocks, allocated by whichever thread built or
served it (the event loop, a build thread, a SQL thread). glibc's malloc keeps what they free in that thread's
arena for reuse and returns it to the system only from the top of an arena: after a load of warehouse sessions
held and closed, the server kept most of what the load took. `malloc_trim(0)` returns the free pages of every
arena (`sql.allocator`).

`release_soon()` is called where an episode is let go (a session closed, an episode replaced by a reset). The trim
runs on a timer thread TRIM_DELAY_S later, once for every release within that time: by then the session's objects
are gone (OpenEnv drops a session's environment after closing it), and a wave of closing sessions costs one trim.
Where the C library has no `malloc_trim` (musl, macOS), nothing is done.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from metric_tracker_rl.sql.allocator import malloc_trim

TRIM_DELAY_S = 1.0


class Trimmer:
    """Coalesces requests to trim: one trim `delay_s` after the first request that found none pending."""

    def __init__(self, trim: Callable[[], None] | None, delay_s: float = TRIM_DELAY_S) -> None:
        self.trim, self.delay_s = trim, delay_s
        self.trims = 0  # how many ran (for tests and operators)
        self.scheduled = 0  # how many were asked for while none was pending
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
            self.scheduled += 1
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


TRIMMER = Trimmer(malloc_trim())


def release_soon() -> None:
    """An episode was let go: return the memory it freed to the system shortly (see the module docstring)."""
    TRIMMER.soon()
