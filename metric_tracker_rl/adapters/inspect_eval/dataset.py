"""The eval's samples: one per episode, each carrying the reset arguments that start it.

By default the named tasks (DEFAULT_TASK_ORDER, one per difficulty and more); with `difficulty` alone, the named
tasks at those difficulties (a tier with none, the audit: the first episode of its calibration sweep, as inference.py's
`--difficulty` plays); with `seeds` > 0, the calibration sweep of each difficulty (the episodes of the `eval`
split and of the lab's calibration, from metric_tracker_rl.catalog.task_splits alone: standard episodes, one in
every NULL_EVERY a null episode: task_splits.null_offset), from its episode `offset` on. Dial knobs (tasks.DIAL_KNOBS)
are set on every sample's reset arguments, and checked as reset checks them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inspect_ai.dataset import MemoryDataset, Sample

from metric_tracker_rl.catalog.published import DIFFICULTIES
from metric_tracker_rl.catalog.task_splits import calibration_reset_kwargs, sweep_version
from metric_tracker_rl.catalog.tasks import DEFAULT_TASK_ORDER, get_task_spec, knob_value, resolve_episode_config
from metric_tracker_rl.catalog.tier_episodes import episode_label, labelled_episode, tier_episodes
from metric_tracker_rl.catalog.validation import check_name_in_any_case


def as_list(value: str | Sequence[str] | None) -> list[str] | None:
    """A task argument given as a list or as a comma-separated string (`-T tasks=easy_two_spikes,...`)."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    return [item.strip() for item in items if item.strip()]


def named_task_samples(labels: Sequence[str]) -> list[Sample]:
    """The episodes `labels` name as samples are named: a task id, or `<difficulty>_<seed>` (a ValueError names
    the valid ids)."""
    samples = []
    for label in labels:
        episode = labelled_episode(label)
        if "task_id" in episode:
            spec = get_task_spec(episode["task_id"])
            samples.append(episode_sample(spec.task_id, spec.objective, episode, spec.difficulty))
        else:
            samples.append(seeded_sample(episode["difficulty"], episode))
    return samples


def checked_difficulties(names: Sequence[str]) -> list[str]:
    """Difficulty names in any letter case, as the tiers spell them; a ValueError names the valid choices."""
    try:
        return [check_name_in_any_case("difficulty", name, DIFFICULTIES) for name in names]
    except ValueError:
        unknown = next(name for name in names if name.casefold() not in {d.casefold() for d in DIFFICULTIES})
        raise ValueError(f"unknown difficulty {unknown!r}; valid choices: {', '.join(DIFFICULTIES)}") from None


def sweep_samples(difficulties: Sequence[str], seeds: int, offset: int) -> list[Sample]:
    return [
        seeded_sample(difficulty, calibration_reset_kwargs(difficulty, index, sweep_version(difficulty)))
        for difficulty in checked_difficulties(difficulties)
        for index in range(offset, offset + seeds)
    ]


def seeded_sample(difficulty: str, reset_kwargs: dict[str, Any]) -> Sample:
    kind = "null " if reset_kwargs.get("scenario_family") == "null" else ""
    objective = f"Find and report the incidents of a {kind}{difficulty} episode (seed {reset_kwargs['seed']})."
    return episode_sample(episode_label(reset_kwargs), objective, reset_kwargs, difficulty)


def tier_sample(difficulty: str, reset_kwargs: dict[str, Any]) -> Sample:
    """One of the episodes a difficulty stands for (`tier_episodes`): a named task, or a seeded episode."""
    if "task_id" in reset_kwargs:
        return named_task_samples([reset_kwargs["task_id"]])[0]
    return seeded_sample(difficulty, reset_kwargs)


def episode_sample(sample_id: str, objective: str, reset_kwargs: dict[str, Any], difficulty: str) -> Sample:
    return Sample(id=sample_id, input=objective, metadata={"reset_kwargs": reset_kwargs, "difficulty": difficulty})


def episode_dataset(
    tasks: str | Sequence[str] | None,
    difficulties: str | Sequence[str] | None,
    seeds: int,
    offset: int = 0,
    knobs: dict[str, Any] | None = None,
    version: int | None = None,
) -> MemoryDataset:
    """Named tasks (every one of DEFAULT_TASK_ORDER unless `tasks` names some) and, with `seeds` > 0, a sweep
    over `difficulties` (every difficulty unless named). A sweep alone leaves the named tasks out unless `tasks`
    names them; `difficulties` without a sweep chooses the named tasks at them. `knobs` (DIAL_KNOBS, unset ones
    None) are set on every sample, and so is `version` (of each sample's tier; None: each tier's latest)."""
    if seeds < 0:
        raise ValueError(f"seeds must be 0 or more, got {seeds}")
    if offset < 0:
        raise ValueError(f"offset must be 0 or more, got {offset}")
    task_ids = as_list(tasks)
    chosen = as_list(difficulties)
    samples: list[Sample] = []
    if chosen is not None and seeds == 0:
        chosen = checked_difficulties(chosen)
        if task_ids is None:  # each difficulty's own episodes: a tier with no named task, its sweep's first
            samples = [
                tier_sample(difficulty, episode) for difficulty in chosen for episode in tier_episodes(difficulty)
            ]
            task_ids = []
        for sample in named_task_samples(task_ids):
            if (sample.metadata or {})["difficulty"] not in chosen:
                raise ValueError(
                    f"task {sample.id} is at difficulty {(sample.metadata or {})['difficulty']}, not "
                    f"{', '.join(chosen)}: drop difficulty, or set seeds for a sweep of it"
                )
    if task_ids is None:
        task_ids = [] if seeds > 0 else list(DEFAULT_TASK_ORDER)
    samples += named_task_samples(task_ids)
    if seeds > 0:
        samples += sweep_samples(chosen or list(DIFFICULTIES), seeds, offset)
    if not samples:
        raise ValueError("the eval has no samples: name tasks, or set seeds for a sweep")
    set_knobs = {name: knob_value(name, value) for name, value in (knobs or {}).items() if value is not None}
    if version is not None:
        set_knobs["version"] = version
    if set_knobs:
        samples = [with_knobs(sample, set_knobs) for sample in samples]
    return MemoryDataset(samples, name="metric_tracker_rl")


def with_knobs(sample: Sample, knobs: dict[str, Any]) -> Sample:
    """The sample with the dial knobs in its reset arguments; a ValueError (reset's) names the sample, the knob
    and what it takes."""
    metadata = sample.metadata or {}  # every sample of the dataset carries its reset arguments
    reset_kwargs = {**metadata["reset_kwargs"], **knobs}
    try:
        resolve_episode_config(**reset_kwargs)
    except ValueError as exc:
        raise ValueError(f"{sample.id}: {exc}") from None
    return episode_sample(str(sample.id), str(sample.input), reset_kwargs, metadata["difficulty"])
