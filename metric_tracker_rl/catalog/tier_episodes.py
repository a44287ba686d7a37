"""The episodes an entry point plays for a difficulty when it is asked for the difficulty alone (inference.py's
`--difficulty`, Inspect's `-T difficulty=`): its named tasks, or at a tier with no named task (the audit), the
first episode of its calibration sweep, the eval split's (a standard episode, as a named task is one)."""

from __future__ import annotations

from typing import Any

from metric_tracker_rl.catalog.published import DIFFICULTIES
from metric_tracker_rl.catalog.task_splits import calibration_reset_kwargs
from metric_tracker_rl.catalog.tasks import DEFAULT_TASK_ORDER, get_task_spec


def tier_episodes(difficulty: str) -> list[dict[str, Any]]:
    """The reset arguments of each episode `difficulty` stands for (its name as the tiers spell it)."""
    named = [{"task_id": task_id} for task_id in DEFAULT_TASK_ORDER if get_task_spec(task_id).difficulty == difficulty]
    return named or [calibration_reset_kwargs(difficulty, 0)]


def episode_label(reset_kwargs: dict[str, Any]) -> str:
    """How logs and samples name an episode: its task id, else `<difficulty>_<seed>`."""
    return reset_kwargs.get("task_id") or f"{reset_kwargs['difficulty']}_{reset_kwargs['seed']}"


def labelled_episode(label: str) -> dict[str, Any]:
    """The reset arguments of the episode `label` names as `episode_label` prints it: a named task's id (in any
    letter case, or a former id), or `<difficulty>_<seed>`. A ValueError names what is valid."""
    try:
        return {"task_id": get_task_spec(label).task_id}
    except ValueError as unknown:
        difficulty, _, seed = label.rpartition("_")
        tier = next((name for name in DIFFICULTIES if name.casefold() == difficulty.casefold()), None)
        if tier is not None and seed.isdigit():
            return {"difficulty": tier, "seed": int(seed)}
        raise ValueError(
            f"{unknown}; or an episode as the log names it, <difficulty>_<seed> (e.g. audit_80000)"
        ) from None
