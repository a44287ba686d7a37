"""Findings that coincide at the audit: a data defect on a business incident's date, in a segment sharing its
traffic, and two incidents in one segment on one date. Each row still follows the published rules with the other
present: an incident's row reads the data as recorded (the defect included), a defect's compares the dashboard with
the metrics layer over the events without that defect (the incident included), and neither row takes the other's
place in the truth or the grade."""

from __future__ import annotations

from dataclasses import replace
from functools import cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sweep_helpers import first_fast

from metric_tracker_rl.agents.warehouse_sql import ALL_RULES, NO_FIXES, metric_values_sql
from metric_tracker_rl.catalog.plain_types import MetricSubmissionRow, RewardBreakdown
from metric_tracker_rl.catalog.published import row_key
from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.catalog.tiers import AUDIT, WAREHOUSE, AuditMix
from metric_tracker_rl.catalog.validation import entity_names_of
from metric_tracker_rl.generation.audit.episode import build_audit_episode
from metric_tracker_rl.generation.audit.world import audit_mix, build_audit_world
from metric_tracker_rl.generation.defects.log_edits import covering, span
from metric_tracker_rl.generation.episode import Episode, daily_series
from metric_tracker_rl.generation.segmented import place_world
from metric_tracker_rl.generation.warehouse.events import draw_event_log
from metric_tracker_rl.generation.warehouse.truth import leaf_sessions
from metric_tracker_rl.generation.warehouse.world import WarehouseWorld, overlaps_incident
from metric_tracker_rl.grading.grader import grade_submission
from metric_tracker_rl.serving.report_step import grade_report
from metric_tracker_rl.sql.engine import EpisodeTables, open_database
from metric_tracker_rl.world.audit_brief import departs
from metric_tracker_rl.world.events import EventLog
from metric_tracker_rl.world.funnel import window_calendar
from metric_tracker_rl.world.metrics_layer import counted_sessions, dashboard, segment_sessions
from metric_tracker_rl.world.segments import Segment, segments_meet

OVERLAPPING = (0, 4, 13)  # audit seeds whose draw puts a defect on an incident's date (held by the first test)
SWEEP = tuple(range(24))


@cache
def world_of(seed: int) -> WarehouseWorld:
    return build_audit_world(AUDIT, resolve_episode_config(seed=seed, difficulty="audit"))


@cache
def episode_of(seed: int) -> Episode:
    return build_audit_episode(AUDIT, resolve_episode_config(seed=seed, difficulty="audit"))


def _overlaps(world: WarehouseWorld) -> list[tuple[int, int, int]]:
    """(defect index, incident index, date) of each date a defect shares with an incident in a meeting segment."""
    return [
        (d, i, day)
        for d, defect in enumerate(world.defects)
        for i, incident in enumerate(world.incidents)
        for day in defect.days
        if day == incident.record.day and segments_meet(defect.segment, incident.segment)
    ]


# --- placement -------------------------------------------------------------------------------------------------


class _Log:
    def __init__(self, num_days: int) -> None:
        self.num_days = num_days


@settings(max_examples=100, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    day=st.integers(0, 55),
    low=st.integers(1, 6),
    extra=st.integers(0, 3),
    earliest=st.integers(0, 14),
)
def test_a_covered_span_holds_its_date_where_the_bounds_allow(
    seed: int, day: int, low: int, extra: int, earliest: int
) -> None:
    log = _Log(56)
    lengths = (low, low + extra)
    free, steered = np.random.default_rng(seed), np.random.default_rng(seed)
    plain = span(free, log, lengths, earliest)  # type: ignore[arg-type]
    with covering(day):
        held = span(steered, log, lengths, earliest)  # type: ignore[arg-type]
    assert len(held) == len(plain) and held == tuple(range(held[0], held[0] + len(held)))
    assert earliest <= held[0] and held[-1] <= log.num_days - 3
    feasible = max(earliest, day - len(held) + 1) < min(log.num_days - len(held) - 2, day + 1)
    assert (day in held) == feasible or (day in held and not feasible)
    assert span(np.random.default_rng(seed), log, lengths, earliest) == plain  # type: ignore[arg-type]


VALUES = {
    "platform": ("ios", "android", "web"),
    "country": ("US", "GB"),
    "app_version": ("6.1", "6.2"),
    "channel": ("organic", "paid_search"),
    "user_type": ("new", "returning"),
}


def _leaves() -> list[Segment]:
    """Every leaf of a small world: a mobile leaf names a version, web's names none (web has one version)."""
    out = []
    for platform in VALUES["platform"]:
        for version in (None,) if platform == "web" else VALUES["app_version"]:
            for country in VALUES["country"]:
                for channel in VALUES["channel"]:
                    for user_type in VALUES["user_type"]:
                        out.append(Segment(platform, country, version, channel, user_type))
    return out


