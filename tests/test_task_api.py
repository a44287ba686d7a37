"""OpenEnv's Task API: the train and eval splits, their tasks as reset arguments, and the HTTP routes."""

from __future__ import annotations

import asyncio
import random

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from metric_tracker_rl import DEFAULT_TASK_ORDER, NAMED_TASK_ORDER, MetricTrackerRlEnv
from metric_tracker_rl.catalog.published import DIFFICULTIES
from metric_tracker_rl.catalog.task_splits import (
    DRAWN_NULL_SWEEPS,
    EVAL_SCHEDULE,
    EVAL_SEEDS_PER_DIFFICULTY,
    NULL_EVERY,
    SPLITS,
    TIER_TRAIN_TASKS,
    TRAIN_SCHEDULE,
    TRAIN_SEED_BASE,
    TRAIN_TASK_COUNT,
    UNTUNED_FIRST_OFFSET,
    EvalBlock,
    TaskIndexError,
    TrainBlock,
    UnknownSplitError,
    calibration_reset_kwargs,
    drawn_train_seed,
    eval_schedule,
    get_split,
    mechanism_split,
    sweep_version,
    task_range,
    train_indices,
    train_schedule,
    train_task,
)
from metric_tracker_rl.catalog.tasks import TASKS, resolve_episode_config
from metric_tracker_rl.catalog.tier_episodes import train_episode
from metric_tracker_rl.catalog.tiers import TIERS
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment

ENV_NAME = "metric_tracker_rl"
# The sweeps of a tier's later version appended after every tier's first (the audit's second).
LATER_SWEEPS = (("audit", 2),)
SPLIT_SIZES = {
    "train": TRAIN_TASK_COUNT,
    "eval": len(NAMED_TASK_ORDER) + (len(DIFFICULTIES) + len(LATER_SWEEPS)) * EVAL_SEEDS_PER_DIFFICULTY,
}
# The eval split as it was published with five named tasks: its indices never move.
FIRST_NAMED = ("easy_two_spikes", "medium_mixed_three", "hard_mixed_multi", "frontier_segments", "deep_cuboids")
SEED_BASES = [tier.calibration_seed_base for tier in TIERS.values()]
FIRST_SWEPT = ("easy", "medium", "hard", "frontier", "deep", "abyss")  # the tiers listed before that named task


FIRST_VERSION = 1  # every block so far was published at its tiers' first version, which its tasks name


def eval_plan(task_ids: tuple[str, ...], difficulties: tuple[str, ...] = DIFFICULTIES) -> list[dict]:
    """The named tasks, then each difficulty's calibration sweep (the episodes lab/calibration/calibrate.py plays)."""
    return [{"task_id": task_id, "version": FIRST_VERSION} for task_id in task_ids] + [
        calibration_reset_kwargs(difficulty, offset, FIRST_VERSION)
        for difficulty in difficulties
        for offset in range(EVAL_SEEDS_PER_DIFFICULTY)
    ]


def later_sweeps() -> list[dict]:
    """The sweeps of LATER_SWEEPS: each its tier's calibration seeds at that version."""
    return [
        calibration_reset_kwargs(difficulty, offset, version)
        for difficulty, version in LATER_SWEEPS
        for offset in range(EVAL_SEEDS_PER_DIFFICULTY)
    ]


def _seed(task: dict) -> int:
    return TASKS[task["task_id"]].config.seed if "task_id" in task else task["seed"]


def test_splits_are_train_and_eval_with_their_sizes() -> None:
    env = MetricTrackerRlEnvironment()
    assert [(s["name"], s["type"], s["num_tasks"]) for s in env.list_splits()] == [
        ("train", "train", SPLIT_SIZES["train"]),
        ("eval", "test", SPLIT_SIZES["eval"]),
    ]
    for name, size in SPLIT_SIZES.items():
        assert env.num_tasks(name) == size == len(env.list_tasks(name))


