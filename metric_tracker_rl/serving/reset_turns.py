"""Resets take turns like SQL statements: one episode is built at a time, on a thread, and waiting clients go in
turn, so a client resetting many sessions back to back (an abyss episode is a few hundred milliseconds of CPU)
holds up another client's reset by one build at most, and never the event loop.

The builds run on one thread of their own (`in_build_thread`) at a lower CPU priority (BUILD_NICENESS) than the
rest of the server: a client resetting back to back keeps a core busy, and on a machine with few cores the event
loop and the SQL workers, which answer everyone else's steps, then go first. (The interpreter lock is no
bottleneck: an episode's build gives it up often enough that the loop waits for it about 0.1 ms.)
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import functools
import os
import threading
import weakref
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
BUILD_NICENESS = 10  # added to the process's own (a thread's niceness can be raised, never lowered back)


def _lower_this_threads_priority() -> None:
    with contextlib.suppress(OSError, AttributeError):  # not on Linux, or refused: the builds run as they would
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, 0) + BUILD_NICENESS)


_BUILDS = ThreadPoolExecutor(max_workers=1, thread_name_prefix="episode-build",
                             initializer=_lower_this_threads_priority)


async def in_build_thread(build: Callable[..., T], *args: object, **kwargs: object) -> T:
    """`build(*args, **kwargs)` on the builds' thread, in the caller's context (as `asyncio.to_thread` would run it)."""
    call = functools.partial(contextvars.copy_context().run, build, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_BUILDS, call)


class TakeTurns:
    """One holder at a time; the waiting clients in turn (each client's next call goes after every other waiting
    client's), whatever order they asked in."""

    def __init__(self) -> None:
        self.busy = False
        self.waiting: dict[str, collections.deque[asyncio.Future[None]]] = {}  # in turn: the next client first

    @contextlib.asynccontextmanager
    async def turn(self, client: str) -> AsyncIterator[None]:
        if not self.busy and not self.waiting:
            self.busy = True
        else:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self.waiting.setdefault(client, collections.deque()).append(future)
            try:
                await future
            except asyncio.CancelledError:
                if future.done() and not future.cancelled():
                    self._hand_on()  # granted as it was cancelled
                else:
                    self._withdraw(client, future)
                raise
        try:
            yield
        finally:
            if client in self.waiting:  # its next call goes after every other waiting client's
                self.waiting[client] = self.waiting.pop(client)
            self._hand_on()

    def _withdraw(self, client: str, future: asyncio.Future[None]) -> None:
        queue = self.waiting.get(client)
        if queue is not None and future in queue:
            queue.remove(future)
            if not queue:
                del self.waiting[client]

    def _hand_on(self) -> None:
        while self.waiting:
            client = next(iter(self.waiting))
            queue = self.waiting.pop(client)
            future = queue.popleft()
            if queue:
                self.waiting[client] = queue  # to the back: every other waiting client goes first
            if not future.done():
                future.set_result(None)
                return
        self.busy = False


_TURNS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, TakeTurns] = weakref.WeakKeyDictionary()


def reset_turns() -> TakeTurns:
    """The running event loop's turns at building episodes."""
    loop = asyncio.get_running_loop()
    found = _TURNS.get(loop)
    if found is None:
        found = _TURNS[loop] = TakeTurns()
    return found