def _holds(segment: Segment, leaf: Segment) -> bool:
    return all(getattr(leaf, field) == value for field, value in segment.normalised().named().items())


segments = st.builds(
    Segment,
    platform=st.sampled_from((None, *VALUES["platform"])),
    country=st.sampled_from((None, *VALUES["country"])),
    channel=st.sampled_from((None, *VALUES["channel"])),
    user_type=st.sampled_from((None, *VALUES["user_type"])),
).flatmap(
    lambda s: st.sampled_from((None, *VALUES["app_version"])).map(
        lambda v: s if s.platform in (None, "web") else replace(s, app_version=v)
    )
)


@settings(max_examples=150, deadline=None)
@given(first=segments, second=segments)
def test_two_segments_meet_exactly_when_a_leaf_lies_in_both(first: Segment, second: Segment) -> None:
    both = any(_holds(first, leaf) and _holds(second, leaf) for leaf in _leaves())
    assert segments_meet(first, second) == both == segments_meet(second, first)


def test_the_warehouse_places_no_defect_on_an_incident_and_the_audit_half_of_its_episodes() -> None:
    assert isinstance(AUDIT.segmented, AuditMix) and audit_mix(AUDIT).defect_overlap_share == 0.5
    assert not isinstance(WAREHOUSE.segmented, AuditMix)
    with pytest.raises(ValueError, match="defect_overlap_share"):
        replace(audit_mix(AUDIT), defect_overlap_share=1.5)


@pytest.mark.parametrize("seed", first_fast(OVERLAPPING))
def test_a_chosen_seed_holds_a_defect_on_an_incidents_date(seed: int) -> None:
    world = world_of(seed)
    assert _overlaps(world), seed
    assert any(overlaps_incident(d, world.incidents) for d in world.defects)
    days = [set(range(min(d.days) - 1, max(d.days) + 2)) for d in world.defects]
    assert all(not a & b for i, a in enumerate(days) for b in days[i + 1 :]), "defects stay clear of each other"


@pytest.mark.slow
def test_about_half_the_episodes_hold_an_overlap_and_some_two_incidents_in_one_segment_on_one_date() -> None:
    worlds = [world_of(seed) for seed in SWEEP]
    overlap = sum(bool(_overlaps(w)) for w in worlds)
    same = sum(
        any(
            a.record.day == b.record.day and a.segment.normalised() == b.segment.normalised()
            for i, a in enumerate(w.incidents)
            for b in w.incidents[i + 1 :]
        )
        for w in worlds
    )
    assert 0.3 * len(SWEEP) <= overlap <= 0.7 * len(SWEEP), overlap
    assert same >= 2, same  # a date's second incident sometimes takes its host's very segment


# --- the truth with the other present --------------------------------------------------------------------------


def _clean_log(seed: int) -> EventLog:
    """The episode's events as drawn, every incident in them and no defect: what a defect's row compares with."""
    config = resolve_episode_config(seed=seed, difficulty="audit")
    placed = place_world(AUDIT, config)
    return draw_event_log(placed.plan, config.key)


@pytest.mark.parametrize("seed", first_fast(OVERLAPPING))
def test_a_defects_reference_holds_the_incident_and_the_incidents_row_reads_the_defect(seed: int) -> None:
    world, episode = world_of(seed), episode_of(seed)
    margin = audit_mix(AUDIT).margin
    clean = _clean_log(seed)
    assert np.array_equal(np.asarray(dashboard(clean)["sessions"]), np.asarray(world.clean_dashboard["sessions"])), (
        "the reference is the events without any defect"
    )
    recorded, without = counted_sessions(world.log), counted_sessions(clean)
    expected = {row_key(r.date, r.entity_type, r.entity_name): r for r in episode.truth.expected_rows}
    for _, i, day in _overlaps(world):
        incident = world.incidents[i]
        record = incident.record
        there, baselines = daily_series(
            segment_sessions(world.log, recorded, incident.segment), record.entity_type, record.entity_name
        )
        before, _ = daily_series(
            segment_sessions(clean, without, incident.segment), record.entity_type, record.entity_name
        )
        key = row_key(episode.public.dates[day], record.entity_type, record.entity_name)
        if departs(float(there[day]), float(baselines[day]), margin):  # its row reads the data as recorded
            assert key in expected and expected[key].observed_value == pytest.approx(float(there[day]))
        else:
            assert key not in expected
        # The reference differs from the record by the defects alone, so the incident is in it: off every defect's
        # dates (and a day each side) the incident's segment shows the same values in both.
        touched = {d for defect in world.defects for d in range(min(defect.days) - 1, max(defect.days) + 2)}
        off = [d for d in range(world.log.num_days) if d not in touched]
        assert np.allclose(there[off], before[off], equal_nan=True), (seed, incident.kind)