def test_eval_is_every_named_task_and_the_calibration_sweep_with_no_published_index_moved() -> None:
    """A named task added after the split was published is appended after the sweep, and a tier listed since
    after it, its sweep before its own named task (the warehouse's); a tier listed with no named task (the audit)
    appends its sweep after every published block."""
    eval_tasks = MetricTrackerRlEnvironment().list_tasks("eval")
    published = eval_plan(FIRST_NAMED, FIRST_SWEPT)
    assert eval_tasks[: len(published)] == published
    later = [task_id for task_id in NAMED_TASK_ORDER if task_id not in FIRST_NAMED]
    assert later == ["abyss_faint_cuboids", "warehouse_raw_events"]
    listed_since = tuple(d for d in DIFFICULTIES if d not in FIRST_SWEPT)
    assert listed_since == ("warehouse", "audit")
    assert eval_tasks[len(published) :] == (
        eval_plan(later[:1], ())
        + eval_plan((), listed_since[:1])
        + eval_plan(later[1:], ())
        + eval_plan((), listed_since[1:])
        + later_sweeps()
    )
    assert sorted(map(str, eval_tasks)) == sorted(map(str, eval_plan(NAMED_TASK_ORDER) + later_sweeps()))
    # standard episodes ({seed, difficulty}) and, one of every ten seeds, a null episode
    assert {t.get("scenario_family") for t in eval_tasks} == {None, "null"}


def test_listing_a_tier_appends_its_sweep_to_eval() -> None:
    """The eval split's blocks are the published ones, then a sweep for each listed tier they do not sweep."""
    assert eval_schedule(DIFFICULTIES) == EVAL_SCHEDULE
    extended = eval_schedule((*DIFFICULTIES, "scratch_tier"))
    assert extended[:-1] == EVAL_SCHEDULE and extended[-1] == EvalBlock(sweep="scratch_tier")


def test_train_and_eval_share_no_episode() -> None:
    train, evaluation = task_range("train"), task_range("eval")
    train_seeds, eval_seeds = {_seed(t) for t in train}, {_seed(t) for t in evaluation}
    # an eval seed is shared by a tier's sweeps alone, each at its version
    episodes = {(_seed(t), t.get("difficulty"), t["version"]) for t in evaluation}
    assert len(train_seeds) == len(train) and len(episodes) == len(evaluation)
    assert len(eval_seeds) == len(evaluation) - len(later_sweeps())
    assert min(train_seeds) == TRAIN_SEED_BASE > max(eval_seeds)
    assert all(set(t) == {"seed", "difficulty", "version"} for t in train)
    first = TRAIN_SCHEDULE[0].difficulties
    assert [t["difficulty"] for t in train[: len(first)]] == list(first)  # a block cycles over its tiers in turn


def test_every_difficulty_has_train_tasks() -> None:
    """A new tier is published in TRAIN_SCHEDULE (a block appended for it), or this fails."""
    assert {t["difficulty"] for t in task_range("train")} == set(DIFFICULTIES)
    assert all(block.count > 0 and set(block.difficulties) <= set(DIFFICULTIES) for block in TRAIN_SCHEDULE)


def test_the_published_train_schedule_starts_as_it_was_published() -> None:
    """The first block is the schedule trainers have recorded indices against: tiers in turn from index 0."""
    first = TRAIN_SCHEDULE[0]
    assert first == TrainBlock(6_000, ("easy", "medium", "hard", "frontier"))
    assert task_range("train", 0, 5) == [
        {"seed": TRAIN_SEED_BASE + i, "difficulty": d, "version": FIRST_VERSION}
        for i, d in enumerate(("easy", "medium", "hard", "frontier", "easy"))
    ]


def test_listing_a_tier_changes_no_train_task() -> None:
    """A listed tier gets its block appended (derived from the listed tiers): every existing train task keeps its
    seed and difficulty, and the new tier's tasks take seeds no existing task has."""
    extended = train_schedule((*DIFFICULTIES, "scratch_tier"))
    assert extended[:-1] == TRAIN_SCHEDULE and extended[-1] == TrainBlock(TIER_TRAIN_TASKS, ("scratch_tier",))
    existing = task_range("train")
    assert [train_task(i, extended) for i in range(TRAIN_TASK_COUNT)] == existing
    added = [train_task(TRAIN_TASK_COUNT + i, extended) for i in range(TIER_TRAIN_TASKS)]
    assert {t["difficulty"] for t in added} == {"scratch_tier"}
    assert not {t["seed"] for t in added} & {t["seed"] for t in existing}
    with pytest.raises(TaskIndexError):
        train_task(TRAIN_TASK_COUNT + TIER_TRAIN_TASKS, extended)
    with pytest.raises(TaskIndexError):
        train_task(-1)


