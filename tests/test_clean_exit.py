"""What is opened is closed: a SQL worker closes its DuckDB database when no statement follows, and an in-process
run of episodes exits without leaving DuckDB's objects for the interpreter to tear down (its bindings report each
one as a leak on stderr then)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.sql.pool import SqlPool

LEAK_MARKS = ("nanobind", "leaked")


def test_a_worker_told_no_statement_follows_closes_its_database_and_exits_by_itself(
    capfd: pytest.CaptureFixture[str],
) -> None:
    env = MetricTrackerRlEnvironment()
    env.reset(seed=3, difficulty="frontier")
    tables = env._playing.public.sql_tables()  # noqa: SLF001 - the tables a sandbox sends its worker
    pool = SqlPool(size=1)
    assert pool.run(7, lambda: tables, "SELECT count(*) FROM daily", 0, 10)[0] == "ok"
    (worker,) = pool._workers  # noqa: SLF001
    pool.close(grace_s=30.0)
    assert worker.process.returncode == 0  # it exited on its own, not killed
    stderr = capfd.readouterr().err
    assert not any(mark in stderr for mark in LEAK_MARKS), stderr


LOOP = textwrap.dedent("""
    from metric_tracker_rl.models import MetricTrackerRlAction
    from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment

    env = MetricTrackerRlEnvironment()
    for seed in range(3):
        for difficulty in ("easy", "frontier"):
            assert env.reset(seed=seed, difficulty=difficulty).status == "ready"
            for sql in ("SELECT count(*) FROM daily", "SELECT * FROM daily LIMIT 3"):
                action = MetricTrackerRlAction(analysis_method="query", analysis_args={"sql": sql})
                assert env.step(action).status == "ok", sql
    env.close()
    print("played")
""")


@pytest.mark.slow  # a fresh interpreter, its SQL workers and six episodes: about 10 s
def test_an_in_process_loop_of_episodes_exits_clean() -> None:
    run = subprocess.run([sys.executable, "-c", LOOP], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.strip() == "played", run.stderr
    assert not any(mark in run.stderr for mark in LEAK_MARKS), run.stderr