@pytest.mark.parametrize("seed", first_fast(OVERLAPPING))
def test_a_defect_and_an_incident_on_one_date_are_both_expected_and_both_graded(seed: int) -> None:
    world, episode = world_of(seed), episode_of(seed)
    rows = list(episode.truth.expected_rows)
    keys = [row_key(r.date, r.entity_type, r.entity_name) for r in rows]
    assert len(keys) == len(set(keys)), "no two expected rows share a key"
    dates = {episode.public.dates[day] for _, _, day in _overlaps(world)}
    on_overlap = [r for r in rows if r.date in dates]
    assert {r.entity_type == "data_quality" for r in on_overlap} == {True, False}, on_overlap
    assert _grade(episode, rows) == 1.0
    for dropped in on_overlap:
        assert _grade(episode, [r for r in rows if r is not dropped]) < 1.0


def _grade(episode: Episode, rows: list[MetricSubmissionRow]) -> float:
    """The score a report of `rows` gets, graded by the report step as the environment grades it."""
    with entity_names_of("audit"):
        return grade_report(rows, episode, frozenset({"query"}), 0, 0.0)[1].score


def test_two_expected_rows_on_one_date_and_segment_are_two_findings() -> None:
    """The grader keys a row by date and entity, never by segment alone: a defect and an incident of one segment
    and date are two findings, and a report of one of them earns half the recall."""
    common = {"date": "2026-01-10", "platform": "ios", "detection_method": "query", "severity": "high"}
    incident = MetricSubmissionRow(
        entity_type="event_count",
        entity_name="app_opens",
        anomaly_type="absolute_drop_in_event_count",
        baseline_value=100.0,
        observed_value=50.0,
        delta_value=-50.0,
        **common,
    )
    defect = MetricSubmissionRow(
        entity_type="data_quality",
        entity_name="app_opens",
        anomaly_type="instrumentation_data_quality_issue",
        baseline_value=50.0,
        observed_value=80.0,
        delta_value=30.0,
        **common,
    )
    values = {"platform": ["ios", "android", "web"], "country": ["US"], "app_version": ["6.1"]}

    def grade(rows: list[MetricSubmissionRow]) -> RewardBreakdown:
        with entity_names_of("audit"):
            return grade_submission(
                rows,
                [incident, defect],
                frozenset(),
                ["2026-01-10"],
                segment_values=values,
                methods_used=frozenset({"query"}),
            ).breakdown

    assert grade([incident, defect]).recall == 1.0
    assert grade([incident]).recall == 0.5 and grade([defect]).recall == 0.5
    assert grade([incident, defect]).false_positive_count == 0


# --- the expert's reading beside a defect ------------------------------------------------------------------------


@pytest.mark.parametrize("seed", first_fast(OVERLAPPING[:2]))
def test_the_expert_reads_a_segments_sessions_less_a_defects_as_the_metrics_layer_counts_them(seed: int) -> None:
    """The statement the expert reads beside a defect with counts the metrics layer's sessions of a segment less
    another segment's, on a date and the same weekday's other dates (their median), and how many there were."""
    world = world_of(seed)
    opens, leaves_of = leaf_sessions(world)
    dates = window_calendar(world.log.num_days).iso_dates
    defect = world.defects[0]
    asked, want = [], []
    for i, (segment, day) in enumerate(
        [(Segment(platform=defect.segment.platform), defect.days[0]), (Segment(), defect.days[-1])]
    ):
        excluded = defect.segment.normalised()
        asked.append((i, dates[day], *segment.values(), 0, excluded.platform, excluded.country, excluded.app_version))
        daily = opens[leaves_of(segment) & ~leaves_of(excluded)].sum(axis=0)
        peers = [daily[d] for d in range(day % 7, len(dates), 7) if d != day]
        want.append((float(daily[day]), float(np.median(peers))))
    sql = metric_values_sql(ALL_RULES, NO_FIXES, asked, excluding=True, with_entered=True)
    columns, rows, _ = EpisodeTables(open_database(), world.sql_tables()).run(sql, 0, 100)
    got = [dict(zip(columns, row, strict=True)) for row in rows]
    assert [(float(r["value"]), float(r["peers"])) for r in got] == want
    assert [float(r["entered"]) for r in got] == [value for value, _ in want]