@settings(max_examples=8, deadline=None)  # a few tasks here; the slow twin below starts 60
@given(split=st.sampled_from(list(SPLITS)), data=st.data())
@example(split="eval", data=None)  # the first named task
def test_a_task_is_the_reset_arguments_that_start_it(split: str, data: st.DataObject | None) -> None:
    size = SPLIT_SIZES[split]
    index = 0 if data is None else data.draw(st.sampled_from([0, size - 1]) | st.integers(0, size - 1))
    task = get_split(split).task(index)
    by_arguments = MetricTrackerRlEnvironment().reset(**task)
    by_reference = MetricTrackerRlEnvironment().reset(split=split, index=index)
    assert by_arguments.status == by_reference.status == "ready", by_arguments.message
    assert by_arguments.config == by_reference.config
    assert resolve_episode_config(**task) == resolve_episode_config(split=split, index=index)
    assert by_arguments.config["seed"] == _seed(task)


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(split=st.sampled_from(list(SPLITS)), data=st.data())
def test_a_task_is_the_reset_arguments_that_start_it_over_many_tasks(split: str, data: st.DataObject) -> None:
    test_a_task_is_the_reset_arguments_that_start_it.hypothesis.inner_test(split, data)


@settings(max_examples=80, deadline=None)
@given(
    split=st.sampled_from(list(SPLITS)),
    start=st.none() | st.integers(-7000, 7000),
    stop=st.none() | st.integers(-7000, 7000),
)
@example(split="eval", start=None, stop=None)
@example(split="eval", start=-3, stop=None)
@example(split="train", start=5990, stop=7000)
@example(split="train", start=10, stop=5)
def test_task_range_slices_the_split_like_a_list(split: str, start: int | None, stop: int | None) -> None:
    env = MetricTrackerRlEnvironment()
    assert env.get_task_range(split, start, stop) == env.list_tasks(split)[start:stop]


@pytest.mark.parametrize("index", [-1, SPLIT_SIZES["eval"], 10**30, True, "3"])
def test_an_index_outside_the_split_is_an_index_error_naming_the_range(index: object) -> None:
    with pytest.raises(TaskIndexError, match=f"from 0 to {SPLIT_SIZES['eval'] - 1}"):
        MetricTrackerRlEnvironment().get_task("eval", index)  # type: ignore[arg-type]


@pytest.mark.parametrize("split", ["", "test", "TRAIN", None])
def test_an_unknown_split_names_the_valid_ones(split: object) -> None:
    for call in (
        lambda env: env.num_tasks(split),
        lambda env: env.get_task(split, 0),
        lambda env: env.get_task_range(split),
    ):
        with pytest.raises(UnknownSplitError, match="valid splits: train, eval"):
            call(MetricTrackerRlEnvironment())


@pytest.mark.parametrize(
    "reset_kwargs, expected",
    [
        ({"split": "eval"}, "go together"),
        ({"index": 2}, "go together"),
        ({"split": "train", "index": 1, "max_steps": 5}, "go together"),
        ({"split": "dev", "index": 0}, "valid splits: train, eval"),
        ({"split": "train", "index": TRAIN_TASK_COUNT}, f"from 0 to {TRAIN_TASK_COUNT - 1}"),
    ],
)
def test_a_bad_split_reference_at_reset_is_an_error_observation(reset_kwargs: dict, expected: str) -> None:
    obs = MetricTrackerRlEnvironment().reset(**reset_kwargs)
    assert obs.status == "error" and expected in obs.message


# --- over HTTP and WebSocket -------------------------------------------------------------------------------


