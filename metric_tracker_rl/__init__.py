"""metric_tracker_rl: an OpenEnv environment for investigating a synthetic product funnel."""

from metric_tracker_rl.client import MetricTrackerRlEnv
from metric_tracker_rl.models import (
    MetricSubmissionRow,
    MetricTrackerRlAction,
    MetricTrackerRlObservation,
    MetricTrackerRlState,
    PayloadGeneratorMethod,
    RewardBreakdown,
)
from metric_tracker_rl.tasks import DEFAULT_TASK_ORDER, NAMED_TASK_ORDER, TASKS, TaskSpec, get_task_spec

__all__ = [
    "DEFAULT_TASK_ORDER",
    "NAMED_TASK_ORDER",
    "TASKS",
    "MetricSubmissionRow",
    "MetricTrackerRlAction",
    "MetricTrackerRlEnv",
    "MetricTrackerRlObservation",
    "MetricTrackerRlState",
    "PayloadGeneratorMethod",
    "RewardBreakdown",
    "TaskSpec",
    "get_task_spec",
]
