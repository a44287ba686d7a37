"""What a model reads is true: every place where the text a model reads (brief, schemas, results, errors) could say
one thing while the environment does another, checked against what the environment does."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

import numpy as np
import pytest
from annotated_types import Ge, Gt, Le, Lt
from core_helpers import PUBLISHING_MECHANISMS, reset_episode
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from text_reader import parse, read_observation

from metric_tracker_rl import MetricTrackerRlAction
from metric_tracker_rl.adapters.trl import MetricTrackerToolEnv
from metric_tracker_rl.analysis_tools import TOOL_REGISTRY, run_tool
from metric_tracker_rl.catalog.published import (
    BASELINE_RULE,
    COUNT_DIFFICULTIES,
    DIFFICULTIES,
    ENTITY_NAMES,
    ENTITY_VALUE_DEFINITIONS,
    FUNNEL_STEPS,
    RAW_EVENT_DIFFICULTIES,
    RESET_DIFFICULTIES,
    SEGMENTED_DIFFICULTIES,
)
from metric_tracker_rl.catalog.tasks import TASKS, resolve_episode_config
from metric_tracker_rl.generation import build_episode
from metric_tracker_rl.models import EpisodeWindow, MetricTrackerRlObservation, PayloadGeneratorMethod
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.view.observation import render_observation
from metric_tracker_rl.view.prompt import SYSTEM_PROMPT, first_prompt
from metric_tracker_rl.view.tool_schemas import SUBMIT_GENERATORS, SUBMIT_REPORT, model_tools, tool_action
from metric_tracker_rl.world.daily_panel import peer_median, same_weekday_peers

ROW = {
    "date": "2026-03-10",
    "entity_type": "conversion_rate",
    "entity_name": "app_open_to_menu_open",
    "anomaly_type": "rate_spike_from_median",
    "detection_method": "compare_rate_to_median",
    "baseline_value": 0.5,
    "observed_value": 0.7,
    "delta_value": 0.2,
    "severity": "high",
}
MODEL_TOOLS = {tool.name: tool for tool in model_tools()}
ANALYSIS_TOOLS = [name for name in MODEL_TOOLS if name in TOOL_REGISTRY]
OFFERED_GENERATORS = [name for name in ANALYSIS_TOOLS if TOOL_REGISTRY[name].kind == "generator"]
# The listed tiers whose data are counts (the tools below read counts; a raw-event tier has tests of its own).
COUNT_TIERS = tuple(difficulty for difficulty in DIFFICULTIES if difficulty in COUNT_DIFFICULTIES)
SETTINGS = [{"seed": seed, "difficulty": difficulty} for seed in (3, 17) for difficulty in COUNT_TIERS]


@lru_cache(maxsize=32)
def _episode(seed: int, difficulty: str, family: str = "mixed") -> Any:
    return reset_episode(seed=seed, difficulty=difficulty, scenario_family=family)


def _env(**reset: Any) -> tuple[MetricTrackerRlEnvironment, MetricTrackerRlObservation]:
    env = MetricTrackerRlEnvironment()
    return env, env.reset(**reset)


def _call(env: MetricTrackerRlEnvironment, name: str, **arguments: Any) -> MetricTrackerRlObservation:
    return env.step(MetricTrackerRlAction(analysis_method=name, analysis_args=arguments))


# --- 1. releases --------------------------------------------------------------------------------------


@pytest.mark.parametrize("reset", SETTINGS)
def test_every_calendar_note_kind_an_episode_holds_is_explained_in_the_brief(reset: dict) -> None:
    env, observation = _env(**reset)
    kinds = read_observation(first_prompt(observation)).brief["calendar_note_kinds"]
    notes = _call(env, "get_annotations").analysis_result["annotations"]
    assert notes and {note["kind"] for note in notes} <= set(kinds)
    assert "release" in {note["kind"] for note in notes}  # every episode carries one
    # Below frontier a release causes nothing, yet an incident may fall on its date (the segmented tiers, where a
    # release may regress its version, have their own test).
    segmented = reset["difficulty"] in SEGMENTED_DIFFICULTIES
    assert "no incident comes from a release" in kinds["release"] or segmented
    assert "judge that date like any other" in kinds["release"] or segmented
    assert "release" in SYSTEM_PROMPT and "calendar_note_kinds says what a release can do" in SYSTEM_PROMPT


# --- 2 and 4. list_suspicious_dates -------------------------------------------------------------------


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10**6), difficulty=st.sampled_from(COUNT_TIERS))
@example(seed=5, difficulty="hard")
def test_suspicious_dates_rank_mixes_by_their_rise_and_show_each_kinds_strongest(seed: int, difficulty: str) -> None:
    """Counts and rates by |z|, hourly mixes (a distance) by their rise only; each kind's column holds the
    entity with the largest such z on that date (for hourly mixes, null when none rose)."""
    episode = _episode(seed, difficulty)
    panel = episode.public.panel
    entries = [
        entry
        for offset in range(0, len(episode.public.dates), 28)
        for entry in run_tool("list_suspicious_dates", episode.public, {"limit": 28, "offset": offset}).result["dates"]
    ]
    assert sorted(entry["date"] for entry in entries) == sorted(episode.public.dates)
    for entry in entries:
        day = episode.public.dates.index(entry["date"])
        strengths = []
        for kind in ("conversion_rate", "event_count", "hourly_mix"):
            zs = {name: panel.filled_z[panel.index(kind, name), day] for name in ENTITY_NAMES[kind]}
            if kind == "hourly_mix" and max(zs.values()) <= 0:  # no mix rose: none is shown
                assert entry[kind] is None and entry[f"{kind}_z"] is None
                strengths.append(0.0)
                continue
            if kind == "hourly_mix":
                assert zs[entry[kind]] == max(zs.values()) > 0
                strengths.append(max(zs.values()))
            else:
                assert abs(zs[entry[kind]]) == max(abs(z) for z in zs.values())
                strengths.append(max(abs(z) for z in zs.values()))
            assert entry[f"{kind}_z"] == pytest.approx(zs[entry[kind]])
        assert entry["max_abs_robust_z"] == pytest.approx(max(strengths))
    scores = [entry["max_abs_robust_z"] for entry in entries]
    assert scores == sorted(scores, reverse=True)


# --- 3. the baseline rule -----------------------------------------------------------------------------

finite = st.floats(-1e6, 1e6, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(finite, min_size=28, max_size=28), day=st.integers(0, 27), outlier=finite, shift=st.floats(1.0, 1e6)
)
def test_the_baseline_rule_says_what_it_guarantees_and_what_it_does_not(
    values: list[float], day: int, outlier: float, shift: float
) -> None:
    """One unusual peer leaves the baseline between the other two peers; two unusual peers on one side move it
    past both clean ones, as the published rule says."""
    series = np.array(values)
    peers = [int(p) for p in same_weekday_peers(28)[day]]
    first, second, third = peers
    one = series.copy()
    one[first] = outlier
    baseline = peer_median(one[None, :], same_weekday_peers(28))[0, day]
    assert min(series[second], series[third]) <= baseline <= max(series[second], series[third])
    two = series.copy()
    two[first] = two[second] = max(series[peers]) + shift
    assert peer_median(two[None, :], same_weekday_peers(28))[0, day] > max(series[third], min(series[peers]))
    assert "one unusual peer cannot move it" in BASELINE_RULE and "a change that lasts for weeks can" in BASELINE_RULE


# --- 5, 7 and 8. schemas, errors and types ------------------------------------------------------------

BOUND_KEYWORDS = {
    Gt: ("exclusiveMinimum", "gt"),
    Ge: ("minimum", "ge"),
    Lt: ("exclusiveMaximum", "lt"),
    Le: ("maximum", "le"),
}


def _bounds(model: type[BaseModel], field: str) -> dict[str, float]:
    """The numeric bounds the validator enforces on a field, as schema keywords."""
    found = {}
    for constraint in model.model_fields[field].metadata:
        for kind, (keyword, attribute) in BOUND_KEYWORDS.items():
            if isinstance(constraint, kind):
                found[keyword] = getattr(constraint, attribute)
    return found


def _offered_models() -> list[tuple[str, type[BaseModel], dict[str, Any]]]:
    """(tool, argument model, its properties in the model's schema) for every tool and the generator items."""
    models = [
        (name, tool.args_model, tool.parameters.get("properties", {}))
        for name, tool in MODEL_TOOLS.items()
        if name not in (SUBMIT_REPORT, SUBMIT_GENERATORS)
    ]
    items = MODEL_TOOLS[SUBMIT_GENERATORS].parameters["properties"]["generators"]["items"]["properties"]
    return [*models, (SUBMIT_GENERATORS, PayloadGeneratorMethod, items)]


def test_every_bound_the_validator_enforces_is_in_the_schema_and_holds() -> None:
    checked = 0
    for name, model, properties in _offered_models():
        for field, prop in properties.items():
            bounds = _bounds(model, field)
            shown = {
                key: prop[key] for key in ("exclusiveMinimum", "minimum", "exclusiveMaximum", "maximum") if key in prop
            }
            assert shown == bounds, (name, field)
            base = (
                {"method_name": "get_median_filter_rows"}
                if model is PayloadGeneratorMethod
                else dict(TOOL_REGISTRY[name].example)
            )
            for keyword, bound in bounds.items():
                step = 1 if prop["type"] == "integer" else 1e-9
                outside = bound - step if "inimum" in keyword else bound + step
                with pytest.raises(ValidationError):
                    model.model_validate({**base, field: outside})
                if not keyword.startswith("exclusive"):
                    model.model_validate({**base, field: bound})
                checked += 1
    assert checked >= 20  # limit, offset and threshold bounds of every paged tool, and the generator items


def offering_tier(name: str, preferred: str) -> str:
    """`preferred` where it offers the tool, else the first tier that does (a tool not offered at a tier answers
    only that it is not: tests/test_tier_tools.py)."""
    return next(d for d in (preferred, *RESET_DIFFICULTIES) if name in {tool.name for tool in model_tools(d)})


@pytest.mark.parametrize("name", ANALYSIS_TOOLS)
def test_a_tools_error_lists_exactly_the_arguments_its_schema_offers(name: str) -> None:
    env, _ = _env(seed=3, difficulty=offering_tier(name, "medium"))
    message = _call(env, name, not_an_argument=1).message
    offered = list(MODEL_TOOLS[name].parameters.get("properties", {})) or ["none"]
    assert message.endswith(f"Valid arguments: {', '.join(offered)}."), message


def test_submission_errors_list_exactly_what_the_submission_schema_offers() -> None:
    items = MODEL_TOOLS[SUBMIT_GENERATORS].parameters["properties"]["generators"]["items"]["properties"]
    extra = tool_action(SUBMIT_GENERATORS, {"generators": [{"method_name": "get_funnel_break_rows", "limit": 5}]})
    assert isinstance(extra, str) and f"Each item takes {', '.join(items)}." in extra
    unknown = tool_action(SUBMIT_GENERATORS, {"generators": [{"method_name": "get_everything"}]})
    assert isinstance(unknown, str) and unknown.split("valid: ")[1].startswith(", ".join(OFFERED_GENERATORS) + ".")
    wrong = tool_action(SUBMIT_GENERATORS, {"generators": [{"method_name": "get_funnel_break_rows", "threshold": 2}]})
    assert isinstance(wrong, str) and "takes method_name and threshold_multiplier." in wrong
    for listing in (extra.split("takes ")[1], wrong.split("takes ")[1], unknown.split("valid: ")[1]):
        assert not {"limit", "offset", "metric_name", "get_rate_drop_from_median_rows"} & set(
            re.findall(r"\w+", listing)
        )


@pytest.mark.parametrize("name", OFFERED_GENERATORS)
def test_every_generator_a_model_may_name_can_be_submitted(name: str) -> None:
    arguments = {
        "method_name": name,
        **(
            {"threshold": 0.05}
            if "threshold" in MODEL_TOOLS[name].parameters["properties"]
            else {"threshold_multiplier": 4.0}
        ),
    }
    action = tool_action(SUBMIT_GENERATORS, {"generators": [arguments]})
    assert isinstance(action, MetricTrackerRlAction), action
    env, _ = _env(seed=3, difficulty="medium")
    graded = env.step(action)
    assert graded.status == "graded" and not graded.submission_issues, graded.message


@pytest.mark.parametrize("name", ANALYSIS_TOOLS)
def test_booleans_are_not_numbers_and_strings_are_not_integers(name: str) -> None:
    properties = MODEL_TOOLS[name].parameters.get("properties", {})
    numeric = {field: prop["type"] for field, prop in properties.items() if prop.get("type") in ("integer", "number")}
    env, _ = _env(seed=3, difficulty=offering_tier(name, "easy"))
    for field, kind in numeric.items():
        for value in (True, "20") if kind == "integer" else (True, "3.0"):
            observation = _call(env, name, **{**TOOL_REGISTRY[name].example, field: value})
            assert observation.status == "error" and f"{field}:" in observation.message, (name, field, value)


def test_a_submission_refuses_booleans_for_numbers() -> None:
    assert isinstance(tool_action(SUBMIT_REPORT, {"rows": [{**ROW, "baseline_value": True}]}), str)
    assert isinstance(
        tool_action(
            SUBMIT_GENERATORS, {"generators": [{"method_name": "get_median_filter_rows", "threshold_multiplier": True}]}
        ),
        str,
    )
    env, _ = _env(seed=3, difficulty="easy")
    observation = env.step(
        MetricTrackerRlAction(
            analysis_method="preview_submission", analysis_args={"rows": [{**ROW, "observed_value": False}]}
        )
    )
    assert observation.analysis_result["issues"][0]["code"] == "invalid_row"


# --- 9. task_overview ---------------------------------------------------------------------------------


@pytest.mark.parametrize("reset", [*SETTINGS, {"task_id": "hard_mixed_multi"}])
def test_task_overview_shows_what_is_set_and_what_the_brief_leaves_out(reset: dict) -> None:
    env, observation = _env(**reset)
    brief = first_prompt(observation)
    text = render_observation(_call(env, "task_overview"))
    assert "null" not in text and "0 rows" not in text
    shown = parse(text)
    assert not set(shown) & set(read_observation(brief).brief) - {
        "steps_remaining",
        "submissions_remaining",
        "incidents",
    }
    assert {row["entity_type"]: row["value"] for row in shown["entities"]} == ENTITY_VALUE_DEFINITIONS
    assert "null" not in brief.split("families:")[0]


# --- 10. tables -------------------------------------------------------------------------------------

TABLE_HEAD = re.compile(r"^(\s*)(\w+): \d+(?: of \d+)? rows$")


def _table_shapes(text: str) -> dict[str, tuple[tuple[str, ...], str]]:
    """Each table of a result text: its constant columns (`same:`) and its header line."""
    lines = text.split("\n")
    shapes = {}
    for i, line in enumerate(lines):
        match = TABLE_HEAD.match(line)
        if match and i + 1 < len(lines) and lines[i + 1].startswith(match.group(1) + "  "):
            same: tuple[str, ...] = ()
            following = lines[i + 1].strip()
            if following.startswith("same: "):
                same = tuple(json.loads(following.removeprefix("same: ")))
                following = lines[i + 2].strip()
            shapes[match.group(2)] = (same, following)
    return shapes


CALLS = [
    ("detect_funnel_break", {}),
    ("hourly_rows_for_date", {}),
    ("check_impossible_counts", {}),
    ("compare_hourly_mix_to_baseline", {"entity_name": "menu_opens"}),
    ("get_median_filter_rows", {"limit": 3}),
    ("get_median_filter_rows", {"limit": 3, "offset": 6}),
    ("get_median_filter_rows", {"metric_names": ["app_opens"], "limit": 2}),
    ("get_funnel_break_rows", {"threshold_multiplier": 0.5, "limit": 1}),
    ("get_funnel_break_rows", {"threshold_multiplier": 0.5, "limit": 3}),
    ("get_hourly_traffic_mix_shift_rows", {"limit": 1}),
    ("get_rows_with_abs_diff_from_median_gt", {"threshold": 0.0, "limit": 2}),
    ("get_rows_with_abs_diff_from_median_gt", {"threshold": 0.0, "limit": 2, "offset": 40}),
]


def test_a_tools_tables_have_the_same_columns_on_every_call() -> None:
    seen: dict[tuple[str, str], set[tuple[tuple[str, ...], str]]] = {}
    for reset in [*SETTINGS, {"seed": 12, "scenario_family": "funnel_break", "anomaly_count": 2}]:
        env, _ = _env(**reset, max_steps=500)
        for date in ("2026-03-02", "2026-03-10", "2026-03-19", "2026-03-28"):
            for name, arguments in CALLS:
                needs_date = "date" in MODEL_TOOLS[name].parameters["properties"]
                text = render_observation(_call(env, name, **({"date": date} if needs_date else {}), **arguments))
                for table, shape in _table_shapes(text).items():
                    seen.setdefault((name, table), set()).add(shape)
    assert ("detect_funnel_break", "steps") in seen and ("get_median_filter_rows", "rows") in seen
    varying = {key: shapes for key, shapes in seen.items() if len(shapes) > 1}
    assert not varying


# --- 11. values ------------------------------------------------------------------------------------


def test_broken_runs_end_before_their_end_hour_and_the_rule_says_so() -> None:
    episode = reset_episode(seed=12, scenario_family="funnel_break", anomaly_count=2)
    runs_seen = 0
    for date in episode.public.dates:
        result = run_tool("detect_funnel_break", episode.public, {"date": date}).result
        assert "end_hour is exclusive" in result["rule"]
        for step in result["steps"]:
            covered = sum(run["end_hour"] - run["start_hour"] for run in step["broken_runs"])
            assert covered == step["broken_hours"]
            runs_seen += len(step["broken_runs"])
    assert runs_seen and {step["step"] for step in result["steps"]} == set(FUNNEL_STEPS)


@pytest.mark.parametrize("reset", SETTINGS[:3])
def test_an_hourly_mix_comparison_defines_its_values_and_they_hold(reset: dict) -> None:
    """observed_value is the total-variation distance of the hours shown from their profile, baseline_value the
    median of that distance on the same weekday's other dates (both as the result's `value` line says)."""
    env, _ = _env(**reset)
    result = _call(env, "compare_hourly_mix_to_baseline", date="2026-03-11", entity_name="app_opens").analysis_result
    assert result["value"] == ENTITY_VALUE_DEFINITIONS["hourly_mix"]
    assert "total-variation distance" in result["value"] and "baseline_value: the median" in result["value"]
    distance = 0.5 * sum(abs(hour["share"] - hour["baseline_share"]) for hour in result["hours"])
    assert result["observed_value"] == pytest.approx(distance, rel=1e-9)
    assert result["baseline_value"] == pytest.approx(float(np.median([d["value"] for d in result["baseline_dates"]])))


# --- 12. the incident count -------------------------------------------------------------------------


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10**6), difficulty=st.sampled_from(DIFFICULTIES))
def test_the_brief_states_what_may_be_inferred_about_the_count_and_it_holds(seed: int, difficulty: str) -> None:
    config = resolve_episode_config(seed=seed, difficulty=difficulty)
    episode = build_episode(config)
    dates = episode.public.dates
    observation = MetricTrackerRlObservation(
        status="ready",
        message="Episode ready: x",
        objective="x",
        window=EpisodeWindow(first_date=dates[0], last_date=dates[-1], days=len(dates)),
        config=config.public_dict(),
    )
    brief = read_observation(first_prompt(observation)).brief
    assert "anomaly_density" not in brief["config"]
    numbers = [int(n) for n in re.findall(r"\b\d+\b", brief["incidents"].split(";")[0])]
    count = episode.truth.incident_count
    if brief["incidents"].startswith("exactly"):
        assert numbers == [count]
    else:
        assert brief["incidents"].startswith("between") and numbers[0] <= count <= numbers[1]


