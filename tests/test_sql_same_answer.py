"""The same statement gets the same answer at any time and in any worker: what depends on the clock, on chance or
on the worker's own counters is refused (a seeded sample is not), and a statement the machine stalled (stopped in
wall time with CPU time to spare) runs again before a time limit is reported, while one that spent its CPU time is
stopped for good. The replays under load are lab/tests/test_same_call_same_answer.py (slow)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from core_helpers import reset_episode

from metric_tracker_rl.sql import pool as sql_pool
from metric_tracker_rl.sql.sandbox import TIME_LIMIT_S, SqlRefused, SqlSandbox


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SqlSandbox]:
    box = SqlSandbox(reset_episode(seed=3, difficulty="medium").public.sql_tables())
    yield box
    box.close()


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT random() AS r",
        "SELECT uuid() AS u",
        "SELECT gen_random_uuid() AS u",
        "SELECT now() AS t",
        "SELECT today() AS t",
        "SELECT current_date AS d",
        "SELECT CURRENT_TIMESTAMP AS t",
        "SELECT localtime AS t",
        "SELECT get_current_timestamp() AS t",
        "SELECT current_query_id() AS q",
        "SELECT current_connection_id() AS c",
        "SELECT count(*) AS n FROM daily WHERE date > current_date - 30",
        "SELECT * FROM daily ORDER BY random() LIMIT 3",
    ],
)
def test_the_clock_chance_and_the_workers_counters_are_refused(sandbox: SqlSandbox, sql: str) -> None:
    with pytest.raises(SqlRefused, match="depends on the clock or on chance"):
        sandbox.run(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) AS n FROM daily USING SAMPLE 50%",
        "SELECT count(*) AS n FROM daily TABLESAMPLE 50%",
        "SELECT count(*) AS n FROM daily USING SAMPLE 10 ROWS",
    ],
)
def test_a_sample_without_a_seed_is_refused(sandbox: SqlSandbox, sql: str) -> None:
    with pytest.raises(SqlRefused, match="with a seed only"):
        sandbox.run(sql)


def test_a_seeded_sample_draws_the_same_rows_every_time(sandbox: SqlSandbox) -> None:
    sql = "SELECT date, app_opens FROM daily USING SAMPLE 30% (bernoulli, 7) ORDER BY date"
    drawn = [sandbox.run(sql).rows for _ in range(3)]
    assert 0 < len(drawn[0]) < sandbox.run("SELECT count(*) AS n FROM daily").rows[0]["n"]
    assert drawn[1] == drawn[0] and drawn[2] == drawn[0]


def test_a_column_that_shares_a_clock_words_name_is_no_clock(sandbox: SqlSandbox) -> None:
    assert sandbox.run("SELECT d.current_date FROM (SELECT 1 AS current_date) d").rows == [{"current_date": 1}]


class ScriptedPool:
    """A pool whose replies are scripted: each item is a reply tuple or a WorkerFailed to raise."""

    def __init__(self, script: list[Any]) -> None:
        self.script, self.calls = list(script), 0

    def run(self, *_args: Any) -> tuple[Any, ...]:
        self.calls += 1
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step

    def forget(self, _key: int) -> None:
        pass


OK = ("ok", ["n"], [[1]], 1, False)


@pytest.mark.parametrize(
    "stall",
    [("stalled", True), sql_pool.WorkerFailed(timed_out=True, stalled=True)],
    ids=["stopped by the worker's watchdog", "killed by the pool"],
)
def test_a_statement_the_machine_stalled_runs_again(monkeypatch: pytest.MonkeyPatch, stall: Any) -> None:
    scripted = ScriptedPool([stall, OK])
    monkeypatch.setattr(sql_pool, "pool", lambda: scripted)
    assert SqlSandbox({}).run("SELECT 1 AS n").rows == [{"n": 1}] and scripted.calls == 2


def test_a_statement_stalled_every_time_meets_the_time_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    scripted = ScriptedPool([("stalled", True), sql_pool.WorkerFailed(timed_out=True, stalled=True), OK])
    monkeypatch.setattr(sql_pool, "pool", lambda: scripted)
    with pytest.raises(SqlRefused, match=f"{TIME_LIMIT_S:g} s time limit"):
        SqlSandbox({}).run("SELECT 1 AS n")
    assert scripted.calls == 2


@pytest.mark.parametrize(
    "failure, message",
    [(sql_pool.WorkerFailed(timed_out=True), "time limit"), (sql_pool.WorkerFailed(timed_out=False), "more memory")],
)
def test_a_runaway_is_stopped_once_and_never_run_again(
    monkeypatch: pytest.MonkeyPatch, failure: Exception, message: str
) -> None:
    scripted = ScriptedPool([failure, OK])
    monkeypatch.setattr(sql_pool, "pool", lambda: scripted)
    with pytest.raises(SqlRefused, match=message):
        SqlSandbox({}).run("SELECT 1 AS n")
    assert scripted.calls == 1
