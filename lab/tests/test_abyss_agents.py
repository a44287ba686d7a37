"""A few of abyss's calibration episodes: the scan analyst stays under its ceiling, and the
expert's median episode on the budget benchmark's own episodes fits the message budget."""

from __future__ import annotations

import statistics

import pytest

from lab.calibration.interface import record_episode
from lab.speed import rung_budgets
from metric_tracker_rl.agents.recording import message_texts
from metric_tracker_rl.catalog.task_splits import calibration_reset_kwargs
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment

ABYSS = "abyss"
# Calibration offsets that tuned neither the tier nor its expert (0-199 tuned or informed them).
EPISODES = range(200, 206)
SCAN_CEILING = 0.5


@pytest.mark.slow  # plays the budget benchmark's 64 episodes
def test_the_abyss_experts_median_episode_fits_the_message_budget() -> None:
    """The budget's own episodes (lab.speed.rung_budgets: one per session, from its first offset): the characters
    of the messages a model reads and writes, median over them."""
    env = MetricTrackerRlEnvironment()
    chars = [
        sum(
            map(
                len, message_texts(record_episode("deep_expert", calibration_reset_kwargs(ABYSS, offset), env).messages)
            )
        )
        for offset in range(rung_budgets.FIRST_OFFSET, rung_budgets.FIRST_OFFSET + rung_budgets.SESSIONS)
    ]
    env.close()
    assert statistics.median(chars) <= rung_budgets.BUDGETS["episode_chars"], statistics.median(chars)


@pytest.mark.slow
def test_the_scan_analyst_stays_under_its_ceiling_at_abyss() -> None:
    scores = [record_episode("scan_analyst", calibration_reset_kwargs(ABYSS, offset)).score for offset in EPISODES]
    assert statistics.mean(scores) <= SCAN_CEILING, scores
