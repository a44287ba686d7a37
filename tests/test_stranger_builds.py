"""A never-seen address is given nothing a known client would lose by at the episode builds either
(`serving.reset_turns`): the clients not yet known take turns as one client whose count starts no lower than any
known client's, so however many fresh addresses queue builds, a known client's reset waits for about one build."""

from __future__ import annotations

import asyncio
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from metric_tracker_rl.serving.reset_turns import TakeTurns
from metric_tracker_rl.sql.known_clients import KNOWN_AFTER_S, KnownClients


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def queued(turns: TakeTurns, clock: FakeClock, builds: list[tuple[str, str, float]]) -> list[str]:
    """Each (client, kind, cost) asks for a build in this order while the first holds its turn; the order the
    builds were granted in."""
    order: list[str] = []
    release = asyncio.Event()

    async def build(client: str, kind: str, cost: float) -> None:
        async with turns.turn(client, kind):
            order.append(client)
            await release.wait()
            clock.now += cost

    tasks = [asyncio.create_task(build(*one)) for one in builds]
    for _ in range(3):
        await asyncio.sleep(0)
    release.set()
    await asyncio.gather(*tasks)
    return order


@settings(max_examples=40, deadline=None)
@given(
    recent_builds=st.integers(1, 5),
    newcomers=st.integers(1, 30),
    audit_s=st.floats(0.05, 2.0),
    held_s=st.floats(0.01, 2.0),
)
def test_a_known_client_that_just_built_is_never_ranked_behind_fresh_addresses(
    recent_builds: int, newcomers: int, audit_s: float, held_s: float
) -> None:
    """However much a known client built a moment ago and however many never-seen addresses wait beside it, the
    build after the one under way is its own (a newcomer's count used to start where the last build served
    started, below the count of a client that had just built)."""
    clock = FakeClock()
    turns = TakeTurns(clock)
    turns.clients.served("known", clock.now - KNOWN_AFTER_S)
    turns.costs["audit"] = audit_s

    async def scenario() -> list[str]:
        await queued(turns, clock, [("known", "audit", audit_s)] * recent_builds)
        fresh = [(f"10.9.{index}.1", "audit", audit_s) for index in range(newcomers)]
        return await queued(turns, clock, [("10.8.0.1", "audit", held_s), *fresh, ("known", "audit", audit_s)])

    order = asyncio.run(scenario())
    assert order[1] == "known", order


@settings(max_examples=20, deadline=None)
@given(addresses=st.integers(2, 12), per_address=st.integers(2, 8))
def test_fresh_addresses_take_turns_as_one_client_beside_a_known_one(addresses: int, per_address: int) -> None:
    """A trainer's first rollouts from several new addresses, and a known client queueing builds of the same
    kind beside them: the known client's first build is the first or second granted, and at most one of theirs
    comes between two of its own (each fresh address used to count as a client of its own, so it waited for one
    build of each)."""
    clock = FakeClock()
    turns = TakeTurns(clock)
    turns.clients.served("known", clock.now - KNOWN_AFTER_S)
    fresh = [(f"10.9.{index % addresses}.1", "audit", 0.5) for index in range(addresses * per_address)]
    order = asyncio.run(queued(turns, clock, [*fresh, *[("known", "audit", 0.5)] * 3]))
    mine = [index for index, client in enumerate(order) if client == "known"]
    gaps = [later - earlier for earlier, later in itertools.pairwise(mine)]
    assert len(mine) == 3 and mine[0] <= 1 and max(gaps) <= 2, order


def test_a_fresh_address_is_known_once_its_first_build_is_known_after_s_old() -> None:
    clock = FakeClock()
    turns = TakeTurns(clock)
    asyncio.run(queued(turns, clock, [("10.9.0.1", "audit", 0.5)]))
    clock.now += KNOWN_AFTER_S - 0.6  # its build took 0.5 s
    assert not turns.clients.known("10.9.0.1")
    clock.now += 0.1
    assert turns.clients.known("10.9.0.1")


def test_a_stream_of_fresh_addresses_forgets_itself_and_never_the_clients_known_longest() -> None:
    """The table stays bounded, and the clients first served earliest are kept past the bound, so fresh
    addresses cannot push a known client back among the newcomers."""
    clock = FakeClock()
    clients = KnownClients(forget_after_s=3600.0, clock=clock, most=50)
    clients.served("trainer")
    clients.left("trainer")
    for index in range(500):
        clock.now += 0.25
        clients.served(f"10.9.{index // 250}.{index % 250}")
        clients.left(f"10.9.{index // 250}.{index % 250}")
        clients.forget(lambda name: False)
    assert len(clients.first_seen) <= 50 and len(clients.last_seen) <= 50
    assert clients.known("trainer")
    clock.now += 3600.0
    clients.forget(lambda name: False)
    assert not clients.first_seen and not clients.last_seen
