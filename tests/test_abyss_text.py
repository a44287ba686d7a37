"""What a model reads at abyss is what the generator and the grader do, measured on seeded episodes: which dates an
incident's rows cover and which of them show its full fall, how far an all-day incident stands out (the sizing a
reader computes from the data), what a date's second incident is, which steps a release breaks, how many benign
changes the config's decoy_ratio brings, which way an experiment's intended effect goes, and what the grading
message counts."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from core_helpers import reset_episode
from text_reader import read_observation

from metric_tracker_rl import MetricTrackerRlAction
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.view.prompt import first_prompt

ABYSS = "abyss"


@cache
def _brief(difficulty: str = ABYSS) -> dict[str, Any]:
    return read_observation(first_prompt(MetricTrackerRlEnvironment().reset(difficulty=difficulty, seed=1))).brief


# --- the grading message ---------------------------------------------------------------------------------------

def test_the_grading_message_counts_rows_as_rows() -> None:
    """An incident of several dates has a row on each: the message's count is of expected rows, not incidents."""
    env = MetricTrackerRlEnvironment()
    env.reset(difficulty=ABYSS, seed=346_521)
    episode = reset_episode(difficulty=ABYSS, seed=346_521)
    rows = [row.model_dump() for row in episode.truth.expected_rows]
    assert len(rows) > episode.truth.incident_count  # several dates for one incident
    result = env.step(MetricTrackerRlAction(classifications=rows[1:]))
    message = result.message
    counted = re.search(r"(\d+) of (\d+) expected (\w+)", message)
    assert counted is not None, message
    assert (int(counted[1]), int(counted[2])) == (len(rows) - 1, len(rows))
    assert counted[3].startswith("row"), message
