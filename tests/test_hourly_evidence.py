"""Hourly incidents at deep are placed where their hours can be read: hourly counts exist per cell (platform,
country, app version) only, so an incident whose evidence is a block of hours never names channel or user type
(one that did could not be told from an all-day change), and each hour of its block carries enough arrivals at its
step for detect_funnel_break to judge it. Checked over seed sweeps at deep's defaults and across its dial."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from core_helpers import reset_episode

from metric_tracker_rl.adapters.session import EpisodeSession
from metric_tracker_rl.catalog.published import HOURLY_EVIDENCE_GRAIN, MIN_HOURLY_DENOMINATOR
from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.catalog.tiers import TIERS
from metric_tracker_rl.generation import build_episode
from metric_tracker_rl.generation.kinds.cuboid import MIN_BLOCK_HOUR_EXPECTED, CuboidRule
from metric_tracker_rl.generation.kinds.payment_failure import CUBOID_RULE as PAYMENT_RULE
from metric_tracker_rl.generation.kinds.segment_outage import CUBOID_RULE as OUTAGE_RULE
from metric_tracker_rl.generation.segment_plan import CuboidDial
from metric_tracker_rl.generation.segmented import build_world
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.world.segments import CELL_FIELDS, DAILY_FIELDS, SEGMENT_FIELDS, Segment

DEEP = "deep"
# Families whose evidence at deep is a block of hours: a break's stopped hours, bots' hours of opens, an outage's
# lost hours (the count family a segment's outage is reported as).
HOURLY_FAMILIES = ("funnel_break", "hourly_traffic_mix_shift", "absolute_drop_in_event_count")
# Deep's defaults, then each knob of the dial at its ends (a seed takes the setting of its position in the sweep).
DIAL: tuple[dict[str, Any], ...] = (
    {},
    {"max_cuboid_depth": 1},
    {"max_cuboid_depth": 2},
    {"concurrency": 0},
    {"concurrency": 3},
    {"magnitude_scale": 0.25},
    {"magnitude_scale": 3.0},
    {"magnitude_scale": 2.0, "concurrency": 2},
)
QUICK_SEEDS = range(len(DIAL))  # each setting of the dial once
SWEEP_SEEDS = range(200)


def _settings(seed: int) -> dict[str, Any]:
    return {"difficulty": DEEP, "seed": seed, **DIAL[seed % len(DIAL)]}


def _named(row: Any) -> dict[str, str]:
    return {field: getattr(row, field) for field in SEGMENT_FIELDS if getattr(row, field, None) is not None}


def test_a_kind_with_hourly_evidence_names_cell_fields_only() -> None:
    world = SimpleNamespace(cuboids=CuboidDial(SEGMENT_FIELDS, max_depth=3))  # every field in play
    for rule in (PAYMENT_RULE, OUTAGE_RULE, CuboidRule(hourly=True)):
        fields = rule.fields(world, Segment())  # type: ignore[arg-type]
        assert rule.hourly and fields and set(fields) <= set(CELL_FIELDS), fields
    assert set(DAILY_FIELDS) <= set(CuboidRule().fields(world, Segment()))  # type: ignore[arg-type]


def test_the_brief_states_the_rule_on_the_fields_hours_are_served_for() -> None:
    for field in (*CELL_FIELDS, "channel", "user type"):
        assert field in HOURLY_EVIDENCE_GRAIN
    for family in HOURLY_FAMILIES:
        assert family in HOURLY_EVIDENCE_GRAIN


def test_deeps_brief_shows_the_rule_and_frontiers_needs_none() -> None:
    # Frontier serves every count per cell, so only a tier with daily-only dimensions states where hours are.
    for difficulty, shown in (("deep", True), ("frontier", False)):
        text = EpisodeSession(MetricTrackerRlEnvironment()).reset(seed=3, difficulty=difficulty).text
        assert (HOURLY_EVIDENCE_GRAIN in " ".join(text.split())) is shown, difficulty


def test_the_floor_of_a_blocks_hours_clears_the_tools_with_a_margin() -> None:
    # A Poisson count expecting the floor falls under the tool's threshold about once in a few hundred hours.
    assert MIN_BLOCK_HOUR_EXPECTED >= MIN_HOURLY_DENOMINATOR + 3 * MIN_BLOCK_HOUR_EXPECTED**0.5


def _check_hourly_rows(seeds: range) -> int:
    """Every expected row of an hourly family, and every incident whose record is a block of hours, names cell
    fields only; the number of hourly rows seen."""
    seen = 0
    for seed in seeds:
        config = resolve_episode_config(**_settings(seed))
        for row in build_episode(config).truth.expected_rows:
            if row.anomaly_type in HOURLY_FAMILIES:
                seen += 1
                assert set(_named(row)) <= set(CELL_FIELDS), (seed, DIAL[seed % len(DIAL)], row)
        for incident in build_world(TIERS[config.difficulty], config).incidents:
            if incident.record.hours != (0, 24):
                assert not incident.segment.names_daily_field, (seed, incident.kind, incident.segment)
    return seen


def test_hourly_incidents_name_no_daily_field() -> None:
    assert _check_hourly_rows(QUICK_SEEDS) >= len(QUICK_SEEDS)


@pytest.mark.slow
def test_hourly_incidents_name_no_daily_field_over_a_sweep() -> None:
    assert _check_hourly_rows(SWEEP_SEEDS) >= len(SWEEP_SEEDS)


def _check_breaks_read(seeds: range) -> int:
    """detect_funnel_break, called as a model calls it on a break's segment and date, finds the break's step
    broken in some hours (in two at least where its block is that long); the number of breaks read."""
    session = EpisodeSession(MetricTrackerRlEnvironment())
    read = 0
    for seed in seeds:
        settings = _settings(seed)
        episode = reset_episode(**settings)
        breaks = [row for row in episode.truth.expected_rows if row.anomaly_type == "funnel_break"]
        if not breaks:
            continue
        session.reset(**settings)
        blocks = {(r.day, r.entity_name): r.hours for r in episode.truth.injections if r.family == "funnel_break"}
        dates = episode.public.dates
        for row in breaks:
            text = session.call("detect_funnel_break", {"date": row.date, **_named(row)})
            assert session.observation is not None and session.observation.status != "error", text
            result = session.observation.analysis_result
            step = next(s for s in result["steps"] if s["step"] == row.entity_name)
            start, end = blocks[(dates.index(row.date), row.entity_name)]
            assert step["broken_hours"] >= min(2, end - start), (seed, settings, _named(row), (start, end), text)
            read += 1
    return read


def test_every_break_reads_in_its_segments_hours() -> None:
    assert _check_breaks_read(QUICK_SEEDS) >= len(QUICK_SEEDS) // 2


@pytest.mark.slow
def test_every_break_reads_in_its_segments_hours_over_a_sweep() -> None:
    assert _check_breaks_read(SWEEP_SEEDS) >= len(SWEEP_SEEDS) // 2
