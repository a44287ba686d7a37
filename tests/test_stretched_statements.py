"""A cheap statement that a busy machine stretches past QUICK_S on the last worker is demoted and stopped like any
other, but its client is judged by the CPU time the statement cost its worker, not by the wall time it held its
turn: it stays the quick client it is and asks again at once, ahead of the slow statements (it used to count as
slow for SLOW_MEMORY_S and wait behind every slow statement for its next turns)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Iterator

import numpy as np
import pytest

from metric_tracker_rl.serving import statement_turns
from metric_tracker_rl.sql import pool as sql_pool
from metric_tracker_rl.sql.fair_gate import QUICK_S, FairGate
from metric_tracker_rl.sql.known_clients import KNOWN_AFTER_S
from metric_tracker_rl.sql.pool import STOP_WAIT_S, SqlPool
from metric_tracker_rl.sql.sandbox import SqlSandbox

# Real SQL worker processes, killed and started again on timers: the whole suite's, not the edit loop's.
pytestmark = pytest.mark.slow

CHEAP = "SELECT count(*) AS n, sum(day) AS days FROM daily"
SLOW = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r"


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[SqlSandbox]:
    own = SqlPool(1)
    monkeypatch.setattr(sql_pool, "_POOL", own)
    opened = SqlSandbox({"daily": {"day": np.arange(40)}})
    opened.run(CHEAP)  # the worker starts and holds the tables
    yield opened
    opened.close()
    own.close()


def test_a_cheap_statement_stretched_by_the_machine_leaves_its_client_quick(
    sandbox: SqlSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = FairGate(slots=3, per_client=2)
    monkeypatch.setattr(statement_turns, "gate", lambda: gate)
    client = sql_pool.CLIENT.get()
    pids = sql_pool.pool().worker_pids()

    def resume() -> None:
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGCONT)

    async def scenario() -> tuple[bool, bool]:
        async with gate.turn(client) as turn:
            turn.seconds = 0.002
        gate.clients.first_seen[client] -= KNOWN_AFTER_S + 1  # a known quick client
        release = asyncio.Event()

        async def hold(holder: str) -> None:
            async with gate.turn(holder):
                await release.wait()

        holders = [asyncio.ensure_future(hold(holder)) for holder in ("slow-a", "slow-b")]
        await asyncio.sleep(QUICK_S + 0.05)  # both hold slow turns now: the client's turn takes the last worker
        for pid in pids:  # the machine gives the worker no core for a while: no CPU time, wall time passes
            os.kill(pid, signal.SIGSTOP)
        asyncio.get_running_loop().call_later(QUICK_S + 0.1, resume)
        try:
            turns = statement_turns.run_in_turns(sandbox, CHEAP, 0, 10, statement_turns.Waited())
            await asyncio.wait_for(turns, 5.0)  # asked again as a slow client, it would wait for the slow turns
            answered = True
        except TimeoutError:
            answered = False
        finally:
            resume()
            release.set()
            await asyncio.gather(*holders)
        return answered, gate.slow(client)

    answered, slow_after = asyncio.run(scenario())
    assert gate.demotions >= 1, "the stretched statement was not demoted: the scenario did not happen"
    assert answered and not slow_after


def test_a_statement_demoted_while_it_waits_for_a_worker_leaves_its_client_quick(
    sandbox: SqlSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its turn granted while every worker is still busy (with a statement the gate did not count, or one a killed
    worker's replacement will take), the statement is demoted before it reached a worker: it cost nothing, and its
    client is no slower for it."""
    gate = FairGate(slots=3, per_client=2)
    monkeypatch.setattr(statement_turns, "gate", lambda: gate)
    client = sql_pool.CLIENT.get()

    async def scenario() -> dict[str, float]:
        async with gate.turn(client) as turn:
            turn.seconds = 0.002
        gate.clients.first_seen[client] -= KNOWN_AFTER_S + 1
        release = asyncio.Event()

        async def hold(holder: str) -> None:
            async with gate.turn(holder):
                await release.wait()

        holders = [asyncio.ensure_future(hold(holder)) for holder in ("slow-a", "slow-b")]
        busy = asyncio.ensure_future(sql_pool.pool().run_async(sandbox.key, lambda: {}, SLOW, 0, 10))
        await asyncio.sleep(QUICK_S + 0.05)
        turns = asyncio.ensure_future(statement_turns.run_in_turns(sandbox, CHEAP, 0, 10, statement_turns.Waited()))
        for _ in range(100):
            await asyncio.sleep(0.05)
            if gate.demotions and client not in gate.held:  # demoted, and its turn ended
                break
        slow_marks = dict(gate.slow_until)
        for task in (turns, busy):
            task.cancel()
        release.set()
        await asyncio.gather(turns, busy, *holders, return_exceptions=True)
        return slow_marks

    slow_marks = asyncio.run(scenario())
    assert gate.demotions >= 1, "the waiting statement was not demoted: the scenario did not happen"
    assert client not in slow_marks


def test_a_stopped_statement_whose_tables_load_slowly_is_answered_not_killed(sandbox: SqlSandbox) -> None:
    """A statement sent with its episode's tables loads them before it runs, and a busy machine may take longer than
    STOP_WAIT_S over that: told to stop, it answers once they are loaded (the worker keeps them for the episode's
    next statement) and is not killed (a kill would count its client as one whose statements must be killed)."""
    own = sql_pool.pool()
    fresh = SqlSandbox({"daily": {"day": np.arange(40)}})  # an episode no worker holds yet
    pids = own.worker_pids()

    def resume() -> None:
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGCONT)

    async def scenario() -> None:
        for pid in pids:  # no core for the worker while it would load the tables
            os.kill(pid, signal.SIGSTOP)
        asyncio.get_running_loop().call_later(STOP_WAIT_S + 0.4, resume)
        try:
            running = asyncio.ensure_future(fresh.prefetch(CHEAP))
            await asyncio.sleep(0.1)
            running.cancel()  # its step was given up: the statement is stopped, and awaited until its worker is free
            with contextlib.suppress(asyncio.CancelledError):
                await running
        finally:
            resume()

    try:
        asyncio.run(scenario())
        assert own.replaced == 0 and own.stopped == 1
        assert fresh.run(CHEAP).rows[0]["n"] == 40
    finally:
        fresh.close()
