"""What a frontier model reads is what the environment does: the detection methods the grader credits, the grading
rule, the baseline rule beyond four weeks, the segment scope of the date-level tools, and the row-by-row grade."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from core_helpers import reset_episode
from hypothesis import example, given, settings
from hypothesis import strategies as st
from text_reader import parse, read_observation

from metric_tracker_rl import MetricTrackerRlAction
from metric_tracker_rl.analysis_tools import TOOL_REGISTRY, run_tool
from metric_tracker_rl.catalog.families import PUBLISHED_FAMILIES
from metric_tracker_rl.catalog.published import (
    BASELINE_RULE,
    COUNT_COLUMNS,
    DIFFICULTIES,
    GRADING_RULE,
    QUALITY_WEIGHTS,
    SEVERITY_RULE,
    severity_for,
)
from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.catalog.tiers import TIERS
from metric_tracker_rl.generation.segmented import episode_kinds
from metric_tracker_rl.grading.grader import accepted_methods, grade_submission, within_tolerance
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.view.observation import render_observation
from metric_tracker_rl.view.prompt import SYSTEM_PROMPT, first_prompt
from metric_tracker_rl.view.tool_schemas import openai_tools
from metric_tracker_rl.world.daily_panel import peer_median, same_weekday_peers
from metric_tracker_rl.world.segments import SEGMENT_FIELDS

SCOPED_COMPARISONS = {
    "conversion_rate": "compare_rate_to_median",
    "event_count": "compare_count_to_median",
    "hourly_mix": "compare_hourly_mix_to_baseline",
}


def _brief(**reset: Any) -> dict[str, Any]:
    return read_observation(first_prompt(MetricTrackerRlEnvironment().reset(**reset))).brief


@pytest.mark.parametrize("difficulty", ["easy", "frontier"])
def test_the_brief_publishes_exactly_the_detection_methods_the_grader_credits(difficulty: str) -> None:
    families = {row["family"]: row for row in _brief(difficulty=difficulty, seed=1)["families"]}
    # With segments the brief lists the families its incident kinds are reported as; else every family.
    config = resolve_episode_config(difficulty=difficulty, seed=1)
    kinds = episode_kinds(TIERS[difficulty], config) if difficulty == "frontier" else ()
    assert set(families) == ({kind.family for kind in kinds} or set(PUBLISHED_FAMILIES.names))
    for name, row in families.items():
        assert set(row["detection_methods"]) == accepted_methods(name), name
        assert row["definition"] == PUBLISHED_FAMILIES[name].definition
    schema = next(t for t in openai_tools() if t["function"]["name"] == "submit_report")["function"]["parameters"]
    method = schema["properties"]["rows"]["items"]["properties"]["detection_method"]
    assert "detection_methods" in method["description"]


def test_the_grading_rule_a_model_reads_reconciles_a_grade() -> None:
    """The published formula, applied to the printed counts, gives the printed precision and score."""
    for weight in QUALITY_WEIGHTS.values():
        assert f"{weight}" in GRADING_RULE
    assert "(matched + 1) / (matched + false_positives + 1)" in GRADING_RULE and "neutral" in GRADING_RULE
    episode = reset_episode(task_id="hard_mixed_multi")
    truth = episode.truth
    side_effect = next(iter(sorted(truth.neutral_keys)))
    date, entity_type, entity_name = side_effect.split("|")
    padded = [
        *truth.expected_rows,
        truth.expected_rows[0].model_copy(
            update={"date": date, "entity_type": entity_type, "entity_name": entity_name}
        ),
    ]
    grade = grade_submission(padded, truth.expected_rows, truth.neutral_keys, episode.public.dates).breakdown
    matched, false_positives = grade.matched_row_count, grade.false_positive_count
    assert (grade.neutral_row_count, false_positives) == (1, 1)
    assert grade.precision == pytest.approx((matched + 1) / (matched + false_positives + 1), abs=1e-6)
    assert grade.score == pytest.approx(grade.recall_quality * grade.precision, abs=1e-6)


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.floats(0.1, 1.0), min_size=56, max_size=56), gap=st.integers(0, 55))
@example(values=[0.5] * 56, gap=0)
def test_the_baseline_rule_holds_over_eight_weeks_with_a_skipped_peer(values: list[float], gap: int) -> None:
    """Seven peers give their middle one; a peer without a value is skipped and six give the mean of the middle
    two, as the rule says."""
    assert "seven in eight" in BASELINE_RULE and "mean of the middle two" in BASELINE_RULE
    series = np.array(values)
    peers = same_weekday_peers(56)
    for day in (3, 30):
        full = sorted(series[peers[day]])
        assert peer_median(series[None], peers)[0, day] == pytest.approx(full[3])
    holed = series.copy()
    holed[gap] = np.nan
    for day in range(56):
        kept = sorted(v for v in holed[peers[day]] if np.isfinite(v))
        expected = kept[len(kept) // 2] if len(kept) % 2 else (kept[len(kept) // 2 - 1] + kept[len(kept) // 2]) / 2
        assert peer_median(holed[None], peers)[0, day] == pytest.approx(expected)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_scoped_comparison_shows_the_incidents_expected_row(seed: int) -> None:
    """At frontier the comparison tools scoped to an incident's segment print its expected numbers (within the
    2% the grader allows), and severity is judged on those numbers, not on the family's magnitude."""
    episode = reset_episode(difficulty="frontier", seed=seed)
    checked = 0
    for row in episode.truth.expected_rows:
        tool = SCOPED_COMPARISONS.get(row.entity_type)
        if tool is None:
            continue
        scope = {
            k: v
            for k, v in (("platform", row.platform), ("country", row.country), ("app_version", row.app_version))
            if v is not None
        }
        outcome = run_tool(tool, episode.public, {"date": row.date, "entity_name": row.entity_name, **scope})
        assert outcome.ok, outcome.error
        result = outcome.result
        assert {k: result[k] for k in scope} == scope
        assert result["baseline_value"] == pytest.approx(row.baseline_value, rel=0.02)
        assert result["observed_value"] == pytest.approx(row.observed_value, rel=0.02)
        assert (
            result["severity"] == row.severity == severity_for(row.entity_type, row.baseline_value, row.observed_value)
        )
        checked += 1
    assert checked
    assert "never on the family's magnitude" in SEVERITY_RULE


