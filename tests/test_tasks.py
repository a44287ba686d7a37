"""Named tasks, the reset catalogs and validated reset overrides."""

from __future__ import annotations

from dataclasses import replace

import pytest
from core_helpers import reset_episode
from hypothesis import given, settings
from hypothesis import strategies as st

from metric_tracker_rl import DEFAULT_TASK_ORDER, NAMED_TASK_ORDER, MetricTrackerRlAction, get_task_spec
from metric_tracker_rl.analysis_tools import TOOL_REGISTRY
from metric_tracker_rl.catalog.published import RESET_DIFFICULTIES, SCENARIO_FAMILIES
from metric_tracker_rl.catalog.shown_config import COUNTING_SETTINGS, incident_line
from metric_tracker_rl.catalog.tasks import (
    MAX_DENSITY,
    RESET_KEYS,
    TASK_ALIASES,
    TASKS,
    EpisodeConfig,
    resolve_episode_config,
)
from metric_tracker_rl.catalog.tiers import TIERS
from metric_tracker_rl.generation.anomalies import FAMILY_REGISTRY
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.view.tool_schemas import model_tools

TASK_DIFFICULTIES = {
    "easy_two_spikes": "easy",
    "medium_mixed_three": "medium",
    "hard_mixed_multi": "hard",
    "frontier_segments": "frontier",
    "deep_cuboids": "deep",
    "abyss_faint_cuboids": "abyss",
    "warehouse_raw_events": "warehouse",
}


def test_named_tasks_and_their_order() -> None:
    assert tuple(NAMED_TASK_ORDER) == tuple(TASK_DIFFICULTIES)
    assert NAMED_TASK_ORDER == DEFAULT_TASK_ORDER  # one default: every entry point plays every named task
    for task_id, difficulty in TASK_DIFFICULTIES.items():
        spec = get_task_spec(task_id)
        assert (spec.task_id, spec.difficulty, spec.config.difficulty) == (task_id, difficulty, difficulty)
        assert spec.objective and spec.grader_name


@pytest.mark.parametrize("task_id", ["", "expert_task", None, 3])
def test_unknown_task_id_raises_naming_the_valid_ids(task_id) -> None:
    with pytest.raises(ValueError) as error:
        get_task_spec(task_id)
    assert all(known in str(error.value) for known in DEFAULT_TASK_ORDER)


@pytest.mark.parametrize("task_id", list(TASK_DIFFICULTIES))
def test_reset_with_a_task_starts_it(task_id: str) -> None:
    obs = MetricTrackerRlEnvironment().reset(task_id=task_id)
    assert obs.status == "ready" and obs.task_id == task_id and not obs.done
    assert obs.config["difficulty"] == TASK_DIFFICULTIES[task_id]


def test_reset_sends_the_catalogs_and_later_steps_do_not() -> None:
    env = MetricTrackerRlEnvironment()
    obs = env.reset()
    assert obs.task_id == DEFAULT_TASK_ORDER[0]
    assert [t.task_id for t in obs.available_tasks] == list(NAMED_TASK_ORDER)
    # The tools that answer at the episode's tier (the wire API's), those its models are offered marked so.
    assert {m.name for m in obs.available_methods} == {
        name for name, spec in TOOL_REGISTRY.items() if obs.config["difficulty"] in spec.answers_at
    }
    assert [m.name for m in obs.available_methods if m.offered] == [
        tool.name for tool in model_tools(obs.config["difficulty"]) if tool.name in TOOL_REGISTRY
    ]
    assert {g["family"] for g in obs.available_synthetic_generator_methods} == set(FAMILY_REGISTRY)
    assert obs.conversion_metric_definitions
    step = env.step(MetricTrackerRlAction(analysis_method="task_overview"))
    assert step.status == "ok"
    assert step.available_methods == [] and step.available_tasks == []
    assert step.available_synthetic_generator_methods == [] and step.conversion_metric_definitions == []


