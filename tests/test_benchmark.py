"""The benchmark's reference servers and its WebSocket load (speed itself is measured by
`python -m benchmarks.run`, never asserted here)."""

from __future__ import annotations

import pytest

from benchmarks.replay_env import ReplayEnvironment
from benchmarks.run import analysis_action, bench_websocket
from metric_tracker_rl.models import MetricTrackerRlAction
from server.environment import MetricTrackerRlEnvironment

CYCLE = [analysis_action(i) for i in range(8)]


def test_replay_sends_the_real_observation_of_each_method_without_running_it_again() -> None:
    real, replay = MetricTrackerRlEnvironment(), ReplayEnvironment()
    real.reset(seed=4, max_steps=100)
    replay.reset(seed=4, max_steps=100)
    for payload in CYCLE:
        action = MetricTrackerRlAction(**payload)
        expected = real.step(action)
        first = replay.step(action)
        assert first.status == "ok" and first.model_dump() == expected.model_dump()
        assert replay.step(MetricTrackerRlAction(**payload)) is first
    assert replay.state.step_count == len(CYCLE)  # replayed calls do no work, not even counting
    replay.reset(seed=5, max_steps=100)  # a new episode answers from its own data
    again = replay.step(MetricTrackerRlAction(**CYCLE[0]))
    real.reset(seed=5, max_steps=100)
    assert again.model_dump() == real.step(MetricTrackerRlAction(**CYCLE[0])).model_dump()


@pytest.mark.slow
def test_websocket_load_runs_against_the_real_replay_and_null_servers() -> None:
    report = bench_websocket([3], duration_s=0.6, rounds=1)
    (row,) = report["rows"]
    for label in ("env", "replay", "null"):
        assert row[label]["steps"] > 0, label
        assert row[label]["errors"] == 0, (label, row[label]["first_errors"])
        assert row[label]["server_cpu_ms_per_step"] > 0, label
    assert row["ratio"] == pytest.approx(row["env"]["steps_per_s"] / row["null"]["steps_per_s"])
    assert row["replay_ratio"] == pytest.approx(row["replay"]["steps_per_s"] / row["null"]["steps_per_s"])


@pytest.mark.slow
def test_episode_load_completes_graded_episodes_against_both_servers() -> None:
    from benchmarks.episodes import bench_episodes

    report = bench_episodes([2], duration_s=1.5, rounds=1)
    (row,) = report["rows"]
    assert row["errors"] == 0, row["first_errors"]
    assert row["env_episodes_per_s"] > 0 and row["null_episodes_per_s"] > 0
    assert row["graded_share"] == 1.0  # every counted episode ended in its graded report
    assert row["ratio"] == pytest.approx(row["env_episodes_per_s"] / row["null_episodes_per_s"])
