"""The SQL workers' turns go by what each client has used, and the last worker is kept from slow statements at every
moment (`sql.fair_gate`): no purchase (a quick statement first), burst or number of addresses moves a client ahead
of one that has used less, and an address never seen waits for no slow statement."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metric_tracker_rl.serving.step_bound import GivenUp, within_bound
from metric_tracker_rl.sql.fair_gate import COSTLY_S, QUICK_S, FairGate
from metric_tracker_rl.sql.known_clients import KNOWN_AFTER_S


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


CLIENTS = [f"10.0.0.{host}" for host in range(1, 7)]


@given(
    history=st.lists(st.tuples(st.sampled_from(CLIENTS), st.floats(0.0, 0.2)), max_size=30),
    burst=st.lists(st.sampled_from(CLIENTS), min_size=1, max_size=20),
)
def test_each_freed_turn_goes_to_the_waiting_client_that_has_used_the_least(
    history: list[tuple[str, float]], burst: list[str]
) -> None:
    """Whatever each client ran before (a cheap statement, a costly one, none) and however many statements each asks
    for at once, a freed worker goes to a waiting client that has used no more than any other waiting one."""
    clock = FakeClock()
    gate = FairGate(slots=1, per_client=1, clock=clock)

    async def scenario() -> None:
        for client, cost in history:
            async with gate.turn(client) as turn:
                clock.now += cost
                turn.seconds = cost
        granted: list[tuple[str, float, float]] = []  # who, its usage, the least usage among those waiting
        blocker_done = asyncio.Event()

        async def blocker() -> None:
            async with gate.turn("blocker"):
                await blocker_done.wait()

        async def ask(client: str) -> None:
            async with gate.turn(client) as turn:
                waiting = [gate.usage(name) for name in gate.waiting]
                granted.append(
                    (client, gate.usage(client) - (clock.now - turn.began), min(waiting, default=float("inf")))
                )
                clock.now += 0.01
                turn.seconds = 0.01
                await asyncio.sleep(0)

        holding = asyncio.create_task(blocker())
        await asyncio.sleep(0)
        asking = [asyncio.create_task(ask(client)) for client in burst]
        for _ in range(3):
            await asyncio.sleep(0)
        blocker_done.set()
        await asyncio.gather(holding, *asking)
        assert len(granted) == len(burst)
        for client, usage, least_waiting in granted:
            assert usage <= least_waiting + 1e-9, (client, usage, least_waiting, granted)

    asyncio.run(scenario())


def test_a_cheap_statement_first_buys_nothing_over_a_client_that_used_less() -> None:
    """A client that ran one quick statement has used a little: a client that used nothing goes first."""
    clock = FakeClock()
    gate = FairGate(slots=1, per_client=1, clock=clock)

    async def scenario() -> list[str]:
        async with gate.turn("buyer") as turn:
            clock.now += 0.002
            turn.seconds = 0.002
        order: list[str] = []
        release = asyncio.Event()

        async def hold(client: str) -> None:
            async with gate.turn(client):
                order.append(client)
                await release.wait()

        tasks = [asyncio.create_task(hold(client)) for client in ("other", "buyer", "fresh")]
        for _ in range(5):
            await asyncio.sleep(0)
        release.set()
        await asyncio.gather(*tasks)
        return order

    order = asyncio.run(scenario())
    assert order[0] == "other" and order.index("fresh") < order.index("buyer")


def test_an_address_never_seen_takes_the_last_worker_at_once_while_slow_clients_hold_the_others() -> None:
    """Eight addresses known to be slow loop statements: they hold all workers but one, and a newcomer's first
    statement starts at once (it used to count as slow and wait behind theirs)."""
    clock = FakeClock()
    gate = FairGate(slots=3, per_client=2, clock=clock)
    attackers = [f"127.0.0.{host}" for host in range(10, 18)]

    async def scenario() -> tuple[int, bool]:
        for client in attackers:
            async with gate.turn(client):
                clock.now += 1.0  # slow
        release = asyncio.Event()
        started: list[str] = []

        async def hold(client: str) -> None:
            async with gate.turn(client):
                started.append(client)
                await release.wait()

        tasks = [asyncio.create_task(hold(client)) for client in attackers * 2]
        for _ in range(10):
            await asyncio.sleep(0)
        attackers_running = len(started)
        newcomer = asyncio.create_task(hold("newcomer"))
        for _ in range(10):
            await asyncio.sleep(0)
        newcomer_started = "newcomer" in started
        release.set()
        await asyncio.gather(*tasks, newcomer)
        return attackers_running, newcomer_started

    attackers_running, newcomer_started = asyncio.run(scenario())
    assert attackers_running == 2 and newcomer_started


def test_three_fresh_addresses_starting_runaways_at_once_leave_the_last_worker_within_the_quick_mark() -> None:
    """Three addresses, each with one quick statement behind it, start a runaway at the same instant and take every
    worker: once they have held them QUICK_S, exactly one is demoted, so the last worker is free again for a known
    client's cheap query (it used to be decided only when a turn was granted, and all three ran to the limit)."""

    async def scenario() -> tuple[int, float, int]:
        offset = [0.0]
        loop = asyncio.get_running_loop()
        gate = FairGate(slots=3, per_client=2, clock=lambda: loop.time() + offset[0])
        attackers = ["127.0.0.20", "127.0.0.21", "127.0.0.22"]
        for client in [*attackers, "victim"]:
            async with gate.turn(client) as turn:
                turn.seconds = 0.001
        offset[0] += KNOWN_AFTER_S  # the victim is known (so are the attackers: their quick standing is no newcomer's)
        stop = asyncio.Event()

        async def runaway(client: str) -> None:
            async with gate.turn(client) as turn:
                await asyncio.wait(
                    [asyncio.ensure_future(turn.demoted.wait()), asyncio.ensure_future(stop.wait())],
                    return_when=asyncio.FIRST_COMPLETED,
                )

        began = asyncio.get_running_loop().time()
        tasks = [asyncio.create_task(runaway(client)) for client in attackers]
        for _ in range(5):
            await asyncio.sleep(0)
        assert sum(gate.running.values()) == 3  # every worker taken

        async def victim() -> float:
            async with gate.turn("victim") as turn:
                turn.seconds = 0.002
                return asyncio.get_running_loop().time() - began

        try:
            waited = await asyncio.wait_for(victim(), QUICK_S * 8)
        except TimeoutError:
            waited = float("inf")
        demotions = gate.demotions
        stop.set()
        await asyncio.gather(*tasks)
        return demotions, waited, sum(gate.slow(client) for client in attackers)

    demotions, waited, slow = asyncio.run(scenario())
    assert demotions == 1 and waited < QUICK_S * 4 and slow == 3


