"""Task splits for trainers and evaluators (OpenEnv's Task API).

A task is the reset keyword arguments that start its episode, so `env.reset(**task)` runs it; `reset(split=...,
index=...)` does the same. Both splits are generated from seeds, never stored:

- `train`: standard seeded episodes, task i = {seed: TRAIN_SEED_BASE + i, difficulty: ...} with the difficulty
  from TRAIN_SCHEDULE, a published list of blocks of indices, each cycling over its difficulties. Blocks are only
  ever appended (a listed tier gets a block of its own after the others, derived from TIERS), so no train task
  changes when a tier is listed.
- `eval`: EVAL_SCHEDULE, a published list of blocks only ever appended to: the first named tasks, the calibration
  sweep (EVAL_SEEDS_PER_DIFFICULTY seeds per difficulty from each tier's
  `calibration_seed_base`), then each named task or tier's sweep added since, after the others. Every eval seed is
  below TRAIN_SEED_BASE, so the splits share no episode. A deployment that scores agents serves them in held-out
  mode (METRIC_TRACKER_SECRET set), where the episodes cannot be rebuilt from the public package.

The calibration also scores every reference agent on each tier's untuned seeds (UNTUNED_FIRST_OFFSET on from the
tier's `calibration_seed_base`): the eval seeds tuned the experts and the tiers' settings, these tuned nothing. They
are in neither split.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Literal

from metric_tracker_rl.catalog.published import DIFFICULTIES
from metric_tracker_rl.catalog.seeding import EpisodeKey, derive_rng
from metric_tracker_rl.catalog.tiers import TIERS

TRAIN_SEED_BASE = 1_000_000


@dataclass(frozen=True)
class TrainBlock:
    """`count` consecutive train tasks whose difficulties cycle over `difficulties` in turn, each at `version` of its
    tier: a published block keeps naming the episodes it named when a tier gains a version."""

    count: int
    difficulties: tuple[str, ...]
    version: int = 1


# The train split's published schedule: the first block, a block of its own for each tier listed after them, in
# TIERS's order, then a block for each tier's later version (the audit's second); then a block of its own for every
# tier listed since, derived. A published block is never edited nor reordered, since a trainer's recorded task
# indices would then name other episodes: to append a block, first write the derived ones out here.
FIRST_TRAIN_BLOCK = TrainBlock(6_000, ("easy", "medium", "hard", "frontier"))
TIER_TRAIN_TASKS = 2_000
PUBLISHED_TRAIN_BLOCKS: tuple[TrainBlock, ...] = (
    FIRST_TRAIN_BLOCK,
    *(TrainBlock(TIER_TRAIN_TASKS, (name,)) for name in ("deep", "abyss", "warehouse", "audit")),
    TrainBlock(TIER_TRAIN_TASKS, ("audit",), version=2),
)


def train_schedule(listed: tuple[str, ...]) -> tuple[TrainBlock, ...]:
    """The published train blocks, then a block of each `listed` difficulty they do not hold, in their order."""
    held = {name for block in PUBLISHED_TRAIN_BLOCKS for name in block.difficulties}
    return (*PUBLISHED_TRAIN_BLOCKS, *(TrainBlock(TIER_TRAIN_TASKS, (name,)) for name in listed if name not in held))


TRAIN_SCHEDULE = train_schedule(DIFFICULTIES)
# Listed in full by list_tasks; any seed from TRAIN_SEED_BASE + TRAIN_TASK_COUNT on is a further training episode.
TRAIN_TASK_COUNT = sum(block.count for block in TRAIN_SCHEDULE)
EVAL_SEEDS_PER_DIFFICULTY = 200
# One of every 10 consecutive calibration seeds is a null episode (no business incident): the last of each ten, or
# at a drawn place (DRAWN_NULL_SWEEPS).
NULL_EVERY = 10
NULL_STREAM = "null-episode"  # the stream that draws each block's null episode (null_offset)
# The first offset of every tier's untuned calibration seeds. Tiers' bases are 10,000 apart, so a tier's untuned
# seeds (base + 5,000 to base + 5,199) meet no tier's eval seeds (base + 0 to 199) nor any other tier's untuned ones,
# and stay below TRAIN_SEED_BASE. It is a multiple of NULL_EVERY, so its blocks of ten hold one null episode each.
UNTUNED_FIRST_OFFSET = 5_000


MechanismSplit = Literal["train", "eval"]


def mechanism_split(seed: int) -> MechanismSplit:
    """The split an episode of this seed is in, which at a tier with held-out mechanisms (the audit) says what it
    may hold: every seed of the train split is TRAIN_SEED_BASE or above, every eval seed below it."""
    return "train" if seed >= TRAIN_SEED_BASE else "eval"


def train_task(index: int, schedule: tuple[TrainBlock, ...] = TRAIN_SCHEDULE) -> dict[str, Any]:
    """Train task `index` under `schedule` (the published one unless a test passes another); its seed is
    TRAIN_SEED_BASE + index whatever the block, so every train task has a seed of its own."""
    first = 0
    for block in schedule if index >= 0 else ():
        if index < first + block.count:
            offset = index - first
            difficulty = block.difficulties[offset % len(block.difficulties)]
            return {"seed": TRAIN_SEED_BASE + index, "difficulty": difficulty, "version": block.version}
        first += block.count
    raise TaskIndexError(f"index must be an integer from 0 to {first - 1} for split 'train', got {index!r}")


def train_indices(difficulty: str, schedule: tuple[TrainBlock, ...] = TRAIN_SCHEDULE) -> list[range]:
    """The indices of the train tasks at `difficulty`, block by block (none at a tier without a train block)."""
    spans, first = [], 0
    for block in schedule:
        if difficulty in block.difficulties:
            step = len(block.difficulties)
            spans.append(range(first + block.difficulties.index(difficulty), first + block.count, step))
        first += block.count
    return spans


def drawn_train_seed(difficulty: str, draw: random.Random) -> int | None:
    """The seed of a train task at `difficulty`, drawn uniformly among them (None: the tier has no train task)."""
    spans = train_indices(difficulty)
    total = sum(len(span) for span in spans)
    if not total:
        return None
    index = draw.randrange(total)
    for span in spans:
        if index < len(span):
            return TRAIN_SEED_BASE + span[index]
        index -= len(span)
    raise AssertionError("unreachable: the index was drawn below the spans' total")


class UnknownSplitError(ValueError):
    """A split name this environment does not serve; the message lists the ones it does."""


class TaskIndexError(IndexError):
    """An index outside a split; the message gives the valid range."""


# The sweeps whose null episodes sit at a drawn place among each NULL_EVERY offsets (null_offset): the audit's,
# published with its first version. The sweeps published before it keep theirs at the last offset of each ten, so
# that no published task moves; a tier's next version draws them too.
DRAWN_NULL_SWEEPS = frozenset({"audit"})


def null_offset(difficulty: str, block: int) -> int:
    """Which offset of the tier's calibration seeds from `block` * NULL_EVERY on is the block's null episode: at a
    tier of DRAWN_NULL_SWEEPS a seeded draw of the block's first seed, so no arithmetic of a seed tells a null episode
    from the others; elsewhere the block's last, as published."""
    if difficulty not in DRAWN_NULL_SWEEPS:
        return block * NULL_EVERY + NULL_EVERY - 1
    first = TIERS[difficulty].calibration_seed_base + block * NULL_EVERY
    return block * NULL_EVERY + int(derive_rng(EpisodeKey.of(first), NULL_STREAM).integers(NULL_EVERY))