BAD_RESETS = [
    ({"difficulty": "impossible"}, ["easy", "medium", "hard"]),
    ({"scenario_family": "chaos"}, ["mixed", "null", "funnel_break"]),
    ({"seed": -1}, ["seed", "between 0 and"]),
    ({"seed": "x"}, ["seed", "non-negative"]),
    (
        {"difficulty": "hard", "anomaly_count": TIERS["hard"].max_incidents + 1},
        ["anomaly_count", str(TIERS["hard"].max_incidents)],
    ),
    ({"anomaly_density": 0.9}, ["anomaly_density", str(MAX_DENSITY)]),
    ({"anomaly_density": -0.1}, ["anomaly_density", str(MAX_DENSITY)]),
    ({"task_id": "expert_task"}, list(DEFAULT_TASK_ORDER)),
    ({"colour": "blue"}, ["colour", *RESET_KEYS]),
    ({"anomalies": [{"family": "funnel_break", "date": "2026-03-29"}]}, ["2026-03-28"]),
]


@pytest.mark.parametrize(("kwargs", "names"), BAD_RESETS, ids=lambda v: str(v) if isinstance(v, dict) else "")
def test_bad_reset_is_an_error_naming_the_choices_and_keeps_the_episode(kwargs: dict, names: list[str]) -> None:
    env = MetricTrackerRlEnvironment()
    env.reset(task_id="medium_mixed_three", seed=5)
    before = env.step(MetricTrackerRlAction(analysis_method="get_annotations"))
    obs = env.reset(**kwargs)
    assert obs.status == "error" and obs.reward == 0.0
    for name in names:
        assert name in obs.message, (name, obs.message)
    after = env.step(MetricTrackerRlAction(analysis_method="get_annotations"))
    assert after.status == "ok" and after.task_id == "medium_mixed_three"
    assert env.state.task_id == "medium_mixed_three"
    assert after.analysis_result == before.analysis_result
    assert after.steps_remaining == before.steps_remaining - 1  # the same episode went on


@pytest.mark.parametrize("difficulty", ["easy", "warehouse"])
@pytest.mark.parametrize("ending", ["graded", "budget spent"])
def test_a_bad_reset_after_an_episode_ended_shows_no_budget_as_on_a_fresh_session(difficulty: str, ending: str) -> None:
    """Once the episode is over (its report graded, or its budget spent), a refused reset finds no episode to go on
    with: its observation is a fresh session's, with no step or submission left, not the ended episode's."""
    fresh = MetricTrackerRlEnvironment().reset(difficulty="bogus")
    env = MetricTrackerRlEnvironment()
    env.reset(difficulty=difficulty, seed=3, **({"max_steps": 1} if ending == "budget spent" else {}))
    free_tool = next(tool.name for tool in model_tools(difficulty) if not tool.parameters.get("required"))
    action = {
        "graded": MetricTrackerRlAction(classifications=[]),
        "budget spent": MetricTrackerRlAction(analysis_method=free_tool),
    }[ending]  # a tool of the tier runs
    assert env.step(action).done
    refused = env.reset(difficulty="bogus")
    assert refused.status == "error" and "No episode is active (the last one is over)" in refused.message
    for field in ("task_id", "steps_remaining", "submissions_remaining", "done", "episode_score"):
        assert getattr(refused, field) == getattr(fresh, field), field
    assert refused.steps_remaining == refused.submissions_remaining == 0


def test_overrides_apply_on_top_of_a_task() -> None:
    obs = MetricTrackerRlEnvironment().reset(task_id="hard_mixed_multi", seed=9, anomaly_count=2, max_submissions=5)
    assert obs.status == "ready"
    assert (obs.config["seed"], obs.config["anomaly_count"], obs.config["difficulty"]) == (9, 2, "hard")
    assert obs.submissions_remaining == 5