def test_statements_that_cost_a_little_under_the_quick_mark_make_their_client_slow_by_their_cost() -> None:
    clock = FakeClock()
    gate = FairGate(slots=3, per_client=2, clock=clock)

    async def scenario() -> None:
        async with gate.turn("costly") as turn:
            clock.now += 0.01
            turn.seconds = 2 * COSTLY_S
        async with gate.turn("cheap") as turn:
            turn.seconds = COSTLY_S / 10

    asyncio.run(scenario())
    assert gate.slow("costly") and not gate.slow("cheap") and gate.usage("costly") > gate.usage("cheap")


def test_a_step_given_up_while_its_demoted_statement_stops_is_not_run_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """A demoted statement is stopped (its worker's answer awaited), then asked again; a step given up during that
    stop ends there: its statement is not asked again with nobody to answer (the cancellation was swallowed)."""
    from metric_tracker_rl.serving import statement_turns

    gate = FairGate(slots=2, per_client=1)
    gate.slow_until["other"] = gate.clock() + 60  # known slow: it holds the one worker slow statements may hold
    monkeypatch.setattr(statement_turns, "gate", lambda: gate)

    class StoppingSlowly:
        asked = 0

        async def prefetch(self, sql: str, offset: int, limit: int) -> float:
            self.asked += 1
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                await asyncio.shield(asyncio.sleep(0.3))  # the worker's answer to the stop
                raise
            return 0.0

    async def scenario() -> tuple[int, bool]:
        release = asyncio.Event()

        async def other() -> None:
            async with gate.turn("other"):
                await release.wait()

        holder = asyncio.create_task(other())
        await asyncio.sleep(0)
        sandbox = StoppingSlowly()
        turns = statement_turns.run_in_turns(sandbox, "SELECT 1", 0, 10, statement_turns.Waited())
        # The step's bound passes while its demoted statement stops (QUICK_S in).
        step = asyncio.ensure_future(within_bound(turns, QUICK_S + 0.1))
        try:
            outcome = await asyncio.wait_for(asyncio.shield(step), 5.0)
        except TimeoutError:  # asked again, the statement would wait for ever
            outcome = None
            step.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await step
        release.set()
        await holder
        return sandbox.asked, isinstance(outcome, GivenUp)

    asked, cancelled = asyncio.run(scenario())
    assert asked == 1 and cancelled