def test_task_routes_answer_with_tasks_and_explained_errors(server_url: str) -> None:
    with httpx.Client(base_url=server_url, timeout=60.0) as http:
        assert http.get("/list_environments").json() == [ENV_NAME]
        splits = http.get(f"/{ENV_NAME}/splits")
        assert splits.status_code == 200 and splits.json() == MetricTrackerRlEnvironment().list_splits()
        assert http.post(f"/{ENV_NAME}/num_tasks", json={"split": "eval"}).json() == {"num_tasks": SPLIT_SIZES["eval"]}
        assert http.post(f"/{ENV_NAME}/task", json={"split": "eval", "index": 1}).json() == {
            "task": {"task_id": DEFAULT_TASK_ORDER[1], "version": FIRST_VERSION}
        }
        window = http.post(f"/{ENV_NAME}/task_range", json={"split": "train", "start": -2})
        assert window.json()["tasks"] == task_range("train", -2)
        listed = http.post(f"/{ENV_NAME}/tasks", json={"split": "eval"})
        assert listed.json() == {"tasks": task_range("eval"), "env_name": ENV_NAME}

        outside = http.post(f"/{ENV_NAME}/task", json={"split": "eval", "index": SPLIT_SIZES["eval"]})
        assert outside.status_code == 400 and f"from 0 to {SPLIT_SIZES['eval'] - 1}" in outside.json()["detail"]
        unknown = http.post(f"/{ENV_NAME}/num_tasks", json={"split": "validation"})
        assert unknown.status_code == 404 and "valid splits: train, eval" in unknown.json()["detail"]
        assert http.get("/other_env/splits").status_code == 404

        paths = http.get("/openapi.json").json()["paths"]
        for route in ("splits", "tasks", "num_tasks", "task", "task_range"):
            operation = next(iter(paths[f"/{{env_name}}/{route}"].values()))
            assert "404" in operation["responses"], route
        assert "400" in paths["/{env_name}/task"]["post"]["responses"]


async def _reset_with_a_listed_task(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=60.0) as http:
        task = (await http.post(f"/{ENV_NAME}/task", json={"split": "eval", "index": 7})).json()["task"]
    async with MetricTrackerRlEnv(base_url=url, message_timeout_s=60.0) as env:
        by_arguments = await env.reset(**task)
        by_reference = await env.reset(split="eval", index=7)
    assert by_arguments.observation.status == by_reference.observation.status == "ready"
    assert by_arguments.observation.config == by_reference.observation.config
    assert by_arguments.observation.config["seed"] == task["seed"]


def test_a_listed_task_passed_to_reset_starts_its_episode_on_the_server(server_url: str) -> None:
    asyncio.run(_reset_with_a_listed_task(server_url))


def test_the_untuned_seeds_are_in_no_split_and_no_other_tiers_range() -> None:
    """Each tier's untuned calibration seeds meet no eval or train seed and no other tier's untuned seeds."""
    offsets = range(EVAL_SEEDS_PER_DIFFICULTY)
    every = [base + UNTUNED_FIRST_OFFSET + offset for base in SEED_BASES for offset in offsets]
    eval_ranges = {base + offset for base in SEED_BASES for offset in offsets}
    assert len(every) == len(set(every)) and not set(every) & eval_ranges
    assert max(every) < TRAIN_SEED_BASE and UNTUNED_FIRST_OFFSET % NULL_EVERY == 0


@settings(max_examples=60, deadline=None)
@given(draw_seed=st.integers(0, 2**32), difficulty=st.sampled_from(DIFFICULTIES))
def test_a_reset_that_chooses_no_episode_draws_a_train_task_of_its_tier(draw_seed: int, difficulty: str) -> None:
    """A harness's settings without a seed, task or split get a train task's seed at their tier (the first named
    task's where they name none), the same for the same draw; settings that choose an episode are left as they
    are."""
    train = get_split("train")
    for settings_ in ({"difficulty": difficulty}, {"difficulty": difficulty.upper(), "max_steps": 5}, {}):
        chosen = train_episode(settings_, random.Random(draw_seed))
        assert chosen == train_episode(settings_, random.Random(draw_seed))
        tier = settings_.get("difficulty", TASKS[DEFAULT_TASK_ORDER[0]].difficulty).lower()
        assert chosen["difficulty"] == tier and mechanism_split(chosen["seed"]) == "train"
        task = train.task(chosen["seed"] - TRAIN_SEED_BASE)  # a task of any block of the tier; played at its latest
        assert task == {"seed": chosen["seed"], "difficulty": tier, "version": task["version"]}
        assert "version" not in chosen or chosen["version"] == settings_.get("version")
        assert {k: v for k, v in chosen.items() if k not in ("seed", "difficulty")} == {
            k: v for k, v in settings_.items() if k != "difficulty"
        }
    for chooses in ({"seed": 0, "difficulty": difficulty}, {"task_id": "deep_cuboids"}, {"split": "eval", "index": 3}):
        assert train_episode(chooses, random.Random(draw_seed)) == chooses


