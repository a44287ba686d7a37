"""The audit's repaired values (version 2): a data defect's expected row carries the metric's value over the events
as they would have been recorded without the defect, asked only where the recorded events can tell it; the grader
credits it as the brief's rule says, a quarter of a defect row's values; version 1 asks none."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from core_helpers import reset_episode
from hypothesis import given, settings
from hypothesis import strategies as st

from metric_tracker_rl.adapters.session import EpisodeSession
from metric_tracker_rl.agents import make_agent, play
from metric_tracker_rl.agents.audit_expert import dashboard_values_sql
from metric_tracker_rl.agents.audit_repairs import fix_of, merged, repairable, valued_and_repaired
from metric_tracker_rl.agents.warehouse_findings import Finding
from metric_tracker_rl.agents.warehouse_sql import ALL_RULES, NO_FIXES
from metric_tracker_rl.catalog.published import QUALITY_WEIGHTS, REPAIRED_TOLERANCE, row_key
from metric_tracker_rl.catalog.seeding import EpisodeKey, derive_rng
from metric_tracker_rl.catalog.task_splits import TRAIN_SEED_BASE, UNTUNED_FIRST_OFFSET, mechanism_split
from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.catalog.tiers import AUDIT, DEEP_MIX
from metric_tracker_rl.catalog.validation import entity_names_of
from metric_tracker_rl.catalog.versions import tier_at
from metric_tracker_rl.generation.audit.truth import audit_rows
from metric_tracker_rl.generation.audit.world import audit_mix, build_audit_world
from metric_tracker_rl.generation.defects import DEFECT_REGISTRY
from metric_tracker_rl.generation.episode import Episode
from metric_tracker_rl.generation.segment_plan import segmented_plan
from metric_tracker_rl.generation.segmented import place_world
from metric_tracker_rl.generation.warehouse.events import draw_event_log
from metric_tracker_rl.generation.warehouse.truth import DATA_QUALITY
from metric_tracker_rl.grading.grader import grade_submission, repaired_in_tolerance
from metric_tracker_rl.models import MetricSubmissionRow
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.serving.report_step import grading_arguments
from metric_tracker_rl.serving.reset_facts import instruction_for
from metric_tracker_rl.world.audit_brief import (
    MARGIN,
    REPAIRED_GRADING_RULE,
    REPAIRED_VALUE_RULE,
    audit_brief,
    relative_move,
)
from metric_tracker_rl.world.funnel import window_calendar
from metric_tracker_rl.world.metrics_layer import dashboard, segment_metric
from metric_tracker_rl.world.segments import Segment, world_of

QUICK_SEEDS = (0,)  # one world in the edit loop; the slow sweep reads the others
# The first seeds of each split past its listed tasks (the lab's untuned seeds: lab/calibration/audit_calibration.py).
TRAIN_UNTUNED = TRAIN_SEED_BASE + 25_000
EVAL_UNTUNED = AUDIT.calibration_seed_base + UNTUNED_FIRST_OFFSET
SWEEP_SEEDS = tuple(range(3, 16))


def _checked_seed(seed: int) -> int:
    """Every defect row of the seed's v2 world carries the metric over its clean events (recomputed here from a
    fresh draw of the world's events, before any defect), or none where its mechanism lost events; the number of
    defect rows checked."""
    config = resolve_episode_config(difficulty="audit", seed=seed, version=2)
    world = build_audit_world(config.tier, config)
    mix = audit_mix(config.tier)
    kinds, _ = mix.drawn(mechanism_split(seed))
    drawn = replace(config.tier, segmented=replace(mix, incident_kinds=kinds, held_out_kinds=()))
    clean = dashboard(draw_event_log(place_world(drawn, config).plan, config.key))
    dates = window_calendar(world.log.num_days).iso_dates
    checked = 0
    for row in audit_rows(world, audit_mix(config.tier)):
        reported = row.report_row(dates, repaired_values=True)
        if row.family != DATA_QUALITY:
            assert row.repaired is None and reported.repaired_value is None
            continue
        assert row.report_row(dates).repaired_value is None  # version 1's row asks none
        if not DEFECT_REGISTRY[row.kind].repairable:
            assert row.repaired is None and reported.repaired_value is None
            continue
        value = segment_metric(clean, row.segment, row.metric, row.day)
        assert row.repaired == value == reported.repaired_value, (seed, row)
        assert relative_move(row.observed, value) > MARGIN  # the value the findings rule measured it from
        checked += 1
    return checked


def test_a_defect_rows_repaired_value_is_its_metric_over_the_clean_events() -> None:
    assert sum(_checked_seed(seed) for seed in QUICK_SEEDS) > 0


@pytest.mark.slow
def test_every_defect_rows_repaired_value_of_a_sweep_is_its_metric_over_the_clean_events() -> None:
    assert sum(_checked_seed(seed) for seed in SWEEP_SEEDS) > 10


def test_a_mechanism_is_repairable_exactly_where_every_event_users_sent_is_recorded() -> None:
    """The brief's rule of what is not asked: a defect whose edit leaves the export fewer events than users sent
    (lost outright) is the one kind whose rows ask no repaired value."""
    key = EpisodeKey.of(11)
    log = draw_event_log(segmented_plan(key, 56, world_of(DEEP_MIX.dimensions)), key)
    for index, (name, mechanism) in enumerate(DEFECT_REGISTRY.items()):
        edited, _ = mechanism.apply(log, derive_rng(key, "repairable", index))
        assert mechanism.repairable == (len(edited.events) >= len(log.events)), name


# --- the grade ------------------------------------------------------------------------------------------------------


def _episode_with_repaired_rows() -> Episode:
    """The first audit v2 episode whose truth holds a repaired value and an unrepairable defect row."""
    for seed in range(40):
        episode = reset_episode(difficulty="audit", seed=seed, version=2)
        defects = [row for row in episode.truth.expected_rows if row.entity_type == "data_quality"]
        if any(row.repaired_value is None for row in defects) and any(row.repaired_value for row in defects):
            return episode
    raise AssertionError("no seed below 40 holds both")


EPISODE = _episode_with_repaired_rows()
EXPECTED = list(EPISODE.truth.expected_rows)
REPAIRED = [i for i, row in enumerate(EXPECTED) if row.repaired_value is not None]
UNASKED = [i for i, row in enumerate(EXPECTED) if row.entity_type == "data_quality" and row.repaired_value is None]


def _score(rows: list[MetricSubmissionRow], episode: Episode = EPISODE) -> float:
    with entity_names_of("audit"):  # as the environment grades: with the tier's entity names
        return grade_submission(rows, **grading_arguments(episode, frozenset({"query"}))).score


def _with(index: int, value: float | None) -> list[MetricSubmissionRow]:
    rows = list(EXPECTED)
    rows[index] = rows[index].model_copy(update={"repaired_value": value})
    return rows


def _stated_tolerance() -> float:
    match = re.search(r"within (\d+)% of the expected value", REPAIRED_VALUE_RULE)
    assert match is not None
    return int(match.group(1)) / 100


def _stated_share() -> float:
    """The share of a row's quality the grading rule says one repaired value is worth: a quarter of the values."""
    assert "a quarter each of its" in REPAIRED_GRADING_RULE
    values = float(REPAIRED_GRADING_RULE.split("a quarter each of its ")[1].split()[0])
    return values / 4