@pytest.mark.parametrize("seed", [0, 3, 6])
def test_at_deep_a_comparison_scoped_by_channel_or_user_type_shows_the_incidents_expected_row(seed: int) -> None:
    """A channel or a user type has daily counts only: the comparison tools scoped to an incident confined by one
    read that segment's own days and print the numbers the grader expects, within its tolerance (a funnel step's
    series is its conversion rate's)."""
    episode = reset_episode(difficulty="deep", seed=seed)
    checked = 0
    for row in episode.truth.expected_rows:
        if row.channel is None and row.user_type is None:
            continue
        tool = "compare_count_to_median" if row.entity_type == "event_count" else "compare_rate_to_median"
        scope = {name: getattr(row, name) for name in SEGMENT_FIELDS if getattr(row, name) is not None}
        outcome = run_tool(tool, episode.public, {"date": row.date, "entity_name": row.entity_name, **scope})
        assert outcome.ok, outcome.error
        result = outcome.result
        assert {name: result[name] for name in scope} == scope
        assert within_tolerance(result["baseline_value"], row.baseline_value, row.baseline_value)
        assert within_tolerance(result["observed_value"], row.observed_value, row.observed_value)
        assert within_tolerance(result["delta_value"], row.delta_value, row.baseline_value)
        assert result["severity"] == row.severity
        checked += 1
    assert checked


DEEP = reset_episode(difficulty="deep", seed=2).public
DEEP_VALUES = DEEP.segment_values() or {}


@settings(max_examples=40, deadline=None)
@given(
    named=st.fixed_dictionaries(
        {},
        optional={name: st.sampled_from(DEEP_VALUES[name]) for name in ("platform", "country", "channel", "user_type")},
    ),
    day=st.integers(0, len(DEEP.data.dates) - 1),
    column=st.integers(0, 4),
)
@example(named={"channel": "organic"}, day=20, column=0)
def test_at_deep_a_count_comparison_reads_its_segments_own_days(named: dict[str, str], day: int, column: int) -> None:
    """A day-level tool scoped by any of deep's dimensions reads the sum of daily_by_segment's rows inside the
    segment, and its baseline is the median of that sum on the same weekday's other dates."""
    table = DEEP.segment_tables()["daily_by_segment"]
    inside = np.ones(len(table), dtype=bool)
    for name, value in named.items():
        inside &= (table[name] == value).to_numpy()
    event = COUNT_COLUMNS[column]
    series = table[inside].groupby("date")[event].sum().reindex(DEEP.data.dates, fill_value=0).to_numpy(float)
    outcome = run_tool("compare_count_to_median", DEEP, {"date": DEEP.data.dates[day], "entity_name": event, **named})
    assert outcome.ok, outcome.error
    assert outcome.result["observed_value"] == series[day]
    peers = [series[p] for p in range(day % 7, len(series), 7) if p != day]
    assert outcome.result["baseline_value"] == pytest.approx(float(np.median(peers)))


@pytest.mark.parametrize(
    "tool", ["hourly_rows_for_date", "detect_funnel_break", "check_impossible_counts", "compare_hourly_mix_to_baseline"]
)
@pytest.mark.parametrize("named", [{"channel": "paid_search"}, {"platform": "ios", "user_type": "new"}])
def test_at_deep_a_tool_that_reads_hours_says_a_channel_or_user_type_has_none(tool: str, named: dict[str, str]) -> None:
    """Hourly counts exist per (platform, country, app_version) cell only: the call is an error that says so,
    names the fields the tool takes and where the segment's days are."""
    outcome = run_tool(tool, DEEP, {"date": DEEP.data.dates[5], **named})
    assert not outcome.ok and outcome.error is not None
    daily = next(name for name in named if name in ("channel", "user_type"))
    assert f"hourly counts exist per (platform, country, app_version) cell only, not per {daily}" in outcome.error
    assert "takes platform, country and app_version" in outcome.error and "compare_rate_to_median" in outcome.error


