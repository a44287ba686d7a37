"""metric_tracker_rl: an OpenEnv environment for investigating a synthetic product funnel.

The public names below are loaded on first use (PEP 562), so importing a plain data module such as
`metric_tracker_rl.catalog.published` does not pay for the client, which imports OpenEnv and through it gradio. The
plain types (a report row, a generator call, a score breakdown) come from `plain_types`, which does not import OpenEnv.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:  # the one version is pyproject.toml's; openenv.yaml repeats it and a test compares the two
    __version__ = version("metric_tracker_rl")
except PackageNotFoundError:  # a source tree on sys.path that was never installed
    __version__ = "0+unknown"

_EXPORTS: dict[str, str] = {
    "MetricTrackerRlEnv": "metric_tracker_rl.client",
    "MetricSubmissionRow": "metric_tracker_rl.catalog.plain_types",
    "MetricTrackerRlAction": "metric_tracker_rl.models",
    "MetricTrackerRlObservation": "metric_tracker_rl.models",
    "MetricTrackerRlState": "metric_tracker_rl.models",
    "PayloadGeneratorMethod": "metric_tracker_rl.catalog.plain_types",
    "RewardBreakdown": "metric_tracker_rl.catalog.plain_types",
    "DEFAULT_TASK_ORDER": "metric_tracker_rl.catalog.tasks",
    "NAMED_TASK_ORDER": "metric_tracker_rl.catalog.tasks",
    "TASKS": "metric_tracker_rl.catalog.tasks",
    "TaskSpec": "metric_tracker_rl.catalog.tasks",
    "get_task_spec": "metric_tracker_rl.catalog.tasks",
}
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
assert sorted(__all__) == sorted(_EXPORTS), "every export is listed once in each"

if TYPE_CHECKING:
    from metric_tracker_rl.catalog.plain_types import MetricSubmissionRow, PayloadGeneratorMethod, RewardBreakdown
    from metric_tracker_rl.catalog.tasks import DEFAULT_TASK_ORDER, NAMED_TASK_ORDER, TASKS, TaskSpec, get_task_spec
    from metric_tracker_rl.client import MetricTrackerRlEnv
    from metric_tracker_rl.models import MetricTrackerRlAction, MetricTrackerRlObservation, MetricTrackerRlState


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'metric_tracker_rl' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
