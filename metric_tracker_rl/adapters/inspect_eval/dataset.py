"""The eval's samples: one per episode, each carrying the reset arguments that start it.

By default the named tasks (DEFAULT_TASK_ORDER, frontier's included); with `seeds` > 0, the calibration sweep of
each difficulty (the episodes of the `eval` split and of benchmarks/calibrate.py, from metric_tracker_rl.task_splits
alone: standard episodes, every NULL_EVERY-th a null episode), from its episode `offset` on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inspect_ai.dataset import MemoryDataset, Sample

from metric_tracker_rl.published import DIFFICULTIES
from metric_tracker_rl.task_splits import calibration_reset_kwargs
from metric_tracker_rl.tasks import DEFAULT_TASK_ORDER, get_task_spec


def as_list(value: str | Sequence[str] | None) -> list[str] | None:
    """A task argument given as a list or as a comma-separated string (`-T tasks=easy_two_spikes,...`)."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    return [item.strip() for item in items if item.strip()]


def named_task_samples(task_ids: Sequence[str]) -> list[Sample]:
    samples = []
    for task_id in task_ids:
        spec = get_task_spec(task_id)  # ValueError naming the valid ids
        samples.append(episode_sample(task_id, spec.objective, {"task_id": task_id}, spec.difficulty))
    return samples


def sweep_samples(difficulties: Sequence[str], seeds: int, offset: int) -> list[Sample]:
    samples = []
    for difficulty in difficulties:
        if difficulty not in DIFFICULTIES:
            raise ValueError(f"unknown difficulty {difficulty!r}; valid choices: {', '.join(DIFFICULTIES)}")
        for index in range(offset, offset + seeds):
            reset_kwargs = calibration_reset_kwargs(difficulty, index)
            kind = "null " if reset_kwargs.get("scenario_family") == "null" else ""
            objective = f"Find and report the incidents of a {kind}{difficulty} episode (seed {reset_kwargs['seed']})."
            samples.append(episode_sample(f"{difficulty}_{reset_kwargs['seed']}", objective, reset_kwargs,
                                          difficulty))
    return samples


def episode_sample(sample_id: str, objective: str, reset_kwargs: dict[str, Any], difficulty: str) -> Sample:
    return Sample(id=sample_id, input=objective,
                  metadata={"reset_kwargs": reset_kwargs, "difficulty": difficulty})


def episode_dataset(tasks: str | Sequence[str] | None, difficulties: str | Sequence[str] | None, seeds: int,
                    offset: int = 0) -> MemoryDataset:
    """Named tasks (every one of DEFAULT_TASK_ORDER unless `tasks` names some) and, with `seeds` > 0, a sweep
    over `difficulties` (every difficulty unless named). A sweep alone leaves the named tasks out unless `tasks`
    names them."""
    if seeds < 0:
        raise ValueError(f"seeds must be 0 or more, got {seeds}")
    if offset < 0:
        raise ValueError(f"offset must be 0 or more, got {offset}")
    task_ids = as_list(tasks)
    if task_ids is None:
        task_ids = [] if seeds > 0 else list(DEFAULT_TASK_ORDER)
    samples = named_task_samples(task_ids)
    if seeds > 0:
        samples += sweep_samples(as_list(difficulties) or list(DIFFICULTIES), seeds, offset)
    elif difficulties is not None:
        raise ValueError("difficulty selects a seed sweep: set seeds to the number of episodes per difficulty")
    if not samples:
        raise ValueError("the eval has no samples: name tasks, or set seeds for a sweep")
    return MemoryDataset(samples, name="metric_tracker_rl")
