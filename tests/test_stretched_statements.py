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
from metric_tracker_rl.sql.fair_gate import KNOWN_AFTER_S, QUICK_S, FairGate
from metric_tracker_rl.sql.pool import SqlPool
from metric_tracker_rl.sql.sandbox import SqlSandbox

CHEAP = "SELECT count(*) AS n, sum(day) AS days FROM daily"


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
        gate.first_seen[client] -= KNOWN_AFTER_S + 1  # a known quick client
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
