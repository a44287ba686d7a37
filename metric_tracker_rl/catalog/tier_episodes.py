"""The episodes an entry point plays for a difficulty when it is asked for the difficulty alone (inference.py's
`--difficulty`, Inspect's `-T difficulty=`): its named tasks, or at a tier with no named task (the audit), the
first episode of its calibration sweep, the eval split's (a standard episode, as a named task is one). And the
episode a training harness plays for reset settings that choose none (`train_episode`): a train task's, never an
eval one."""

from __future__ import annotations

import random
from typing import Any

from metric_tracker_rl.catalog.published import DIFFICULTIES
from metric_tracker_rl.catalog.task_splits import calibration_reset_kwargs, drawn_train_seed
from metric_tracker_rl.catalog.tasks import DEFAULT_TASK_ID, DEFAULT_TASK_ORDER, get_task_spec
from metric_tracker_rl.catalog.tiers import TIERS

# Reset settings that choose an episode themselves: with none of them, the server would play its default (seed 0,
# or the first named task), an eval-split episode.
EPISODE_CHOOSING_KEYS = ("seed", "task_id", "split", "index")


def tier_episodes(difficulty: str) -> list[dict[str, Any]]:
    """The reset arguments of each episode `difficulty` stands for (its name as the tiers spell it)."""
    named = [{"task_id": task_id} for task_id in DEFAULT_TASK_ORDER if get_task_spec(task_id).difficulty == difficulty]
    return named or [calibration_reset_kwargs(difficulty, 0)]


def episode_label(reset_kwargs: dict[str, Any]) -> str:
    """How logs and samples name an episode: its task id, else `<difficulty>_<seed>`, the difficulty with its
    version (`audit-v1_<seed>`) where the episode plays one that is not its tier's latest (a split's task may)."""
    if reset_kwargs.get("task_id"):
        return str(reset_kwargs["task_id"])
    difficulty, version = reset_kwargs["difficulty"], reset_kwargs.get("version")
    earlier = version is not None and difficulty in TIERS and version != TIERS[difficulty].version
    return f"{difficulty}{f'-v{version}' if earlier else ''}_{reset_kwargs['seed']}"


def train_episode(settings: dict[str, Any], draw: random.Random) -> dict[str, Any]:
    """The reset settings a training harness sends: as given where they choose an episode (a seed, a task, a split's
    index), else with a train task's seed drawn at their difficulty (that of the first named task where they name
    none), so a dataset row without a seed never plays the eval split. A tier with no train task (one not listed)
    is left to the server."""
    if any(key in settings for key in EPISODE_CHOOSING_KEYS):
        return settings
    asked = str(settings.get("difficulty", get_task_spec(DEFAULT_TASK_ID).difficulty))
    difficulty = next((name for name in DIFFICULTIES if name == asked.lower()), None)
    seed = None if difficulty is None else drawn_train_seed(difficulty, draw)
    return settings if seed is None else {**settings, "difficulty": difficulty, "seed": seed}


def labelled_episode(label: str) -> dict[str, Any]:
    """The reset arguments of the episode `label` names as `episode_label` prints it: a named task's id (in any
    letter case, or a former id), or `<difficulty>_<seed>` (`<difficulty>-v<version>_<seed>` at an earlier version).
    A ValueError names what is valid."""
    try:
        return {"task_id": get_task_spec(label).task_id}
    except ValueError as unknown:
        difficulty, _, seed = label.rpartition("_")
        difficulty, _, version = difficulty.partition("-v")
        tier = next((name for name in DIFFICULTIES if name.casefold() == difficulty.casefold()), None)
        if tier is not None and seed.isdigit() and (version == "" or version.isdigit()):
            return {"difficulty": tier, "seed": int(seed), **({"version": int(version)} if version else {})}
        raise ValueError(
            f"{unknown}; or an episode as the log names it, <difficulty>_<seed> (e.g. audit_80000)"
        ) from None
