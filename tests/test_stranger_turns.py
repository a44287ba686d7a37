"""A never-seen address is given nothing a known client would lose by (`sql.fair_gate`): it starts at a count no
better than the known quick clients', the clients not yet known share one quick allowance on the last worker, and a
client whose statements had to be killed runs one at a time, with every such client together running one."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st
from sql_helpers import FakeClock, started

from metric_tracker_rl.sql.fair_gate import KILL_SPACING_S, QUICK_S, FairGate
from metric_tracker_rl.sql.known_clients import KNOWN_AFTER_S


def known(gate: FairGate, clock: FakeClock, clients: dict[str, float]) -> None:
    """Each client runs one statement of the given cost, and is known KNOWN_AFTER_S later."""

    async def scenario() -> None:
        for client, cost in clients.items():
            async with gate.turn(client) as turn:
                turn.seconds = cost

    asyncio.run(scenario())
    clock.now += KNOWN_AFTER_S + 1


@settings(max_examples=40, deadline=None)
@given(quick_cost=st.floats(0.0, 0.02), newcomers=st.integers(1, 12), slow_cost=st.floats(0.3, 4.0))
def test_a_known_quick_client_is_never_ranked_behind_fresh_addresses(
    quick_cost: float, newcomers: int, slow_cost: float
) -> None:
    """However little a known quick client used a moment ago and however many never-seen addresses wait beside it,
    the freed worker is its (the gate used to start a newcomer's count where the largest granted count was, below
    the count of a client that had just used a millisecond)."""
    clock = FakeClock()
    gate = FairGate(slots=1, per_client=1, clock=clock)
    known(gate, clock, {"victim": 0.001, "looper": slow_cost})

    async def scenario() -> list[str]:
        async with gate.turn("looper") as turn:  # the slow client is granted: where clients are served moves on
            turn.seconds = slow_cost
        async with gate.turn("victim") as turn:
            turn.seconds = quick_cost
        first, holders, release = await started(gate, ["looper"])
        fresh = [f"10.9.{index}.1" for index in range(newcomers)]
        _, waiters, _ = await started(gate, [*fresh, "victim"])
        release.set()
        await asyncio.gather(*holders)
        for _ in range(5):
            await asyncio.sleep(0)
        order = [client for client, turns in gate.held.items() if turns]
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
        return order

    assert asyncio.run(scenario()) == ["victim"]


def test_fresh_addresses_share_one_quick_allowance_and_the_last_worker_stays_with_known_clients() -> None:
    """Two slow clients hold all workers but one. A newcomer's runaway takes the last worker and is demoted QUICK_S
    later; from then on the next newcomer counts as slow and waits among the slow statements, while a known quick
    client's query takes the last worker at once (each newcomer used to take the last worker for QUICK_S in turn)."""

    async def scenario() -> tuple[bool, bool, bool, bool]:
        offset = [0.0]
        loop = asyncio.get_running_loop()
        gate = FairGate(slots=3, per_client=2, clock=lambda: loop.time() + offset[0])
        for client in ("victim", "slow-a", "slow-b"):
            async with gate.turn(client) as turn:
                turn.seconds = 0.001 if client == "victim" else 2.0
        offset[0] += KNOWN_AFTER_S + 1
        _, slow_holders, release_slow = await started(gate, ["slow-a", "slow-b"])
        first_started, first, release_first = await started(gate, ["10.9.0.1"])
        async with asyncio.timeout(QUICK_S * 8):
            await gate.held["10.9.0.1"][0].demoted.wait()
        release_first.set()
        await asyncio.gather(*first)
        second_started, second, release_second = await started(gate, ["10.9.0.2"])
        victim_started, victim, release_victim = await started(gate, ["victim"])
        release_victim.set()
        release_second.set()
        release_slow.set()
        await asyncio.gather(*second, *victim, *slow_holders)
        return bool(first_started), bool(second_started), bool(victim_started), gate.slow("10.9.0.3")

    first, second, victim, later_newcomer_slow = asyncio.run(scenario())
    assert first and not second and victim and later_newcomer_slow


def test_clients_whose_statements_were_killed_run_one_statement_among_them_spaced_out() -> None:
    """Kills stall every client (a worker's exit and a fresh one's start): a client whose statement had to be
    killed runs nothing within KILL_SPACING_S of the last kill, then one statement at a time, and all such clients
    together one, while other clients are served at once."""
    clock = FakeClock()
    gate = FairGate(slots=3, per_client=2, clock=clock)
    known(gate, clock, {"victim": 0.001, "killer-a": 0.001, "killer-b": 0.001})
    gate.note_kill("killer-a")
    gate.note_kill("killer-b")

    async def scenario() -> tuple[list[str], list[str], list[str]]:
        spaced, early, release_early = await started(gate, ["killer-a"])
        victim, more, release_victim = await started(gate, ["victim"])
        for task in early:
            task.cancel()
        await asyncio.gather(*early, return_exceptions=True)
        clock.now += KILL_SPACING_S
        first, holders, release = await started(gate, ["killer-a", "killer-a", "killer-b"])
        release_victim.set()
        release.set()
        await asyncio.gather(*holders, *more)
        return spaced, first, victim

    spaced, first, victim = asyncio.run(scenario())
    assert spaced == [] and first == ["killer-a"] and victim == ["victim"]


def test_once_a_fresh_address_caused_a_kill_fresh_addresses_run_one_statement_among_them() -> None:
    """A fresh address for every kill is one client: once a statement of a client not yet known had to be killed,
    the clients not yet known together run one statement, spaced from the last kill like any killer's."""
    clock = FakeClock()
    gate = FairGate(slots=3, per_client=2, clock=clock)
    known(gate, clock, {"victim": 0.001})

    async def scenario() -> tuple[list[str], list[str]]:
        gate.note_kill("10.9.0.1")
        clock.now += KILL_SPACING_S
        first, holders, release = await started(gate, ["10.9.0.2", "10.9.0.3", "10.9.0.4"])
        victim, more, release_victim = await started(gate, ["victim"])
        release_victim.set()
        release.set()
        await asyncio.gather(*holders, *more)
        return first, victim

    first, victim = asyncio.run(scenario())
    assert first == ["10.9.0.2"] and victim == ["victim"]
