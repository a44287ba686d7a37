"""The episodes an entry point plays for a difficulty when it is asked for the difficulty alone (inference.py's
`--difficulty`, Inspect's `-T difficulty=`): its named tasks, or at a tier with no named task (the audit), the
first episode of its calibration sweep, the eval split's (a standard episode, as a named task is one)."""

from __future__ import annotations

from typing import Any

from metric_tracker_rl.catalog.task_splits import calibration_reset_kwargs
from metric_tracker_rl.catalog.tasks import DEFAULT_TASK_ORDER, get_task_spec


def tier_episodes(difficulty: str) -> list[dict[str, Any]]:
    """The reset arguments of each episode `difficulty` stands for (its name as the tiers spell it)."""
    named = [{"task_id": task_id} for task_id in DEFAULT_TASK_ORDER if get_task_spec(task_id).difficulty == difficulty]
    return named or [calibration_reset_kwargs(difficulty, 0)]


def episode_label(reset_kwargs: dict[str, Any]) -> str:
    """How logs and samples name an episode: its task id, else `<difficulty>_<seed>`."""
    return reset_kwargs.get("task_id") or f"{reset_kwargs['difficulty']}_{reset_kwargs['seed']}"