@pytest.mark.parametrize("tool", ["compare_rate_to_median", "detect_funnel_break"])
def test_a_dimension_the_tier_lacks_is_an_error_that_lists_its_dimensions(tool: str) -> None:
    frontier = reset_episode(difficulty="frontier", seed=1).public
    arguments = {"date": frontier.data.dates[3], "channel": "organic", "entity_name": "app_open_to_menu_open"}
    if tool == "detect_funnel_break":
        arguments.pop("entity_name")
    outcome = run_tool(tool, frontier, arguments)
    assert not outcome.ok
    assert outcome.error == (
        f"{tool}: channel 'organic': this episode has no channel dimension; its dimensions: "
        "platform, country, app_version"
    )


def test_a_segment_scope_below_frontier_or_off_the_episode_is_an_error_that_names_the_valid_values() -> None:
    hard = reset_episode(difficulty="hard", seed=1).public
    outcome = run_tool("detect_funnel_break", hard, {"date": hard.data.dates[3], "platform": "ios"})
    have = [name for name in DIFFICULTIES if TIERS[name].dimensions]  # the listed tiers with segments
    assert not outcome.ok and f"difficulties {', '.join(have[:-1])} and {have[-1]} have)" in outcome.error
    frontier = reset_episode(difficulty="frontier", seed=1).public
    outcome = run_tool("detect_funnel_break", frontier, {"date": frontier.data.dates[3], "country": "FR"})
    assert not outcome.ok and "valid: US, GB, DE, BR, IN" in outcome.error


def test_frontier_only_tools_say_so_and_answer_with_an_error_elsewhere() -> None:
    episode = reset_episode(difficulty="easy", seed=1).public
    for name in ("get_releases", "compare_segments"):
        assert TOOL_REGISTRY[name].description.startswith("Segments only: ")
        arguments = TOOL_REGISTRY[name].example
        assert not run_tool(name, episode, arguments).ok


@pytest.mark.parametrize("difficulty", ["frontier", "deep"])
def test_compare_segments_examples_make_a_valid_call_at_every_tier_that_offers_it(difficulty: str) -> None:
    """One schema serves every segmented tier: its dimension and within examples name only dimensions each tier
    has, alone and together; and within may not name a grouped dimension, as its description says."""
    schema = next(
        tool["function"]["parameters"] for tool in openai_tools() if tool["function"]["name"] == "compare_segments"
    )["properties"]
    dimension = schema["dimension"]["description"].split("e.g. ")[1]
    within = schema["within"]["description"].split("e.g. ")[1]
    assert "not grouped" in schema["within"]["description"]
    public = reset_episode(difficulty=difficulty, seed=1).public
    base = {"date": public.dates[3], "metric_name": "app_opens"}
    for arguments in (
        {"dimension": dimension},
        {"dimension": "country", "within": within},
        {"dimension": dimension, "within": within},
    ):
        outcome = run_tool("compare_segments", public, {**base, **arguments})
        assert outcome.ok and outcome.result["rows"], (arguments, outcome.error)
    grouped = within.split("=")[0]
    outcome = run_tool("compare_segments", public, {**base, "dimension": grouped, "within": within})
    assert not outcome.ok and "which the breakdown groups by" in (outcome.error or "")


def test_the_prompt_says_one_row_per_date_and_what_works_at_frontier() -> None:
    assert "report it once" not in SYSTEM_PROMPT and "one row per date" in " ".join(SYSTEM_PROMPT.split())
    prompt = " ".join(SYSTEM_PROMPT.split())
    assert "compare_segments" in prompt and "platform, country and app_version" in prompt


def test_once_the_episode_is_over_the_text_shows_each_rows_verdict_and_the_missed_keys() -> None:
    """At frontier too: a segment row on an expected key is matched (not invalid), a wrong key is not_expected,
    and the expected keys nobody reported are listed with their segment."""
    env = MetricTrackerRlEnvironment()
    env.reset(difficulty="frontier", seed=2)
    expected = reset_episode(difficulty="frontier", seed=2).truth.expected_rows
    wrong = expected[0].model_copy(update={"entity_type": "event_count", "entity_name": "payment_successful"})
    observation = env.step(MetricTrackerRlAction(classifications=[expected[0], wrong]))
    assert observation.done
    graded = parse(render_observation(observation))["graded"]
    verdicts = [row["verdict"] for row in graded["verdicts"]]
    assert verdicts[0] == "matched" and verdicts[1] in ("not_expected", "side_effect")
    assert len(graded["missed"]) == len(expected) - 1
    assert all("(" in key for key in graded["missed"])  # every frontier key names its segment