@pytest.mark.parametrize("task_id", list(TASKS))
def test_a_named_tasks_brief_states_its_exact_count(task_id: str) -> None:
    env, observation = _env(task_id=task_id)
    count = env._episode.truth.incident_count  # noqa: SLF001 (the truth, to check the published statement)
    line = read_observation(first_prompt(observation)).brief["incidents"]
    if TASKS[task_id].difficulty in RAW_EVENT_DIFFICULTIES:  # the tier's one rule; the task sets the count it shows
        assert "its reset or named task sets" in line and TASKS[task_id].config.anomaly_count == count
    else:
        assert re.match(rf"exactly {count};", line)


# --- 13. paging -------------------------------------------------------------------------------------


def test_a_page_says_which_arguments_it_belongs_to() -> None:
    env, _ = _env(seed=3, difficulty="hard")
    first = read_observation(
        render_observation(_call(env, "get_median_filter_rows", limit=5, threshold_multiplier=3.0))
    ).analysis_result
    assert first["next_offset"] == 5 and first["page_of"] == {"threshold_multiplier": 3}
    later = read_observation(
        render_observation(
            _call(
                env, "get_median_filter_rows", offset=5, limit=5, threshold_multiplier=5.0, metric_names=["app_opens"]
            )
        )
    ).analysis_result
    assert later["page_of"] == {"threshold_multiplier": 5, "metric_names": ["app_opens"]}
    whole = read_observation(render_observation(_call(env, "get_funnel_break_rows", limit=120))).analysis_result
    assert "page_of" not in whole  # a result on one page is not a page of anything


