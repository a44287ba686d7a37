"""The event loop's client of the SQL pool: a statement awaited on the loop answers as the thread's path does, a reply
is read whole however its bytes arrive, a worker past its deadline is killed (not asked) and replaced, a cancelled
statement is stopped in its worker, which is kept, and a server step after an episode's first statement waits on the
loop, not a thread."""

from __future__ import annotations

import asyncio
import pickle
import threading
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metric_tracker_rl import MetricTrackerRlAction
from metric_tracker_rl.models import MetricTrackerRlObservation
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.sql import pool as sql_pool
from metric_tracker_rl.sql.engine import TIME_MESSAGE
from metric_tracker_rl.sql.pool import SqlPool
from metric_tracker_rl.sql.sandbox import SqlRefused, SqlSandbox
from metric_tracker_rl.sql.worker import REPLY_HEADER
from metric_tracker_rl.sql.worker_process import WorkerProcess

CHEAP = "SELECT count(*) AS n, sum(day) AS days FROM daily"
SLOW = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r"


@pytest.fixture
def own_pool(monkeypatch: pytest.MonkeyPatch) -> Iterator[SqlPool]:
    pool = SqlPool(1)
    monkeypatch.setattr(sql_pool, "_POOL", pool)
    yield pool
    pool.close()


@pytest.fixture
def sandbox(own_pool: SqlPool) -> Iterator[SqlSandbox]:
    opened = SqlSandbox({"daily": {"day": np.arange(40), "orders": np.arange(40) * 2}})
    opened.run(CHEAP)  # the worker starts and loads the tables
    yield opened
    opened.close()


def test_a_prefetched_statement_answers_as_the_threads_path_and_runs_once(
    sandbox: SqlSandbox, own_pool: SqlPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = sandbox.run("SELECT day FROM daily ORDER BY day", 5, 7)
    seconds = asyncio.run(sandbox.prefetch("SELECT day FROM daily ORDER BY day", 5, 7))

    def no_second_run(*_: object) -> None:
        raise AssertionError("a prefetched statement ran again")

    monkeypatch.setattr(own_pool, "run", no_second_run)
    assert sandbox.run("SELECT day FROM daily ORDER BY day", 5, 7) == expected
    assert seconds > 0 and [row["day"] for row in expected.rows] == list(range(5, 12))


def test_a_refusal_is_prefetched_with_the_same_words(sandbox: SqlSandbox) -> None:
    with pytest.raises(SqlRefused) as direct:
        sandbox.run("SELECT random() FROM daily")
    asyncio.run(sandbox.prefetch("SELECT random() FROM daily"))
    with pytest.raises(SqlRefused) as prefetched:
        sandbox.run("SELECT random() FROM daily")
    assert str(prefetched.value) == str(direct.value)


def test_a_prefetch_for_other_arguments_is_not_used(sandbox: SqlSandbox) -> None:
    asyncio.run(sandbox.prefetch("SELECT day FROM daily ORDER BY day", 0, 3))
    assert [row["day"] for row in sandbox.run("SELECT day FROM daily ORDER BY day", 3, 3).rows] == [3, 4, 5]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=40), max_size=12), st.integers(min_value=0, max_value=300))
def test_a_reply_is_read_whole_however_its_bytes_arrive(cuts: list[int], size: int) -> None:
    reply = ("ok", ["x"], [["y" * size]], 1, False)
    body = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
    framed = len(body).to_bytes(REPLY_HEADER, "big") + body
    reader = WorkerProcess.__new__(WorkerProcess)  # the framing alone: no process
    reader._received = bytearray()  # noqa: SLF001
    pieces, start = [], 0
    for cut in cuts:
        if start < len(framed):
            pieces.append(framed[start : start + cut])
            start += cut
    if start < len(framed):
        pieces.append(framed[start:])
    answers = [reader._received_reply(piece) for piece in pieces]  # noqa: SLF001
    assert answers[-1] == reply and all(answer is None for answer in answers[:-1])


@pytest.mark.slow  # kills and restarts a SQL worker (tests/test_worker_kills.py's fast tests guard the healing)
def test_a_worker_past_its_deadline_on_the_loop_is_killed_and_replaced(
    sandbox: SqlSandbox, own_pool: SqlPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sql_pool, "TIME_LIMIT_S", 0.2)  # the pool's deadline, far before the worker's own limit
    monkeypatch.setattr(sql_pool, "KILL_GRACE_S", 0.1)
    before, pids = own_pool.replaced, own_pool.worker_pids()
    asyncio.run(sandbox.prefetch(SLOW))
    with pytest.raises(SqlRefused) as refused:
        sandbox.run(SLOW)
    assert str(refused.value) == TIME_MESSAGE
    assert own_pool.replaced >= before + 1 and own_pool.worker_pids() != pids  # (twice if the machine stalled it)
    assert sandbox.run(CHEAP).rows == [{"n": 40, "days": 780}]  # healed: a fresh worker answers


def test_a_cancelled_statement_is_stopped_in_its_worker_which_serves_the_next(
    sandbox: SqlSandbox, own_pool: SqlPool
) -> None:
    """A step given up (its socket closed, its bound passed) stops its runaway at once: the worker is interrupted,
    answers, and is kept (no kill, no fresh process), instead of running on to the time limit."""
    replaced, stopped, pids = own_pool.replaced, own_pool.stopped, own_pool.worker_pids()

    async def cancel_midway() -> None:
        task = asyncio.ensure_future(sandbox.prefetch(SLOW))
        await asyncio.sleep(0.3)
        assert own_pool.busy == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        while own_pool.busy:  # the stop is read on this loop
            await asyncio.sleep(0.02)

    asyncio.run(cancel_midway())
    assert own_pool.stopped == stopped + 1 and own_pool.replaced == replaced
    assert own_pool.worker_pids() == pids
    assert sandbox.run(CHEAP).rows == [{"n": 40, "days": 780}]


def test_a_served_sql_step_after_the_first_waits_on_the_event_loop(
    own_pool: SqlPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = MetricTrackerRlEnvironment()
    env.reset(difficulty="deep", seed=3, max_steps=20)
    action = MetricTrackerRlAction(analysis_method="query", analysis_args={"sql": "SELECT count(*) AS n FROM daily"})
    waited_in: list[str] = []  # the thread that reads a worker's CPU time around each statement
    real_cpu_seconds = WorkerProcess.cpu_seconds

    def noted(worker: WorkerProcess) -> float | None:
        waited_in.append(threading.current_thread().name)
        return real_cpu_seconds(worker)

    async def steps() -> list[MetricTrackerRlObservation]:
        first = await env.step_async(action)  # opens the sandbox and sends the tables: on a thread
        monkeypatch.setattr(WorkerProcess, "cpu_seconds", noted)
        return [first, *[await env.step_async(action) for _ in range(3)]]

    try:
        observations = asyncio.run(steps())
    finally:
        env.close()
    assert [o.status for o in observations] == ["ok"] * 4
    assert len({str(o.analysis_result) for o in observations}) == 1
    assert len(waited_in) >= 6 and set(waited_in) == {threading.main_thread().name}
    assert env.state.step_count == 4