def calibration_reset_kwargs(difficulty: str, offset: int, version: int | None = None) -> dict[str, Any]:
    """The calibration sweep's episode `offset` of one difficulty (at `version` of its tier where one is given): a
    standard episode ({seed, difficulty}), except one of every NULL_EVERY consecutive offsets (null_offset), which is
    a null episode (scenario_family "null": no incident, not standard)."""
    seed = TIERS[difficulty].calibration_seed_base + offset
    kwargs: dict[str, Any] = {"seed": seed, "difficulty": difficulty}
    if version is not None:
        kwargs["version"] = version
    if offset == null_offset(difficulty, offset // NULL_EVERY):
        kwargs["scenario_family"] = "null"
    return kwargs


@dataclass(frozen=True)
class EvalBlock:
    """Consecutive eval tasks: named tasks in order, or one difficulty's calibration sweep, at `version` of their
    tier (a published block keeps naming the episodes it named when a tier gains a version)."""

    task_ids: tuple[str, ...] = ()
    sweep: str | None = None
    version: int = 1

    def size(self) -> int:
        return EVAL_SEEDS_PER_DIFFICULTY if self.sweep is not None else len(self.task_ids)

    def task(self, offset: int) -> dict[str, Any]:
        if self.sweep is not None:
            return calibration_reset_kwargs(self.sweep, offset, self.version)
        return {"task_id": self.task_ids[offset], "version": self.version}


# The eval split's published layout: these blocks, then the calibration sweep of every listed tier they do not
# sweep, in TIERS's order. A published block is never edited nor reordered, since an evaluator's recorded task
# indices would then name other episodes: to append a named task, first write the derived sweeps out here.
PUBLISHED_EVAL_BLOCKS: tuple[EvalBlock, ...] = (
    EvalBlock(
        task_ids=("easy_two_spikes", "medium_mixed_three", "hard_mixed_multi", "frontier_segments", "deep_cuboids")
    ),
    *(EvalBlock(sweep=difficulty) for difficulty in ("easy", "medium", "hard", "frontier", "deep", "abyss")),
    EvalBlock(task_ids=("abyss_faint_cuboids",)),
    EvalBlock(sweep="warehouse"),
    EvalBlock(task_ids=("warehouse_raw_events",)),
    EvalBlock(sweep="audit"),
    EvalBlock(sweep="audit", version=2),  # the same seeds and null episodes as version 1's sweep
)


def eval_schedule(listed: tuple[str, ...]) -> tuple[EvalBlock, ...]:
    """The eval blocks of the `listed` difficulties, in their order."""
    swept = {block.sweep for block in PUBLISHED_EVAL_BLOCKS}
    return (*PUBLISHED_EVAL_BLOCKS, *(EvalBlock(sweep=name) for name in listed if name not in swept))


EVAL_SCHEDULE = eval_schedule(DIFFICULTIES)


def sweep_version(difficulty: str) -> int:
    """The version of the tier that the eval split's last sweep of `difficulty` plays (its first where none sweeps
    it): a tier swept again at a later version is played at that one."""
    return max((block.version for block in EVAL_SCHEDULE if block.sweep == difficulty), default=1)


@dataclass(frozen=True)
class Split:
    name: str
    kind: Literal["train", "test"]
    description: str

    def size(self) -> int:
        if self.kind == "train":
            return TRAIN_TASK_COUNT
        return sum(block.size() for block in EVAL_SCHEDULE)

    def task(self, index: int) -> dict[str, Any]:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < self.size():
            raise TaskIndexError(
                f"index must be an integer from 0 to {self.size() - 1} for split {self.name!r}, got {index!r}"
            )
        if self.kind == "train":
            return train_task(index)
        for block in EVAL_SCHEDULE:
            if index < block.size():
                return block.task(index)
            index -= block.size()
        raise AssertionError("unreachable: the index was checked against the split's size")

    def descriptor(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.kind, "num_tasks": self.size(), "description": self.description}


def _schedule_in_words() -> str:
    """TRAIN_SCHEDULE as the train split's description states it."""
    parts, first = [], 0
    for block in TRAIN_SCHEDULE:
        names = ", ".join(f"{name}-v{block.version}" for name in block.difficulties)
        parts.append(f"tasks {first} to {first + block.count - 1} cycle over {names}")
        first += block.count
    return "; ".join(parts)


def _eval_in_words() -> str:
    """EVAL_SCHEDULE as the eval split's description states it."""
    parts, first = [], 0
    for block in EVAL_SCHEDULE:
        last = first + block.size() - 1
        span = f"task {first}" if first == last else f"tasks {first} to {last}"
        what = (
            f"{EVAL_SEEDS_PER_DIFFICULTY} calibration seeds of {block.sweep}"
            if block.sweep is not None
            else "the named task"
            + ("s " if len(block.task_ids) > 1 else " ")
            + ", ".join(block.task_ids)
            + f" (version {block.version} of {'their tiers' if len(block.task_ids) > 1 else 'its tier'})"
        )
        parts.append(f"{span}: {what}")
        first = last + 1
    return "; ".join(parts)


SPLITS: dict[str, Split] = {
    split.name: split
    for split in (
        Split(
            "train",
            "train",
            f"Standard seeded episodes: task i is seed {TRAIN_SEED_BASE} + i; {_schedule_in_words()}. Each "
            "task is the reset arguments that start it; any seed from "
            f"{TRAIN_SEED_BASE + TRAIN_TASK_COUNT} on is a further training episode.",
        ),
        Split(
            "eval",
            "test",
            f"{_eval_in_words()}: a difficulty's calibration seeds start at "
            + ", ".join(f"{name} {tier.calibration_seed_base}" for name, tier in TIERS.items())
            + f", and one of every {NULL_EVERY} consecutive episodes has no incident: the last of each ten, or at "
            + ", ".join(sorted(DRAWN_NULL_SWEEPS))
            + " a drawn place. No seed is shared with train. Scored deployments serve it in held-out mode "
            "(METRIC_TRACKER_SECRET set).",
        ),
    )
}


def get_split(name: str) -> Split:
    try:
        return SPLITS[name]
    except (KeyError, TypeError):
        raise UnknownSplitError(f"unknown split {name!r}; valid splits: {', '.join(SPLITS)}") from None


def split_descriptors() -> list[dict[str, Any]]:
    return [split.descriptor() for split in SPLITS.values()]


def task_range(name: str, start: int | None = None, stop: int | None = None) -> list[dict[str, Any]]:
    """Tasks [start, stop) of a split with Python slice semantics (negative bounds count from the end)."""
    split = get_split(name)
    return [split.task(index) for index in range(split.size())[start:stop]]


def split_task_arguments(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The reset arguments of the task that reset arguments `split` and `index` (OpenEnv's Task API convention)
    select; they go with no other argument (a reset's own parameters, seed, arrive as None when not passed)."""
    passed = sorted(key for key, value in kwargs.items() if value is not None)
    if set(passed) != {"split", "index"}:
        valid = ", ".join(f"{name} (index 0 to {split.size() - 1})" for name, split in SPLITS.items())
        raise ValueError(
            "split and index select a task of the Task API and go together, with no other reset "
            f"argument (got {', '.join(passed) or 'none set'}); valid splits: {valid}"
        )
    try:
        return get_split(kwargs["split"]).task(kwargs["index"])
    except IndexError as exc:
        raise ValueError(str(exc)) from None


class TaskProviderMixin:
    """OpenEnv's TaskProvider methods (found by name): pure and cheap, as they run on a throw-away instance.
    A task is the reset arguments that start its episode (see metric_tracker_rl.catalog.task_splits)."""

    def list_splits(self) -> list[dict[str, Any]]:
        return split_descriptors()

    def num_tasks(self, split: str) -> int:
        return get_split(split).size()

    def list_tasks(self, split: str) -> list[dict[str, Any]]:
        return task_range(split)

    def get_task(self, split: str, index: int) -> dict[str, Any]:
        return get_split(split).task(index)

    def get_task_range(self, split: str, start: int | None = None, stop: int | None = None) -> list[dict[str, Any]]:
        return task_range(split, start, stop)
