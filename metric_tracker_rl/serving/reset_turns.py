"""Resets take turns like SQL statements: one episode is built at a time, on a thread, and waiting clients go in
turn, so a client resetting many sessions back to back (an abyss episode is a few hundred milliseconds of CPU)
holds up another client's reset by one build at most, and never the event loop.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import weakref
from collections.abc import AsyncIterator


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
