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

Builds go in two lanes, each with its own thread and its own turns: a kind whose builds are known to be cheap (at
most LIGHT_BUILD_S) in the light lane, every other kind (unknown kinds too) in the heavy one. So a cheap reset never
waits for an expensive build under way, only for the cheap builds queued in its own lane by clients that have
used less; a flood of expensive builds from any number of addresses queues behind itself.

Addresses are free to a stranger, so a client never served before is given nothing a known client would lose by
(as at the SQL workers, `sql.fair_gate`): the clients not yet known (`sql.known_clients`: a client's first build
KNOWN_AFTER_S old) take turns as one client, in the order they asked, whose count starts no lower than any known
client's. A parade of never-seen addresses, or a trainer's first rollouts from a few new ones, then holds a known
client's reset for about one build, however many addresses it brings; the clients served before are remembered
for BUILD_MEMORY_S after their last build (an episode may run for many minutes before its client resets again).

A build waits for its turn at most as long as its caller allows (the reset's step bound): one not started by then
leaves the queue (`TurnNotGiven`, which says how many builds still wait), so its client is told instead of waiting
without a word. Builds stay one at a time in each lane: a build is Python under the GIL, and two on two threads
finish no sooner.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import time
import weakref
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import TypeVar

from metric_tracker_rl.sql.known_clients import KnownClients

T = TypeVar("T")
_BUILDS = ThreadPoolExecutor(max_workers=1, thread_name_prefix="episode-build")
_LIGHT_BUILDS = ThreadPoolExecutor(max_workers=1, thread_name_prefix="episode-build-light")
LIGHT_BUILD_S = 0.1  # a kind whose running cost estimate is at most this builds in the light lane
KINDS_KEPT = 256  # build kinds whose cost is remembered (a kind is client text: the table stays bounded)
COST_WEIGHT = 0.3  # of a new build in its kind's running estimate
BUILD_MEMORY_S = 3600.0  # a client whose last build is this old is not yet known again
NEWCOMERS = "(clients not yet known)"  # no address: the one client the clients not yet known take turns as


async def in_build_thread(build: Callable[..., T], *args: object, executor: Executor = _BUILDS, **kwargs: object) -> T:
    """`build(*args, **kwargs)` on a builds' thread (the heavy lane's unless named), in the caller's context (as
    `asyncio.to_thread` would run it)."""
    call = functools.partial(contextvars.copy_context().run, build, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(executor, call)


class TurnNotGiven(Exception):
    """A build that waited its longest for a turn and left the queue without starting."""

    def __init__(self, waited_s: float, still_waiting: int) -> None:
        super().__init__(
            f"its episode waited {waited_s:g} s for a turn at being built and did not start ({still_waiting} more "
            "builds wait, every client's; the server builds one at a time, each client's in the order it asked, and "
            "those of clients it has not served before as one client's)."
        )


class TakeTurns:
    """One holder at a time; among waiting builds, the one that would finish first on its client's count of seconds
    goes next (see the module docstring); each client's own builds in the order it asked."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        costs: dict[str, float] | None = None,
        clients: KnownClients | None = None,
    ) -> None:
        self.clock = clock
        self.clients = KnownClients(BUILD_MEMORY_S, clock) if clients is None else clients
        self.busy = False
        self.waiting: dict[str, list[tuple[asyncio.Future[None], str]]] = {}
        self.spent: dict[str, float] = {}  # seconds of turns, per client, from where it joined
        self.virtual = 0.0  # where the build served last started: where a newcomer starts
        self.costs: dict[str, float] = {} if costs is None else costs  # kind -> its builds' running cost estimate

    @contextlib.asynccontextmanager
    async def turn(self, client: str, kind: str = "", wait_s: float | None = None) -> AsyncIterator[None]:
        """The turn; TurnNotGiven (and out of the queue) if it has not come within `wait_s`."""
        address, client = client, client if self.clients.known(client) else NEWCOMERS
        self.spent[client] = max(self.spent.get(client, 0.0), self._start_count(client))
        if not self.busy and not self.waiting:
            self.busy = True
        else:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self.waiting.setdefault(client, []).append((future, kind))
            try:
                await asyncio.wait_for(asyncio.shield(future), wait_s)
            except (asyncio.CancelledError, asyncio.TimeoutError) as stopped:
                if future.done() and not future.cancelled():
                    self._hand_on()  # granted as it was given up
                else:
                    future.cancel()
                    self._withdraw(client, future)
                if isinstance(stopped, asyncio.TimeoutError):
                    raise TurnNotGiven(wait_s or 0.0, sum(map(len, self.waiting.values()))) from None
                raise
        start = self.spent.get(client, self.virtual)
        self.virtual = max(self.virtual, start)
        began = self.clock()
        self.clients.served(address, began)
        try:
            yield
        finally:
            cost = self.clock() - began
            self.spent[client] = start + cost
            self.clients.left(address)
            self.clients.forget(lambda name: name in self.waiting)  # one holding a turn was seen as it began
            self._learn(kind, cost)
            self._hand_on()

    def _start_count(self, client: str) -> float:
        """Where a client's count starts when it asks: where the builds served are, and for the clients not yet
        known, no lower than any known client's count (they get no turn ahead of one for being new)."""
        if client != NEWCOMERS:
            return self.virtual
        return max([self.virtual, *(spent for name, spent in self.spent.items() if name != NEWCOMERS)])

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
                key=lambda name: (
                    self.spent.get(name, self.virtual) + self.estimate(self.waiting[name][0][1]),
                    name == NEWCOMERS,  # a known client first, on a tie
                ),
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


class BuildLanes:
    """The heavy and the light lane's turns, sharing what each kind's builds cost and which clients are known."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.costs: dict[str, float] = {}
        self.clients = KnownClients(BUILD_MEMORY_S, clock)
        self.heavy = TakeTurns(clock, self.costs, self.clients)
        self.light = TakeTurns(clock, self.costs, self.clients)

    def is_light(self, kind: str) -> bool:
        known = self.costs.get(kind)
        return known is not None and known <= LIGHT_BUILD_S

    @contextlib.asynccontextmanager
    async def turn(self, client: str, kind: str = "", wait_s: float | None = None) -> AsyncIterator[Executor]:
        """A turn in the lane of `kind`'s known cost; yields the thread its build runs on."""
        lane, executor = (self.light, _LIGHT_BUILDS) if self.is_light(kind) else (self.heavy, _BUILDS)
        async with lane.turn(client, kind, wait_s):
            yield executor


_TURNS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, BuildLanes] = weakref.WeakKeyDictionary()


def reset_turns() -> BuildLanes:
    """The running event loop's turns at building episodes."""
    loop = asyncio.get_running_loop()
    found = _TURNS.get(loop)
    if found is None:
        found = _TURNS[loop] = BuildLanes()
    return found
