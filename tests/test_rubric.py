"""The grade as OpenEnv's rubric tree: env.rubric.named_rubrics() lists the score's components (recall quality and
each row field's quality, the segment credit, precision), each one's last_score is the figure the graded
observation's reward_breakdown shows, and the tree changes no reward."""

from __future__ import annotations

import pytest
from core_helpers import reset_episode
from openenv.core.rubrics import Rubric

from metric_tracker_rl.models import MetricSubmissionRow, MetricTrackerRlAction
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.serving.rubric import ROW_FIELD_QUALITIES

NAMES = ["recall_quality", *(f"recall_quality.{name}" for name in ROW_FIELD_QUALITIES), "precision"]
FIELDS = {
    "recall_quality": "recall_quality",
    "precision": "precision",
    **{f"recall_quality.{name}": field for name, field in ROW_FIELD_QUALITIES.items()},
}


def scores(env: MetricTrackerRlEnvironment) -> dict[str, float | None]:
    return {name: rubric.last_score for name, rubric in env.rubric.named_rubrics()}


def submitted(env: MetricTrackerRlEnvironment, rows: list[MetricSubmissionRow]) -> object:
    return env.step(MetricTrackerRlAction(classifications=rows))


def test_the_tree_lists_the_grades_components() -> None:
    env = MetricTrackerRlEnvironment()
    assert isinstance(env.rubric, Rubric)
    assert [name for name, _ in env.rubric.named_rubrics()] == NAMES
    assert env.rubric.get_rubric("recall_quality.segment").last_score is None


@pytest.mark.parametrize(("difficulty", "seed"), [("medium", 2), ("frontier", 1), ("deep", 3)])
def test_each_last_score_is_the_figure_the_breakdown_shows(difficulty: str, seed: int) -> None:
    env = MetricTrackerRlEnvironment()
    env.reset(seed=seed, difficulty=difficulty)
    truth = reset_episode(seed=seed, difficulty=difficulty).truth
    # Half the incidents, one with a wrong severity, and a row on a key with no incident: every part below 1.
    rows = [row.model_copy() for row in truth.expected_rows[: max(1, len(truth.expected_rows) // 2)]]
    rows[0] = rows[0].model_copy(update={"severity": "low" if rows[0].severity != "low" else "critical"})
    stray = truth.expected_rows[0].model_copy(
        update={"entity_name": "app_opens", "entity_type": "event_count", "date": env._playing.public.dates[1]}
    )
    observation = submitted(env, [*rows, stray])
    breakdown = observation.reward_breakdown
    assert observation.status == "graded" and breakdown is not None
    for name, value in scores(env).items():
        assert value == getattr(breakdown, FIELDS[name]), name
    assert env.rubric.last_score == breakdown.score == observation.reward  # the first submission's reward
    assert 0 < breakdown.recall_quality < 1 and breakdown.precision < 1
    assert (env.rubric.get_rubric("recall_quality.segment").last_score is None) == (difficulty == "medium")
    env.reset(seed=seed, difficulty=difficulty)
    assert env.rubric.last_score is None and set(scores(env).values()) == {None}


def test_a_submission_that_is_not_the_last_shows_only_its_score() -> None:
    env = MetricTrackerRlEnvironment()
    env.reset(seed=2, difficulty="medium", max_submissions=2)
    observation = submitted(env, [])
    assert not observation.done and observation.reward_breakdown.recall_quality is None
    assert env.rubric.last_score == observation.reward_breakdown.score
    assert set(scores(env).values()) == {None}  # what the coarse breakdown hides, the tree does not show


def test_an_analysis_step_leaves_the_last_grade() -> None:
    env = MetricTrackerRlEnvironment()
    env.reset(seed=2, difficulty="medium", max_submissions=2)
    submitted(env, [])
    env.step(MetricTrackerRlAction(analysis_method="list_suspicious_dates", analysis_args={"limit": 3}))
    assert env.rubric.last_score is not None
