"""The grade as an OpenEnv rubric tree, so a trainer reads the reward's components the way OpenEnv documents:

    for name, rubric in env.rubric.named_rubrics():
        print(name, rubric.last_score)

The tree adds no rule: each rubric's score is a figure of the graded submission's `reward_breakdown`, which the pure
grader (`grading.grader.grade_submission`) computed. The root is the submission's score, recall_quality x precision;
recall_quality is made of each expected row's field quality (its key found, anomaly type, detection method, values,
severity), times its segment credit where rows name segments. The environment applies the tree to every graded
submission and clears it on reset; a figure the breakdown leaves out stays None (a submission that is not the
episode's last shows only its score and its counts, and below frontier there is no segment credit).

The root's score is the submission's score, not the step's reward: a retry's reward is its improvement over the best
earlier score (see the environment's `_submit`).
"""

from __future__ import annotations

from typing import Any

from openenv.core.rubrics import Rubric

# rubric name -> the RewardBreakdown field it shows, for the parts of recall_quality.
ROW_FIELD_QUALITIES = {
    "key": "recall",
    "anomaly_type": "anomaly_type_accuracy",
    "detection_method": "detection_method_accuracy",
    "values": "value_accuracy",
    "severity": "severity_accuracy",
    "segment": "segment_accuracy",
}


def _shown(observation: Any, field: str) -> float | None:
    breakdown = getattr(observation, "reward_breakdown", None)
    return None if breakdown is None else getattr(breakdown, field)


class BreakdownFigure(Rubric):
    """One figure of a graded observation's reward_breakdown (None where the breakdown does not show it)."""

    def __init__(self, field: str) -> None:
        super().__init__()
        self.field = field

    def forward(self, action: Any, observation: Any) -> float | None:  # type: ignore[override]
        return _shown(observation, self.field)


class RecallQuality(BreakdownFigure):
    """recall_quality: the expected rows' mean quality; its children are each field's share of those rows."""

    def __init__(self) -> None:
        super().__init__("recall_quality")
        for name, field in ROW_FIELD_QUALITIES.items():
            setattr(self, name, BreakdownFigure(field))

    def forward(self, action: Any, observation: Any) -> float | None:  # type: ignore[override]
        for child in self.children():
            child(action, observation)
        return super().forward(action, observation)


class SubmissionRubric(Rubric):
    """The root: a graded submission's score (recall_quality x precision), with both parts as children."""

    def __init__(self) -> None:
        super().__init__()
        self.recall_quality = RecallQuality()
        self.precision = BreakdownFigure("precision")

    def forward(self, action: Any, observation: Any) -> float | None:  # type: ignore[override]
        for child in self.children():
            child(action, observation)
        return _shown(observation, "score")

    def reset(self) -> None:
        """Forget the last submission's figures (a new episode has none)."""
        for rubric in (self, *self.rubrics()):
            object.__setattr__(rubric, "last_score", None)
