"""Fair turns at the SQL workers (metric_tracker_rl.sql.pool) for the server's sessions, between clients.

A client is its peer address (an IPv6 /64). Slow statements are told apart from quick ones by how long they hold a
worker and what they cost it, so slow queries, from however many addresses, always leave a worker to the cheap ones;
among waiting clients, the one that runs the fewest statements goes first. A client the gate has not seen lately
counts as slow until one of its statements ends quickly: an attacker with a fresh address for every slow statement
gets no more than one that is known to be slow. Standing is earned continuously: a statement that runs on the worker
kept for quick clients and turns slow there is demoted (its `Turn`'s `demoted` event is set): its caller stops it
and asks again, as the slow client it now is, so one quick statement never buys a slow one the last free worker.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import AsyncIterator, Callable

from metric_tracker_rl.sql import ledger

# A turn held this long makes its client slow for SLOW_MEMORY_S (FairGate): a typical statement takes milliseconds,
# one near the time limit seconds.
QUICK_S = 0.25
# A statement that cost its worker this much (the seconds its `Turn` reports: CPU time, which a busy machine does not
# stretch) makes its client slow too: clients whose statements each cost a little under QUICK_S could otherwise hold
# every worker together, and another client's cheap query would queue behind them. A cheap query costs a few
# milliseconds.
COSTLY_S = 0.05
SLOW_MEMORY_S = 60.0


class Turn:
    """A turn at the workers; whoever holds it may say what its statement cost a worker (`seconds`, its CPU time),
    which the gate then counts, against COSTLY_S, instead of the whole turn against QUICK_S (a first statement may
    wait for the workers to start).
    `demoted` is set when the turn holds the worker kept for quick clients and its statement turned slow: the
    holder should stop the statement, leave the turn and take another."""

    def __init__(self) -> None:
        self.seconds: float | None = None
        self.demoted = asyncio.Event()


class FairGate:
    """Turns at the SQL workers for the server's sessions, fair between clients (see the module docstring).
    One per event loop; `slots` is the pool's size.

    A client runs at most `per_client` statements at once. A free slot goes to the waiting client that runs the
    fewest statements; among equals, to one whose recent statements were quick before one not yet seen, then in
    turn. A client is slow while one of its statements has held its turn QUICK_S or more, for SLOW_MEMORY_S after
    one held a worker that long or cost it COSTLY_S (as its holder reports), and until one of its statements ended
    quickly within SLOW_MEMORY_S (an unseen client); slow clients hold at most all slots but one together. The
    last slot is kept for clients known to be quick, so a client's cheap query never waits for the slow ones of
    other clients, however many addresses send them, fresh or known; a new client's first statement waits at most
    for one of theirs to end."""

    def __init__(self, slots: int, per_client: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.slots = slots
        self.per_client = per_client
        self.clock = clock
        self.running: collections.Counter[str] = collections.Counter()
        self.turn_starts: dict[str, list[float]] = {}  # client -> when each of its running turns began
        self.waiting: dict[str, collections.deque[asyncio.Future[float]]] = {}
        self.order: collections.deque[str] = collections.deque()  # clients with waiters, next first
        self.slow_until: dict[str, float] = {}  # client -> when its last slow statement stops counting
        self.quick_until: dict[str, float] = {}  # client -> when its last quick statement stops counting
        self.demotions = 0  # turns demoted off the worker kept for quick clients (for tests and operators)

    @contextlib.asynccontextmanager
    async def turn(self, client: str) -> AsyncIterator[Turn]:
        if not self.waiting and self._may_start(client):
            began = self._grant(client)
        else:
            loop = asyncio.get_running_loop()
            future: asyncio.Future[float] = loop.create_future()
            if client not in self.waiting:
                self.waiting[client] = collections.deque()
                self.order.append(client)
            self.waiting[client].append(future)
            self._dispatch()
            loop.call_later(QUICK_S, self._dispatch)  # running turns may have become slow by then
            try:
                began = await future
            except asyncio.CancelledError:
                if future.done() and not future.cancelled():
                    self._release(client, future.result())  # granted as it was cancelled: hand the turn on
                else:
                    self._withdraw(client, future)
                raise
        held = Turn()
        check = asyncio.get_running_loop().call_later(QUICK_S, self._demote_on_reserve, client, held) \
            if self._on_reserve(client) else None
        try:
            yield held
        finally:
            if check is not None:
                check.cancel()
            if held.seconds is None:
                self._note_duration(client, self.clock() - began, QUICK_S)
            else:
                self._note_duration(client, held.seconds, COSTLY_S)
            self._release(client, began)

    def slow(self, client: str) -> bool:
        """Whether `client` runs a statement that has held its turn QUICK_S, ran a slow one recently, or has run no
        quick one recently (unseen: counted slow until it shows otherwise)."""
        now = self.clock()
        return self.slow_until.get(client, 0.0) > now or self.quick_until.get(client, 0.0) <= now or \
            any(now - began >= QUICK_S for began in self.turn_starts.get(client, ()))

    def _on_reserve(self, client: str) -> bool:
        """Whether `client`'s turn, just granted, took the worker kept for quick clients (every other one is held by
        slow clients)."""
        if self.slots == 1 or self.slow(client):
            return False
        return sum(count for name, count in self.running.items() if self.slow(name)) >= self.slots - 1

    def _demote_on_reserve(self, client: str, held: Turn) -> None:
        """QUICK_S into a turn that took the kept worker: its statement is slow, and if every other worker is still
        held by other clients' slow statements it holds the last one as a slow statement: demoted."""
        others = sum(count for name, count in self.running.items() if name != client and self.slow(name))
        if others >= self.slots - 1:
            self.demotions += 1
            ledger.record(demotions=1)
            held.demoted.set()

    def _note_duration(self, client: str, seconds: float, slow_from_s: float) -> None:
        now = self.clock()
        (self.slow_until if seconds >= slow_from_s else self.quick_until)[client] = now + SLOW_MEMORY_S
        for table in (self.slow_until, self.quick_until):
            for name in [name for name, until in table.items() if until <= now]:
                del table[name]  # forgotten: the tables stay as small as the clients seen recently

    def _may_start(self, client: str) -> bool:
        total = sum(self.running.values())
        if total >= self.slots or self.running[client] >= self.per_client:
            return False
        if self.slots == 1 or not self.slow(client):
            return True
        slow_running = sum(count for name, count in self.running.items() if self.slow(name))
        return slow_running < self.slots - 1

    def _grant(self, client: str) -> float:
        self.running[client] += 1
        began = self.clock()
        self.turn_starts.setdefault(client, []).append(began)
        return began

    def _release(self, client: str, began: float) -> None:
        self.running[client] -= 1
        if self.running[client] <= 0:
            del self.running[client]
        starts = self.turn_starts.get(client, [])
        if began in starts:
            starts.remove(began)
        if not starts:
            self.turn_starts.pop(client, None)
        self._dispatch()

    def _withdraw(self, client: str, future: asyncio.Future[float]) -> None:
        queue = self.waiting.get(client)
        if queue is not None and future in queue:
            queue.remove(future)
            if not queue:
                del self.waiting[client]
                self.order.remove(client)

    def _dispatch(self) -> None:
        """Grant free slots, each to the waiting client that may start and runs the fewest statements (one known
        to be quick before one not yet seen, then the earliest in turn)."""
        while True:
            ready = [client for client in self.order if self._may_start(client)]
            if not ready:
                return
            now = self.clock()
            client = min(ready, key=lambda name: (self.running[name], self.quick_until.get(name, 0.0) <= now))
            self.order.remove(client)
            queue = self.waiting[client]
            future = queue.popleft()
            if queue:
                self.order.append(client)  # its next statement waits for its next turn
            else:
                del self.waiting[client]
            if future.done():  # cancelled, its waiter not yet told: it takes no turn
                continue
            future.set_result(self._grant(client))
