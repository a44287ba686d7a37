"""Resets take turns like SQL statements: one episode is built at a time, on a thread, and waiting clients go by
what their builds cost, so a client resetting many sessions back to back (a warehouse episode is about half a
second of CPU, ten to twenty times a frontier one), from however many addresses, holds up another client's cheap
reset by about one build, and never the event loop.

The turns are weighted fair queueing over build seconds: each client's builds are counted from where the clients
being served are (no credit for having been away), and the next turn goes to the waiting build that would finish
first on that count, its cost estimated from the builds of its kind so far (`kind`: what the reset asked for, which
decides what is built; an unknown kind is counted as the most expensive one known). A build's cost is its measured
wall time on the builds' thread. The builds run at the server's own priority: fairness among our own builds is
kept here, never bought with priority against the rest of the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import time
import weakref
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
_BUILDS = ThreadPoolExecutor(max_workers=1, thread_name_prefix="episode-build")
KINDS_KEPT = 256  # build kinds whose cost is remembered (a kind is client text: the table stays bounded)
COST_WEIGHT = 0.3  # of a new build in its kind's running estimate


async def in_build_thread(build: Callable[..., T], *args: object, **kwargs: object) -> T:
    """`build(*args, **kwargs)` on the builds' thread, in the caller's context (as `asyncio.to_thread` would run it)."""
    call = functools.partial(contextvars.copy_context().run, build, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_BUILDS, call)


class TakeTurns:
    """One holder at a time; among waiting builds, the one that would finish first on its client's count of seconds
    goes next (see the module docstring); each client's own builds in the order it asked."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.busy = False
        self.waiting: dict[str, list[tuple[asyncio.Future[None], str]]] = {}
        self.spent: dict[str, float] = {}  # seconds of turns, per client, from where it joined
        self.virtual = 0.0  # where the build served last started: where a newcomer starts
        self.costs: dict[str, float] = {}  # kind -> its builds' running cost estimate

    @contextlib.asynccontextmanager
    async def turn(self, client: str, kind: str = "") -> AsyncIterator[None]:
        self.spent[client] = max(self.spent.get(client, 0.0), self.virtual)
        if not self.busy and not self.waiting:
            self.busy = True
        else:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self.waiting.setdefault(client, []).append((future, kind))
            try:
                await future
            except asyncio.CancelledError:
                if future.done() and not future.cancelled():
                    self._hand_on()  # granted as it was cancelled
                else:
                    self._withdraw(client, future)
                raise
        start = self.spent.get(client, self.virtual)
        self.virtual = max(self.virtual, start)
        began = self.clock()
        try:
            yield
        finally:
            cost = self.clock() - began
            self.spent[client] = start + cost
            self._learn(kind, cost)
            self._hand_on()

    def estimate(self, kind: str) -> float:
        return self.costs.get(kind, max(self.costs.values(), default=0.0))

    def _learn(self, kind: str, cost: float) -> None:
        known = self.costs.pop(kind, None)
        self.costs[kind] = cost if known is None else known + COST_WEIGHT * (cost - known)
        if len(self.costs) > KINDS_KEPT:
            del self.costs[next(iter(self.costs))]  # the kind not built for the longest time

    def _withdraw(self, client: str, future: asyncio.Future[None]) -> None:
        queue = self.waiting.get(client)
        if queue is None:
            return
        queue[:] = [entry for entry in queue if entry[0] is not future]
        if not queue:
            del self.waiting[client]

    def _hand_on(self) -> None:
        while self.waiting:
            client = min(
                self.waiting,
                key=lambda name: self.spent.get(name, self.virtual) + self.estimate(self.waiting[name][0][1]),
            )
            queue = self.waiting[client]
            future, _ = queue.pop(0)
            if not queue:
                del self.waiting[client]
            if not future.done():
                self.spent[client] = max(self.spent.get(client, 0.0), self.virtual)
                future.set_result(None)
                return
        self.busy = False
        # Clients with nothing waiting and no more spent than a newcomer would start with need no entry.
        for name in [name for name, spent in self.spent.items() if spent <= self.virtual]:
            del self.spent[name]


_TURNS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, TakeTurns] = weakref.WeakKeyDictionary()


def reset_turns() -> TakeTurns:
    """The running event loop's turns at building episodes."""
    loop = asyncio.get_running_loop()
    found = _TURNS.get(loop)
    if found is None:
        found = _TURNS[loop] = TakeTurns()
    return found
