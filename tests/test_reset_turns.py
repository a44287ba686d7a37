"""Reset turns are fair by cost: a client whose builds are cheap is not held up behind another client's queue of
expensive ones (warehouse builds cost ten to twenty times a frontier build), one build at most."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from metric_tracker_rl.serving.reset_turns import BuildLanes, TakeTurns, TurnNotGiven
from metric_tracker_rl.sql.known_clients import KNOWN_AFTER_S


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def acquainted(turns: TakeTurns, clock: FakeClock, *clients: str) -> None:
    """The clients are known: each built its first episode KNOWN_AFTER_S ago."""
    for client in clients:
        turns.clients.served(client, clock.now - KNOWN_AFTER_S)


async def _build(
    turns: TakeTurns, clock: FakeClock, client: str, cost: float, order: list[str], kind: str = ""
) -> None:
    async with turns.turn(client, kind or f"cost {cost}"):
        order.append(client)
        await asyncio.sleep(0)  # the others queue meanwhile
        clock.now += cost


def test_a_cheap_reset_waits_for_one_expensive_build_however_many_clients_queue_them() -> None:
    async def play() -> tuple[list[str], int]:
        clock, order = FakeClock(), []
        turns = TakeTurns(clock)
        acquainted(turns, clock, "light", *(f"heavy{i}" for i in range(8)))
        await _build(turns, clock, "someone", 0.03, [], kind="frontier")  # the kinds' costs, as a server learns them
        await _build(turns, clock, "someone", 0.5, [], kind="warehouse")
        heavy = [
            asyncio.ensure_future(_build(turns, clock, f"heavy{i % 8}", 0.5, order, "warehouse")) for i in range(64)
        ]
        await asyncio.sleep(0)
        asked_during: list[int] = []

        async def light() -> None:
            asked_during.append(len(order))  # the build under way when the light client asks is order[-1]
            await _build(turns, clock, "light", 0.03, order, "frontier")

        await asyncio.gather(*heavy, light())
        return order, asked_during[0]

    order, under_way = asyncio.run(play())
    # Right after the build under way when it asked (or the one just granted as that one ended), of 64 queued.
    assert 0 < under_way < 60 and order.index("light") <= under_way + 1


def test_a_client_that_comes_back_gets_no_credit_for_its_absence() -> None:
    """Five builds alone, then three more beside a newcomer's three of the same cost: they alternate."""

    async def play() -> list[str]:
        clock, order = FakeClock(), []
        turns = TakeTurns(clock)
        acquainted(turns, clock, "steady", "late")
        for _ in range(5):
            await _build(turns, clock, "steady", 1.0, order)
        first = [asyncio.ensure_future(_build(turns, clock, "steady", 1.0, order)) for _ in range(3)]
        late = [asyncio.ensure_future(_build(turns, clock, "late", 1.0, order)) for _ in range(3)]
        await asyncio.gather(*first, *late)
        return order[5:]

    assert asyncio.run(play()) == ["steady", "late", "steady", "late", "steady", "late"]


def test_an_unknown_kind_counts_as_the_most_expensive_known() -> None:
    turns = TakeTurns(FakeClock())
    turns.costs.update({"frontier": 0.03, "warehouse": 0.5})
    assert turns.estimate("something new") == 0.5 and turns.estimate("frontier") == 0.03


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abcd"), st.floats(0.01, 2.0)), min_size=1, max_size=30))
def test_every_turn_is_granted_once_and_the_turns_end_idle(requests: list[tuple[str, float]]) -> None:
    async def play() -> tuple[list[str], TakeTurns]:
        clock, order = FakeClock(), []
        turns = TakeTurns(clock)
        await asyncio.gather(*(_build(turns, clock, client, cost, order) for client, cost in requests))
        return order, turns

    order, turns = asyncio.run(play())
    assert sorted(order) == sorted(client for client, _ in requests)
    assert not turns.busy and not turns.waiting


def test_a_kind_known_to_be_cheap_builds_beside_an_expensive_build_under_way() -> None:
    """The light lane: a frontier reset is granted while a warehouse build holds the heavy lane; an unknown kind,
    like an expensive one, waits for it."""

    async def play() -> tuple[list[str], bool]:
        clock, order = FakeClock(), []
        lanes = BuildLanes(clock)
        lanes.costs.update({"frontier": 0.02, "warehouse": 0.5})
        held = asyncio.Event()

        async def heavy() -> None:
            async with lanes.turn("flood", "warehouse"):
                order.append("warehouse")
                await held.wait()

        async def ask(kind: str) -> None:
            async with lanes.turn("visitor", kind) as thread:
                order.append(kind)
                assert thread is not None

        flood = asyncio.ensure_future(heavy())
        await asyncio.sleep(0)
        await asyncio.wait_for(ask("frontier"), timeout=1)  # granted at once
        unknown = asyncio.ensure_future(ask("made-up kind"))
        await asyncio.sleep(0.01)
        waited = not unknown.done()
        held.set()
        await asyncio.gather(flood, unknown)
        return order, waited

    order, unknown_waited = asyncio.run(play())
    assert order == ["warehouse", "frontier", "made-up kind"] and unknown_waited


def test_a_turn_not_given_within_its_wait_leaves_the_queue_and_the_rest_go_in_order() -> None:
    async def play() -> tuple[list[str], list[str]]:
        clock, order, refused = FakeClock(), [], []
        turns = TakeTurns(clock)
        gate = asyncio.Event()

        async def holder() -> None:
            async with turns.turn("a", "audit"):
                order.append("held")
                await gate.wait()

        async def impatient() -> None:
            try:
                async with turns.turn("b", "audit", wait_s=0.01):
                    order.append("impatient")
            except TurnNotGiven as exc:
                refused.append(str(exc))

        first = asyncio.ensure_future(holder())
        await asyncio.sleep(0)
        queued = [asyncio.ensure_future(_build(turns, clock, "a", 1.0, order, "audit")) for _ in range(2)]
        await impatient()
        gate.set()
        await asyncio.gather(first, *queued)
        assert not turns.busy and not turns.waiting
        return order, refused

    order, refused = asyncio.run(play())
    assert order == ["held", "a", "a"]
    assert len(refused) == 1 and "did not start (2 more builds wait" in refused[0]