@pytest.mark.parametrize("task_id", DEFAULT_TASK_ORDER)
def test_a_task_and_a_difficulty_that_disagree_are_refused_naming_the_tasks_tier(task_id: str) -> None:
    """A named task is an episode of its own tier: another difficulty beside it would build a hybrid (one tier's
    brief over another's data), so the reset is refused in one line that names both; its own tier is accepted."""
    own = TASKS[task_id].difficulty
    assert resolve_episode_config(task_id=task_id, difficulty=own.upper()).difficulty == own
    for other in RESET_DIFFICULTIES:
        if other == own:
            continue
        with pytest.raises(ValueError) as refusal:
            resolve_episode_config(task_id=task_id, difficulty=other)
        message = str(refusal.value)
        assert "\n" not in message and f"task {task_id} is at difficulty {own!r}, not {other!r}" in message
    obs = MetricTrackerRlEnvironment().reset(task_id=task_id, difficulty="audit" if own != "audit" else "easy")
    assert obs.status == "error" and f"is at difficulty {own!r}" in obs.message


# A sweep of seeds until every count is drawn: the edit loop runs it at the first tier of counts, the full suite at
# every tier (the raw-event tiers' episodes take a second each; a few of their seeds are checked below).
SWEPT_COUNT_TIERS = [name for name, tier in sorted(TIERS.items()) if tier.count_range is not None]


@pytest.mark.parametrize(
    "difficulty",
    [
        pytest.param(name, marks=[] if name == SWEPT_COUNT_TIERS[0] else [pytest.mark.slow])
        for name in SWEPT_COUNT_TIERS
    ],
)
def test_seeded_resets_show_the_count_range_and_draw_every_count_in_it(difficulty: str) -> None:
    low, high = TIERS[difficulty].count_range
    env = MetricTrackerRlEnvironment()
    drawn = set()
    for seed in range(60):  # until every count is drawn
        obs = env.reset(seed=seed, difficulty=difficulty)
        if TIERS[difficulty].data == "events":  # no shown setting counts its incidents: the incidents line does
            assert not set(COUNTING_SETTINGS) & set(obs.config)
        else:
            assert obs.config["anomaly_count"] is None
            assert obs.config["anomaly_count_range"] == [low, high]
        assert obs.config["standard"] is True
        truth = reset_episode(seed=seed, difficulty=difficulty).truth
        count = truth.incident_count  # incidents: one that lasts two dates has two rows
        assert low <= count <= high and len(truth.expected_rows) >= count, seed
        drawn.add(count)
        if drawn == set(range(low, high + 1)):
            break
    assert drawn == set(range(low, high + 1))


def test_a_raw_event_tiers_seeded_resets_show_no_count_and_hold_a_count_in_its_range() -> None:
    """At a tier of raw events the visible config counts nothing (a null episode must read as any other): the
    incidents line states the range, and every seeded episode holds a count in it."""
    for difficulty in (name for name, tier in TIERS.items() if tier.data == "events" and tier.count_range is not None):
        low, high = TIERS[difficulty].count_range
        for seed in range(2):
            env = MetricTrackerRlEnvironment()
            config = env.reset(seed=seed, difficulty=difficulty).config
            assert not set(COUNTING_SETTINGS) & set(config)
            assert f"between {low} and {high}" in incident_line(config)
            truth = env._episode.truth  # noqa: SLF001 (the reset's own episode: one build per seed)
            assert low <= truth.incident_count <= high and len(truth.expected_rows) >= truth.incident_count


def test_named_tasks_and_explicit_counts_keep_a_fixed_count_without_a_range() -> None:
    env = MetricTrackerRlEnvironment()
    for task_id in DEFAULT_TASK_ORDER:
        obs = env.reset(task_id=task_id)
        shown_count = (
            None if TIERS[obs.config["difficulty"]].data == "events" else get_task_spec(task_id).config.anomaly_count
        )  # a tier of raw events shows no count
        assert obs.config.get("anomaly_count") == shown_count
        assert "anomaly_count_range" not in obs.config and obs.config["standard"] is True
    obs = env.reset(seed=4, difficulty="hard", anomaly_count=3)
    assert obs.config["anomaly_count"] == 3 and "anomaly_count_range" not in obs.config
    assert obs.config["standard"] is False
    easy = env.reset(seed=4, difficulty="easy")
    assert easy.config["anomaly_count"] == 2 and easy.config["standard"] is True


