"""Clients whose statements each cost their worker a little under the quarter second that makes a turn slow
(`QUICK_S`) count as slow all the same, by what the statements cost (`COSTLY_S`, CPU time): from however many
addresses, they leave the last worker to another client's cheap query (lab/speed/attack_degraded.py measures it)."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import threading
import time

import pytest
from sql_helpers import CHEAP, FakeClock, open_session, query, server_process, started, ws_ask

from metric_tracker_rl.sql.fair_gate import COSTLY_S, QUICK_S, FairGate


def costly_statement(cost_s: float = 2 * COSTLY_S) -> str:
    """A statement that costs about `cost_s` of one core on this machine (timed here, on one engine thread as a
    worker runs it): over COSTLY_S, and a quarter of its wall time under QUICK_S unless a busy machine stretches
    it tenfold."""
    import duckdb

    connection = duckdb.connect(config={"threads": 1})
    rows = 4_000_000
    began = time.process_time()
    connection.execute(f"SELECT sum(range % 7) AS s FROM range({rows})").fetchall()
    spent = max(time.process_time() - began, 1e-3)
    return f"SELECT sum(range % 7) AS s FROM range({int(rows * cost_s / spent)})"


def run_costed_turns(gate: FairGate, clock: FakeClock, plan: list[tuple[str, float, float]]) -> None:
    """Each (client, held, cost) holds a turn `held` seconds and reports its statement's cost, as a server's step
    reports its worker's CPU time."""

    async def scenario() -> None:
        for client, held, cost in plan:
            async with gate.turn(client) as turn:
                clock.now += held
                turn.seconds = cost

    asyncio.run(scenario())


def test_clients_whose_statements_each_cost_a_little_under_the_slow_mark_still_leave_the_last_worker() -> None:
    """Eight addresses each loop a statement that costs its worker a tenth of a second (held a busy machine's half
    second, under QUICK_S): together they take all workers but one, and a client whose statements cost
    milliseconds gets the kept worker at once."""
    clock = FakeClock()
    gate = FairGate(slots=3, per_client=2, clock=clock)
    attackers = [f"127.0.0.{index}" for index in range(2, 10)]
    run_costed_turns(gate, clock, [("victim", 0.005, 0.002), *[(client, 0.2, COSTLY_S * 2) for client in attackers]])
    assert COSTLY_S * 2 < QUICK_S and all(gate.slow(client) for client in attackers) and not gate.slow("victim")

    async def scenario() -> None:
        first, tasks, release = await started(gate, attackers)
        assert first == attackers[:2]
        victim, more, release_victim = await started(gate, ["victim"])
        assert victim == ["victim"]
        release_victim.set()
        release.set()
        await asyncio.gather(*tasks, *more)

    asyncio.run(scenario())


@pytest.mark.slow  # a server, and eight clients looping statements for a few seconds
def test_eight_addresses_looping_costly_statements_leave_a_worker_to_a_known_clients_cheap_query() -> None:
    """Eight addresses, one session each, loop a costly statement; a client known to be quick times its cheap query
    meanwhile. Were they quick, they would hold all three workers, and its query would wait in turn behind theirs
    (on a machine so busy that four times a statement's wall time passes QUICK_S, they are slow by either mark)."""
    with server_process({"SQL_WORKERS": "3"}) as (url, _), contextlib.ExitStack() as stack:
        victim = stack.enter_context(open_session(url, "127.0.0.4"))
        assert ws_ask(victim, query(CHEAP))["data"]["observation"]["status"] == "ok"
        attackers = [stack.enter_context(open_session(url, f"127.0.0.{host}")) for host in range(60, 68)]
        stop, costly_s, costly = threading.Event(), [], costly_statement()

        def loop(ws: object) -> None:
            while not stop.is_set():
                began = time.perf_counter()
                assert ws_ask(ws, query(costly))["data"]["observation"]["status"] == "ok"  # type: ignore[arg-type]
                costly_s.append(time.perf_counter() - began)

        loops = [threading.Thread(target=loop, args=(ws,), daemon=True) for ws in attackers]
        for thread in loops:
            thread.start()
        time.sleep(3)  # every attacker has run a statement or more
        cheap_s = []
        for _ in range(20):
            began = time.perf_counter()
            assert ws_ask(victim, query(CHEAP))["data"]["observation"]["status"] == "ok"
            cheap_s.append(time.perf_counter() - began)
        stop.set()
        for thread in loops:
            thread.join(timeout=120)
    assert statistics.median(cheap_s) < statistics.median(costly_s) / 3, (cheap_s, costly_s)