def test_the_audits_version_2_blocks_follow_version_1s_which_keep_their_indices() -> None:
    """The audit's second version has a train block and an eval sweep of its own, appended: version 1's tasks keep
    their indices and arguments (as published: train 12,000 to 13,999, eval 1,407 to 1,606), and version 2's sweep
    plays the same seeds, null episodes at the same places."""
    train, evaluation = get_split("train"), get_split("eval")
    v1_train = [train_task(12_000 + i) for i in range(TIER_TRAIN_TASKS)]
    assert v1_train == [
        {"seed": TRAIN_SEED_BASE + 12_000 + i, "difficulty": "audit", "version": 1} for i in range(TIER_TRAIN_TASKS)
    ]
    assert train_schedule(())[:5] == (
        TrainBlock(6_000, ("easy", "medium", "hard", "frontier")),
        *(TrainBlock(TIER_TRAIN_TASKS, (name,)) for name in ("deep", "abyss", "warehouse", "audit")),
    )
    v2_train = [train.task(14_000 + i) for i in (0, 1, TIER_TRAIN_TASKS - 1)]
    assert [(t["difficulty"], t["version"]) for t in v2_train] == [("audit", 2)] * 3
    v1_eval = [evaluation.task(1_407 + offset) for offset in range(EVAL_SEEDS_PER_DIFFICULTY)]
    v2_eval = [evaluation.task(1_607 + offset) for offset in range(EVAL_SEEDS_PER_DIFFICULTY)]
    assert v1_eval == [calibration_reset_kwargs("audit", offset, 1) for offset in range(EVAL_SEEDS_PER_DIFFICULTY)]
    assert v2_eval == [{**task, "version": 2} for task in v1_eval]
    assert v1_eval[0]["seed"] == TIERS["audit"].calibration_seed_base
    assert sweep_version("audit") == 2 and sweep_version("deep") == 1
    assert "audit-v2" in train.description and "audit-v1" in train.description


def test_every_train_task_of_a_tier_can_be_drawn() -> None:
    """The draw's indices are exactly the train split's tasks at the tier, and a tier not listed has none."""
    train = get_split("train")
    for difficulty in DIFFICULTIES:
        indices = [index for span in train_indices(difficulty) for index in span]
        assert len(indices) == len(set(indices)) and indices
        assert all(train.task(index)["difficulty"] == difficulty for index in indices[:50] + indices[-50:])
        assert len(indices) == sum(
            len(range(block.difficulties.index(difficulty), block.count, len(block.difficulties)))
            for block in TRAIN_SCHEDULE
            if difficulty in block.difficulties
        )
    assert train_indices("no_such_tier") == [] and drawn_train_seed("no_such_tier", random.Random(0)) is None


def test_a_null_eval_task_is_one_of_each_ten_at_a_place_its_seed_does_not_tell() -> None:
    """Every block of NULL_EVERY calibration seeds of a tier (its eval sweep and its untuned seeds) holds exactly
    one null episode. At a tier whose sweep draws them (the audit's) it sits at a drawn place: over its blocks the
    null episodes take every place, so no arithmetic of a seed (its last digit, its offset) tells them apart; the
    sweeps published before keep theirs last, so no published task moved."""
    for difficulty in DIFFICULTIES:
        places: list[int] = []
        for first in (0, UNTUNED_FIRST_OFFSET):
            for block in range(first, first + EVAL_SEEDS_PER_DIFFICULTY, NULL_EVERY):
                tasks = [calibration_reset_kwargs(difficulty, offset) for offset in range(block, block + NULL_EVERY)]
                nulls = [i for i, task in enumerate(tasks) if task.get("scenario_family") == "null"]
                assert len(nulls) == 1, (difficulty, block)
                assert tasks[nulls[0]]["seed"] == TIERS[difficulty].calibration_seed_base + block + nulls[0]
                places += nulls
        if difficulty in DRAWN_NULL_SWEEPS:
            assert set(places) == set(range(NULL_EVERY))
            assert max(places.count(place) for place in range(NULL_EVERY)) < len(places) / 4
        else:
            assert set(places) == {NULL_EVERY - 1}
    assert {"audit"} == DRAWN_NULL_SWEEPS