def test_the_truths_report_earns_full_credit_and_version_1_asks_nothing_of_it() -> None:
    assert _score(EXPECTED) == 1.0
    assert _score([row.model_copy(update={"repaired_value": None}) for row in EXPECTED]) < 1.0
    version_1 = reset_episode(difficulty="audit", seed=EPISODE.config.seed, version=1)  # its own episode's draw
    asked = list(version_1.truth.expected_rows)
    assert asked and all(row.repaired_value is None for row in asked)
    assert _score([row.model_copy(update={"repaired_value": 1e9}) for row in asked], version_1) == 1.0


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(REPAIRED),
    st.floats(0.0, 0.999 * REPAIRED_TOLERANCE),
    st.floats(1.001 * REPAIRED_TOLERANCE, 50.0),
    st.booleans(),
)
def test_a_repaired_value_off_by_more_than_the_tolerance_loses_exactly_the_stated_share(
    index: int, inside: float, outside: float, above: bool
) -> None:
    """Within the stated tolerance a repaired value is right; past it (or left out) its row loses the stated share
    of its quality, so the score loses that share over the expected rows, and nothing else moves."""
    assert _stated_tolerance() == REPAIRED_TOLERANCE and _stated_share() == QUALITY_WEIGHTS["values"] / 4
    expected = EXPECTED[index].repaired_value
    assert expected is not None
    sign = 1 if above else -1
    assert _score(_with(index, expected * (1 + sign * inside))) == 1.0
    lost = 1.0 - _stated_share() / len(EXPECTED)
    off = expected * (1 + sign * outside) if expected else sign * outside
    assert _score(_with(index, off)) == pytest.approx(lost, abs=1e-6)
    assert _score(_with(index, None)) == pytest.approx(lost, abs=1e-6)


@settings(max_examples=30, deadline=None)
@given(st.data(), st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False)))
def test_where_the_events_cannot_tell_it_and_on_an_incident_any_repaired_value_is_right(
    data: st.DataObject, value: float | None
) -> None:
    unasked = [*UNASKED, *(i for i, row in enumerate(EXPECTED) if row.entity_type != "data_quality")]
    assert UNASKED and len(unasked) > len(UNASKED)
    assert _score(_with(data.draw(st.sampled_from(unasked)), value)) == 1.0


# --- the texts --------------------------------------------------------------------------------------------------------