def test_each_objective_says_how_many_incidents_the_task_holds_whatever_its_name() -> None:
    words = {2: "Two", 3: "Three", 4: "Four"}
    for task_id in DEFAULT_TASK_ORDER:
        spec = get_task_spec(task_id)
        assert spec.objective.startswith(words[spec.config.anomaly_count]), spec.objective


@pytest.mark.parametrize(("former", "task_id"), list(TASK_ALIASES.items()))
def test_a_former_task_id_starts_the_same_episode_under_the_new_id(former: str, task_id: str) -> None:
    assert former not in TASKS and task_id in TASKS
    assert get_task_spec(former) is get_task_spec(former.upper()) is get_task_spec(task_id)
    assert resolve_episode_config(task_id=former, seed=7) == resolve_episode_config(task_id=task_id, seed=7)
    by_former, by_id = (
        MetricTrackerRlEnvironment().reset(task_id=former),
        MetricTrackerRlEnvironment().reset(task_id=task_id),
    )
    assert by_former.status == "ready" and by_former.task_id == task_id
    assert by_former.config == by_id.config and by_former.instruction == by_id.instruction


@pytest.mark.parametrize(
    ("change", "names"),
    [
        ({"max_steps": 0}, ["max_steps", "between 1 and 500"]),
        ({"anomaly_density": 0.9}, ["anomaly_density", str(MAX_DENSITY)]),
        ({"anomaly_count": 99}, ["anomaly_count", str(TIERS["deep"].max_incidents)]),
        ({"incident_kinds": ("country_bots", "nope")}, ["unknown incident kind", "'nope'", "level_shift"]),
        ({"dimensions": ("channel",)}, ["dimensions", "platform", "user_type"]),
        ({"scenario_family": "spikes"}, ["scenario_family", "mixed"]),
    ],
)
def test_a_config_is_checked_however_it_is_made(change: dict, names: list[str]) -> None:
    """The reset model validates itself: a config changed in code, or read back from a visible config, meets the
    checks a reset's arguments meet, with the message that names what is valid."""
    config = resolve_episode_config(seed=3, difficulty="deep")
    with pytest.raises(ValueError) as raised:
        replace(config, **change)
    assert all(name in str(raised.value) for name in names), raised.value
    shown = {name: list(value) if isinstance(value, tuple) else value for name, value in change.items()}
    with pytest.raises(ValueError) as again:
        EpisodeConfig.from_public({**config.public_dict(), **shown})
    assert all(name in str(again.value) for name in names), again.value


def test_a_reset_resolves_to_a_config_that_carries_its_tier() -> None:
    """The tier is looked up once, from the difficulty in any case, or from a Task API task, and travels with the
    config to the generator."""
    assert resolve_episode_config(difficulty="DEEP", seed=2).tier is TIERS["deep"]
    task = resolve_episode_config(split="eval", index=5)  # the eval split's first calibration seed
    assert task.tier is TIERS["easy"] and task == resolve_episode_config(seed=10_000, difficulty="easy")
    assert get_task_spec("deep_cuboids").config.tier is TIERS["deep"]
    assert EpisodeConfig.from_public(task.public_dict()) == task
    with pytest.raises(ValueError, match="unknown tier 'nope'"):
        EpisodeConfig.from_public({**task.public_dict(), "difficulty": "nope"})


@settings(max_examples=80, deadline=None)
@given(
    difficulty=st.sampled_from(RESET_DIFFICULTIES),
    family=st.sampled_from(SCENARIO_FAMILIES),
    seed=st.integers(0, 10**6),
    knobs=st.sampled_from([{}, {"decoy_ratio": 0.5}, {"max_steps": 12}]),
)
def test_a_visible_config_reads_back_as_the_config_it_shows(
    difficulty: str, family: str, seed: int, knobs: dict
) -> None:
    """Whatever a reset accepts, its visible config rebuilds the same config (the checks a config meets hold for
    the config a reset made)."""
    try:
        config = resolve_episode_config(seed=seed, difficulty=difficulty, scenario_family=family, **knobs)
    except ValueError:
        return  # a setting refused at this tier: the error tests above cover it
    assert EpisodeConfig.from_public(config.public_dict()) == config
