"""Where a statement step's wall time goes (`sql.ledger`): each step is counted once, its phases are measured
within its own wall time, a stop is counted, and `GET /ready` reports the sums."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from metric_tracker_rl import MetricTrackerRlAction
from metric_tracker_rl.serving import step_bound
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.sql import ledger
from metric_tracker_rl.sql.pool import pool

CHEAP = "SELECT count(*) AS n FROM daily"
RUNAWAY = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r"
PHASES = ("sandbox_open_s", "gate_wait_s", "worker_wait_s", "send_s", "engine_cpu_s", "reply_wait_s", "rerun_s")


def query(sql: str) -> MetricTrackerRlAction:
    return MetricTrackerRlAction(analysis_method="query", analysis_args={"sql": sql})


def added(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: after[name] - before[name] for name in after}


UNSHARED_SEED = 4_242_421  # no other test opens this episode: its first statement here builds its tables


def test_each_statement_step_is_counted_once_and_its_phases_fit_in_its_wall_time() -> None:
    env = MetricTrackerRlEnvironment()
    env.reset(difficulty="easy", seed=UNSHARED_SEED)

    async def play() -> list[Any]:
        return [await env.step_async(query(CHEAP)) for _ in range(3)]

    before = ledger.snapshot()
    observations = asyncio.run(play())
    spent = added(before, ledger.snapshot())
    assert [o.status for o in observations] == ["ok"] * 3
    assert spent["statements"] == 3 and spent["attempts"] >= 3
    assert all(spent[phase] >= 0 for phase in PHASES), spent
    # Each phase is a part of its step: together they fit in the steps' wall time (the sums are rounded to 1 ms).
    assert sum(spent[phase] for phase in PHASES) <= spent["step_s"] + 0.01, spent


def test_an_analysis_call_is_no_statement() -> None:
    env = MetricTrackerRlEnvironment()
    env.reset(difficulty="easy", seed=11)
    before = ledger.snapshot()
    asyncio.run(env.step_async(MetricTrackerRlAction(analysis_method="get_annotations", analysis_args={})))
    assert added(before, ledger.snapshot())["statements"] == 0


def test_a_statement_stopped_at_the_step_bound_is_counted_as_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    env = MetricTrackerRlEnvironment()
    env.reset(difficulty="easy", seed=11)

    async def play() -> Any:
        await env.step_async(query(CHEAP))
        monkeypatch.setattr(step_bound, "_BOUND_S", [0.5])
        given_up = await env.step_async(query(RUNAWAY))
        for _ in range(500):  # the stop is read on this loop
            if not pool().busy:
                break
            await asyncio.sleep(0.02)
        return given_up

    before = ledger.snapshot()
    given_up = asyncio.run(play())
    spent = added(before, ledger.snapshot())
    assert given_up.status == "error" and "step time bound" in given_up.message
    assert spent["statements"] == 2 and spent["stopped"] == 1
    assert spent["step_s"] >= 0.5


@pytest.mark.slow
def test_ready_reports_the_statement_ledger_of_a_live_server(server_url: str) -> None:
    before = httpx.get(f"{server_url}/ready", timeout=30).json()["statements"]
    with connect(server_url.replace("http", "ws", 1) + "/ws") as ws:
        ws.send(json.dumps({"type": "reset", "data": {"difficulty": "easy", "seed": 4}}))
        json.loads(ws.recv(timeout=60))
        ws.send(json.dumps({"type": "step", "data": {"analysis_method": "query", "analysis_args": {"sql": CHEAP}}}))
        reply = json.loads(ws.recv(timeout=60))
    assert reply["data"]["observation"]["status"] == "ok"
    after = httpx.get(f"{server_url}/ready", timeout=30).json()
    assert after["status"] == "ready"
    spent = added(before, after["statements"])
    assert spent["statements"] == 1 and spent["attempts"] >= 1 and spent["step_s"] > 0