def test_version_2s_brief_states_the_rule_and_version_1s_is_as_it_was() -> None:
    environment = MetricTrackerRlEnvironment()
    briefs, instructions = {}, {}
    for version in (1, 2):
        observation = environment.reset(difficulty="audit", seed=1, version=version)
        briefs[version], instructions[version] = observation.segments or {}, observation.instruction
    assert instructions[1] == instruction_for("audit") and "repaired_value" not in instructions[1]
    assert "the brief's findings, values and repaired_value (under segments)" in instructions[2]
    dimensions = tier_at("audit", 1).dimensions
    assert briefs[1] == audit_brief(dimensions) and "repaired" not in str(briefs[1])
    assert briefs[2]["repaired_value"] == REPAIRED_VALUE_RULE
    assert str(briefs[2]["grading"]).endswith(REPAIRED_GRADING_RULE)
    assert {key: text for key, text in briefs[2].items() if key not in ("repaired_value", "values", "grading")} == {
        key: text for key, text in briefs[1].items() if key not in ("values", "grading")
    }
    assert f"{REPAIRED_TOLERANCE:.0%}" in REPAIRED_VALUE_RULE and REPAIRED_TOLERANCE < MARGIN


def test_the_report_tool_offers_repaired_value_at_the_audit_alone() -> None:
    from metric_tracker_rl.view.tool_schemas import openai_tools

    for tier in ("deep", "warehouse", "audit"):
        report = next(t for t in openai_tools(tier) if t["function"]["name"] == "submit_report")
        fields = report["function"]["parameters"]["properties"]["rows"]["items"]["properties"]
        assert ("repaired_value" in fields) == (tier == "audit"), tier


# --- the expert -------------------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("seed", [TRAIN_UNTUNED + 1_100, EVAL_UNTUNED + 1_104])
def test_the_expert_repairs_every_defect_row_it_reports_from_the_tools(seed: int) -> None:
    """Played through the tools, the expert's repaired value of each defect row it reports on an expected key is
    within the tolerance of the truth's (nothing of the truth reaches it: it reads what a model reads)."""
    environment = MetricTrackerRlEnvironment()
    session = play(make_agent("audit_expert"), EpisodeSession(environment), difficulty="audit", seed=seed, version=2)
    assert session.graded is not None
    expected = {
        row_key(r.date, r.entity_type, r.entity_name): r.repaired_value
        for r in reset_episode(difficulty="audit", seed=seed, version=2).truth.expected_rows
        if r.repaired_value is not None
    }
    reported = [r for r in session.graded.submitted_rows if row_key(r.date, r.entity_type, r.entity_name) in expected]
    assert reported
    for row in reported:
        value = expected[row_key(row.date, row.entity_type, row.entity_name)]
        assert repaired_in_tolerance(row.repaired_value, value), (row, value)


def _defect(kind: str, metric: str = "sessions", **segment: str) -> Finding:
    return Finding("2026-03-10", metric, DATA_QUALITY, Segment(**segment).normalised(), observed=200.0, kind=kind)


def test_a_refused_repair_statement_never_costs_a_row_its_dashboard_values() -> None:
    """The dashboard's values and a repair share one statement; where it is refused (the tool answers no rows),
    the dashboard's are read alone, then the repair; a scaled defect is repaired from its dashboard value."""
    found = [_defect("batch_replay", platform="web"), _defect("minor_units", "revenue_usd", platform="ios")]
    procedure = valued_and_repaired(ALL_RULES, NO_FIXES, found, dashboard_values_sql)
    first = next(procedure)
    assert "'dashboard' part" in first[1] and "'repaired' part" in first[1]
    alone = procedure.send([])  # refused: more memory than a query may use
    assert "'dashboard' part" in alone[1] and "'repaired' part" not in alone[1]
    repair = procedure.send([{"part": "dashboard", "i": i, "value": "300", "peers": "190"} for i in range(2)])
    assert "'repaired' part" in repair[1] and "'dashboard' part" not in repair[1]
    with pytest.raises(StopIteration) as done:
        procedure.send([{"part": "repaired", "i": 0, "value": "201.0", "peers": None}])
    replayed, scaled = done.value.value
    assert (replayed.observed, replayed.baseline, replayed.repaired) == (300.0, 190.0, 201.0)
    assert scaled.repaired == 3.0  # minor units: a hundredth of what the dashboard shows


def test_the_repairs_of_several_defects_are_read_with_every_fix_they_need() -> None:
    found = [
        _defect("event_renamed_silently", "app_open_to_menu_open", platform="ios", app_version="6.3.0"),
        _defect("stamped_behind", platform="android", app_version="6.2.0"),
        _defect("debug_build", platform="ios", app_version="6.3.0"),
    ]
    fixes = merged(NO_FIXES, *(fix_of(d) for d in found))
    assert fixes.unplanned == (("ios", "6.3.0", "menu_open"),) and fixes.behind == (("android", "6.2.0"),)
    assert fixes.debug_counted and not fixes.rejoined
    assert not any(repairable(_defect(kind)) for kind in ("ingestion_gap", "client_sampling", "truncated_batches"))