# --- 14. dates -------------------------------------------------------------------------------------


@pytest.mark.parametrize("date", ["15/03/2026", "2026/03/15", "March 15", "20260315"])
def test_a_date_in_another_format_gets_a_format_hint(date: str) -> None:
    env, _ = _env(seed=3, difficulty="easy")
    message = _call(env, "detect_funnel_break", date=date).message
    assert "not in YYYY-MM-DD format" in message and "e.g. 2026-03-02" in message
    assert "not in the episode window" not in message
    preview = _call(env, "preview_submission", rows=[{**ROW, "date": date}]).analysis_result
    assert "not in YYYY-MM-DD format" in preview["issues"][0]["message"]
    outside = _call(env, "detect_funnel_break", date="2026-04-15").message
    assert "not in the episode window" in outside


def test_the_trl_class_documents_the_bounds_it_offers() -> None:
    doc = MetricTrackerToolEnv.get_median_filter_rows.__doc__ or ""
    assert "threshold_multiplier: Robust-z threshold (> 0, <= 100)" in doc
    assert "limit: Rows per page (>= 1, <= 120)" in doc
    generators = MetricTrackerToolEnv.submit_generators.__doc__ or ""
    assert "threshold (>= 0)" in generators and "metric_name," not in generators


@pytest.mark.parametrize("difficulty", PUBLISHING_MECHANISMS)
def test_with_segments_the_brief_says_a_release_can_cause_an_incident_on_its_new_version(difficulty: str) -> None:
    """Releases cause incidents only with segments (frontier, deep): their briefs say so where every other brief
    says they cannot."""
    _, observation = _env(difficulty=difficulty, seed=3)
    kinds = read_observation(first_prompt(observation)).brief["calendar_note_kinds"]
    assert "new version" in kinds["release"] and "explains nothing" not in kinds["release"]
    _, observation = _env(difficulty="hard", seed=3)
    assert (
        "no incident comes from a release"
        in read_observation(first_prompt(observation)).brief["calendar_note_kinds"]["release"]
    )


def test_what_a_viewer_renders_as_markdown_has_no_stray_emphasis() -> None:
    """Inspect's viewer renders the system prompt and the tools' descriptions as Markdown: an asterisk outside a code
    span (the `get_*_rows` tools, `compare_*`) would turn the words between two of them into italics."""
    from metric_tracker_rl.view.prompt import SYSTEM_PROMPT
    from metric_tracker_rl.view.tool_schemas import openai_tools

    texts = [SYSTEM_PROMPT, *(json.dumps(tool["function"]) for tool in openai_tools("abyss"))]
    for text in texts:
        assert "*" not in re.sub(r"`[^`\n]*`", "", text), text[:200]
