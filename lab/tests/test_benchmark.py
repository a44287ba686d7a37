"""The benchmark's reference servers and its WebSocket load (speed itself is measured by
`python -m lab.speed.run`, never asserted here)."""

from __future__ import annotations

import pytest

from lab.speed.replay_env import ReplayEnvironment
from lab.speed.reset_profile import STAGES, profile_resets
from lab.speed.run import analysis_action, bench_websocket
from metric_tracker_rl.catalog.tiers import TIERS
from metric_tracker_rl.generation import aggregate
from metric_tracker_rl.models import MetricTrackerRlAction
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment

CYCLE = [analysis_action(i) for i in range(8)]
HARD_MIX = TIERS["hard"].aggregate
assert HARD_MIX is not None


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


@pytest.mark.slow
def test_episode_load_completes_graded_episodes_against_both_servers() -> None:
    from lab.speed.episodes import bench_episodes

    report = bench_episodes([2], duration_s=1.5, rounds=1)
    (row,) = report["rows"]
    assert row["errors"] == 0, row["first_errors"]
    assert row["env_episodes_per_s"] > 0 and row["null_episodes_per_s"] > 0
    assert row["graded_share"] == 1.0  # every counted episode ended in its graded report


def test_the_null_episode_sends_as_many_messages_as_the_scripted_agents() -> None:
    """The episode benchmark's ratio compares like with like only if the null environment answers as many steps
    per episode as the scripted agent takes."""
    from lab.speed.episodes import SCRIPTED_STEPS
    from metric_tracker_rl.agents import make_agent, run_episode
    from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment

    env = MetricTrackerRlEnvironment()
    for seed, difficulty in ((5_000_000, "easy"), (5_000_001, "medium"), (5_000_002, "hard")):
        steps = run_episode(make_agent("scripted"), env.reset, env.step, seed=seed, difficulty=difficulty)
        assert len(steps) == SCRIPTED_STEPS and steps[-1].status == "graded"


def test_reset_profile_reports_each_stage_and_removes_its_timers() -> None:
    before = [getattr(module, name) for module, name, _ in STAGES] + [
        dict(aggregate.FLUCTUATIONS),
        dict(aggregate.DISTRACTORS),
    ]
    total, rows = profile_resets("hard_mixed_multi", resets=3)
    calls = {label: per_reset for label, _, per_reset in rows}
    expected = (
        {"draw counts", "metric panel", "baseline plan", "ground truth"}
        | {f"fluctuation: {kind}" for kind in HARD_MIX.fluctuations}
        | {f"distractor: {kind}" for kind in HARD_MIX.distractors}
    )
    assert expected <= set(calls)
    assert calls["draw counts"] == calls["metric panel"] == 1.0  # one of each per reset
    assert all(0 < ms < total for label, ms, _ in rows if not label.startswith(" "))  # a stage is part of a reset
    after = [getattr(module, name) for module, name, _ in STAGES] + [
        dict(aggregate.FLUCTUATIONS),
        dict(aggregate.DISTRACTORS),
    ]
    assert after == before
