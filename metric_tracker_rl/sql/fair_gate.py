"""Fair turns at the SQL workers (metric_tracker_rl.sql.pool) for the server's sessions, between clients.

A client is its peer address (an IPv6 /64). Turns go by what each client has used: weighted fair queueing over the
seconds its statements held a worker (the CPU time they cost it, where the server reads it), counted from where the
clients being served are, so a client that was away has no credit to spend and one that has used more waits behind
one that has used less, from however many addresses it sends.

The last worker is kept from slow statements, and the rule is kept at every moment, not only when a turn is granted:
at most all workers but one run a slow statement (one that has held its turn QUICK_S, or whose client ran a slow or
costly one within SLOW_MEMORY_S). A turn granted to a client not known to be slow may take any worker; once it has
held it QUICK_S, if every other worker runs a slow statement, it is demoted (its `Turn`'s `demoted` event is set):
its holder stops the statement and asks again: as a slow client where the stopped statement cost its worker
COSTLY_S of CPU (the holder says so in `seconds`) or no cost is known (it had to be killed), else as the quick client
it is (a busy machine stretched a cheap statement's wall time). Nothing is bought: a quick statement earns no
standing, so another client's cheap query waits for no slow statement, only for turns that are demoted within
QUICK_S.

Addresses are free to a stranger, so a never-seen one is given nothing a known client would lose by: it starts at
a count no better than the known quick clients' (a known client is one whose first turn is KNOWN_AFTER_S old), and
the clients not yet known share one quick allowance between them: once one of their turns is demoted off the last
worker, every client not yet known counts as slow for NEWCOMERS_REFILL_S (SLOW_MEMORY_S once one of their statements
had to be killed). A parade of fresh addresses then takes turns among the slow statements, and holds the last worker
at most QUICK_S in every NEWCOMERS_REFILL_S. A client whose statement had to be killed (it ignored its stop, or ran
to the limit) runs one statement at a time, such clients together run one, and none starts one within KILL_SPACING_S
of the last kill: each kill stops a worker and starts another, which every client pays for. Once a client not yet
known had a statement killed, every client not yet known counts as such a client.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Callable

from metric_tracker_rl.sql import ledger
from metric_tracker_rl.sql.known_clients import KnownClients

# A turn held this long is slow, and makes its client slow for SLOW_MEMORY_S: a typical statement takes
# milliseconds, one near the time limit seconds.
QUICK_S = 0.25
# A statement that cost its worker this much (the seconds its `Turn` reports: CPU time, which a busy machine does not
# stretch) makes its client slow too: clients whose statements each cost a little under QUICK_S could otherwise hold
# every worker together, and another client's cheap query would queue behind them. A cheap query costs a few
# milliseconds.
COSTLY_S = 0.05
SLOW_MEMORY_S = 60.0
# A client becomes known (out of the newcomers' shared allowance) once its first turn is KNOWN_AFTER_S old
# (`known_clients`), and is forgotten SLOW_MEMORY_S after its last.
# After a newcomer's turn was demoted off the last worker, the clients not yet known count as slow this long.
NEWCOMERS_REFILL_S = 1.0
# Statements of clients whose statements had to be killed start no sooner than this after the last kill.
KILL_SPACING_S = 2.0


class Turn:
    """A turn at the workers; whoever holds it may say what its statement cost a worker (`seconds`, its CPU time),
    which the gate then counts, against COSTLY_S, instead of the whole turn against QUICK_S (a first statement may
    wait for the workers to start).
    `demoted` is set when the turn holds the last worker not running a slow statement and turned slow there: the
    holder should stop the statement, leave the turn and take another."""

    def __init__(self, began: float, slow_from_start: bool) -> None:
        self.seconds: float | None = None
        self.demoted = asyncio.Event()
        self.began = began
        # Its client was known to be slow when it was granted, or it has held its turn QUICK_S (set by the gate's
        # check then, on the event loop's clock, so turns that began together turn slow in the order they began).
        self.slow = slow_from_start
        self.newcomer = False  # granted to a client not yet known (set by the gate)


class FairGate:
    """Turns at the SQL workers for the server's sessions, fair between clients (see the module docstring).
    One per event loop; `slots` is the pool's size.

    A client runs at most `per_client` statements at once. A free slot goes to the waiting client that has used the
    least (`usage`: its count of seconds, and the seconds its running turns have held so far), then to the one that
    runs fewer statements, then in the order they asked. A client known to be slow (`slow`) waits while all slots but
    one run slow statements; any other client may take the last one, where a statement that turns slow is demoted."""

    def __init__(self, slots: int, per_client: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.slots = slots
        self.per_client = per_client
        self.clock = clock
        self.running: collections.Counter[str] = collections.Counter()
        self.held: dict[str, list[Turn]] = {}  # client -> its running turns
        self.waiting: dict[str, collections.deque[tuple[int, asyncio.Future[Turn]]]] = {}
        self.slow_until: dict[str, float] = {}  # client -> when its last slow statement stops counting
        self.used: dict[str, float] = {}  # client -> its seconds of turns, counted from `virtual` when it came
        self.virtual = 0.0  # where the clients being served are: where a newcomer's count starts
        self.last_turn: dict[str, float] = {}  # client -> when its last turn ended
        self.demotions = 0  # turns demoted off the last worker (for tests and operators)
        self.clients = KnownClients(SLOW_MEMORY_S, clock)  # when each client's first turn began, its last ended
        self.newcomers_slow_until = 0.0  # the newcomers' shared allowance is spent until then
        self.killed: dict[str, float] = {}  # client -> when its last statement had to be killed
        self.last_kill = float("-inf")
        self.newcomers_killed = float("-inf")  # when a statement of a client not yet known was last killed
        self._spacing: asyncio.TimerHandle | None = None  # a dispatch when KILL_SPACING_S has passed
        self._refill: asyncio.TimerHandle | None = None  # a dispatch when the newcomers' allowance is back
        self._asked = itertools.count()

    @contextlib.asynccontextmanager
    async def turn(self, client: str) -> AsyncIterator[Turn]:
        self.used[client] = max(self.used.get(client, 0.0), self._start_count(client))  # no credit for being away
        if not self.waiting and self._may_start(client):
            held = self._grant(client)
        else:
            loop = asyncio.get_running_loop()
            future: asyncio.Future[Turn] = loop.create_future()
            self.waiting.setdefault(client, collections.deque()).append((next(self._asked), future))
            self._dispatch()
            try:
                held = await future
            except asyncio.CancelledError:
                if future.done() and not future.cancelled():
                    self._release(client, future.result())  # granted as it was cancelled: hand the turn on
                else:
                    self._withdraw(client, future)
                raise
        check = (
            None
            if held.slow or self.slots == 1
            else asyncio.get_running_loop().call_later(QUICK_S, self._turned_slow, held)
        )
        try:
            yield held
        finally:
            if check is not None:
                check.cancel()
            self._note(client, held)
            self._release(client, held)

    def _note(self, client: str, held: Turn) -> None:
        """Count what an ended turn cost its client: its statement's CPU time where its holder said it, else the
        time it held the turn; that much or over COSTLY_S (QUICK_S for a held time) makes the client slow."""
        now = self.clock()
        seconds, slow_from = (now - held.began, QUICK_S) if held.seconds is None else (held.seconds, COSTLY_S)
        if seconds >= slow_from:
            self.slow_until[client] = now + SLOW_MEMORY_S
        self.used[client] = self.used.get(client, self.virtual) + seconds
        self.last_turn[client] = now
        self.clients.left(client)

    def slow(self, client: str) -> bool:
        """Whether `client` ran a slow or costly statement within SLOW_MEMORY_S, or runs one that has held its turn
        QUICK_S, or is not yet known while the newcomers' shared allowance is spent."""
        now = self.clock()
        return (
            self.slow_until.get(client, 0.0) > now
            or any(turn.slow for turn in self.held.get(client, ()))
            or (self.newcomers_slow_until > now and not self.known(client))
        )

    def known(self, client: str) -> bool:
        """Whether `client` is known: its first turn is KNOWN_AFTER_S old, and its last within SLOW_MEMORY_S."""
        return self.clients.known(client)

    def note_kill(self, client: str) -> None:
        """A statement of `client` had to be killed: it is slow, runs one statement at a time, and while it is
        not yet known, the newcomers' allowance is spent."""
        now = self.clock()
        self.killed[client] = self.last_kill = now
        self.slow_until[client] = now + SLOW_MEMORY_S
        if not self.known(client):
            self.newcomers_killed = now
            self._spend_newcomers(SLOW_MEMORY_S)

    def _spend_newcomers(self, seconds: float) -> None:
        """The newcomers' shared allowance is spent for `seconds`; those waiting are dispatched when it is back."""
        self.newcomers_slow_until = max(self.newcomers_slow_until, self.clock() + seconds)
        if self._refill is not None:
            self._refill.cancel()
        with contextlib.suppress(RuntimeError):  # told outside a loop (a test): nobody waits to be dispatched
            wait_s = self.newcomers_slow_until - self.clock()
            self._refill = asyncio.get_running_loop().call_later(wait_s, self._dispatch)

    def _killer(self, client: str) -> bool:
        """Whether `client` had a statement killed within SLOW_MEMORY_S; a client not yet known, whether any client
        not yet known had (a fresh address for every kill is one client)."""
        since = self.clock() - SLOW_MEMORY_S
        return self.killed.get(client, 0.0) > since or (self.newcomers_killed > since and not self.known(client))

    def _start_count(self, client: str) -> float:
        """Where a client's count starts when it asks: where the clients being served are, and for one not yet
        known, no lower than any known quick client's count (it gets no turn ahead of them for being new)."""
        if client in self.held or self.known(client):
            return self.virtual
        quick = [used for name, used in self.used.items() if self.known(name) and not self.slow(name)]
        return max([self.virtual, *quick])

    def usage(self, client: str) -> float:
        """The seconds `client` has used, counted from where it joined, with what its running turns held so far."""
        now = self.clock()
        return self.used.get(client, self.virtual) + sum(now - turn.began for turn in self.held.get(client, ()))

    def _slow_turns(self, besides: Turn | None = None) -> int:
        """Running turns that count as slow (demoted ones are on their way out), `besides` not counted."""
        return sum(
            1
            for turns in self.held.values()
            for turn in turns
            if turn is not besides and turn.slow and not turn.demoted.is_set()
        )

    def _turned_slow(self, held: Turn) -> None:
        """QUICK_S into a turn granted as quick: its statement is slow now; if every other worker runs a slow one,
        it would hold the last worker as a slow statement: demoted."""
        held.slow = True
        if self._slow_turns(besides=held) >= self.slots - 1:
            self.demotions += 1
            ledger.record(demotions=1)
            held.demoted.set()
            if held.newcomer:
                self._spend_newcomers(NEWCOMERS_REFILL_S)

    def _may_start(self, client: str) -> bool:
        if sum(self.running.values()) >= self.slots or self.running[client] >= self.per_client:
            return False
        if self._killer(client) and (any(self._killer(name) for name in self.held) or self._spaced()):
            return False  # statements that had to be killed: one at a time among every such client, spaced
        return self.slots == 1 or not self.slow(client) or self._slow_turns() < self.slots - 1

    def _spaced(self) -> bool:
        """Whether KILL_SPACING_S has yet to pass since the last kill (a dispatch is then due when it has)."""
        wait_s = self.last_kill + KILL_SPACING_S - self.clock()
        if wait_s <= 0:
            return False
        if self._spacing is None or self._spacing.cancelled():
            loop = asyncio.get_running_loop()
            self._spacing = loop.call_later(wait_s, self._spaced_out)
        return True

    def _spaced_out(self) -> None:
        self._spacing = None
        self._dispatch()

    def _grant(self, client: str) -> Turn:
        self.running[client] += 1
        self.virtual = max(self.virtual, self.used.get(client, self.virtual))
        held = Turn(self.clock(), slow_from_start=self.slow(client))
        held.newcomer = not self.known(client)
        self.clients.served(client, held.began)
        self.held.setdefault(client, []).append(held)
        return held

    def _release(self, client: str, held: Turn) -> None:
        self.running[client] -= 1
        if self.running[client] <= 0:
            del self.running[client]
        turns = self.held.get(client, [])
        if held in turns:
            turns.remove(held)
        if not turns:
            self.held.pop(client, None)
        self._dispatch()
        self._forget()

    def _forget(self) -> None:
        """Drop what no longer tells clients apart: slow marks that have run out, and the counts of clients with
        nothing running or waiting that are no more than a newcomer's or whose last turn is SLOW_MEMORY_S old (what
        a client used counts while it is recent: the tables stay as small as the clients seen lately)."""
        now = self.clock()
        for name in [name for name, until in self.slow_until.items() if until <= now]:
            del self.slow_until[name]
        self.clients.forget(lambda name: name in self.held or name in self.waiting)
        for name in [name for name, when in self.killed.items() if when <= now - SLOW_MEMORY_S]:
            del self.killed[name]
        for name in [
            name
            for name, used in self.used.items()
            if name not in self.held
            and name not in self.waiting
            and (used <= self.virtual or self.last_turn.get(name, now) <= now - SLOW_MEMORY_S)
        ]:
            del self.used[name]
            self.last_turn.pop(name, None)

    def _withdraw(self, client: str, future: asyncio.Future[Turn]) -> None:
        queue = self.waiting.get(client)
        if queue is None:
            return
        for entry in [entry for entry in queue if entry[1] is future]:
            queue.remove(entry)
        if not queue:
            del self.waiting[client]

    def _dispatch(self) -> None:
        """Grant free slots, each to the waiting client that may start and has used the least (then the one that
        runs fewer statements, then the one that asked first)."""
        while True:
            ready = [client for client in self.waiting if self._may_start(client)]
            if not ready:
                return
            client = min(
                ready,
                key=lambda name: (
                    self.usage(name),
                    not self.known(name),
                    self.running[name],
                    self.waiting[name][0][0],
                ),
            )
            queue = self.waiting[client]
            _, future = queue.popleft()
            if not queue:
                del self.waiting[client]
            if future.done():  # cancelled, its waiter not yet told: it takes no turn
                continue
            future.set_result(self._grant(client))
