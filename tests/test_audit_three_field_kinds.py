"""The audit's incident kinds in three-field segments (a platform's channel or user type in one country): each
leaves its move in the events of its own segment and not in its sibling beside it, its rows name exactly those
three fields, one per injected date, each past the published margin; and the expert's scan of every three-field
segment finds it from the tables alone."""

from __future__ import annotations

import numpy as np
import pytest

from metric_tracker_rl.catalog.tiers import AUDIT, AUDIT_HELD_OUT_KINDS, AUDIT_KINDS
from metric_tracker_rl.generation.audit.truth import audit_rows
from metric_tracker_rl.generation.audit.world import audit_mix, build_audit_world
from metric_tracker_rl.world.audit_brief import departs
from metric_tracker_rl.world.metrics_layer import RATE_COLUMNS, counted_sessions, segment_sessions
from metric_tracker_rl.world.segments import Segment
from tests.audit_incident_helpers import FINDER, covered, episode_config, findings, log_tables

THREE_FIELD = ("search_ads_pause", "regional_sign_out")
# The field each kind's segment is compared on with its sibling, and the sibling's value there.
SIBLING = {"search_ads_pause": ("platform", "web"), "regional_sign_out": ("user_type", "new")}
SWEEP = (1, 2, 3, 4, 5, 6)
SPREAD = 0.06  # a segment's measure varies from date to date by about this share of it, beyond sampling


def test_the_three_field_kinds_join_the_audit_one_in_both_splits() -> None:
    assert set(THREE_FIELD) <= set(AUDIT_KINDS)
    assert "search_ads_pause" not in AUDIT_HELD_OUT_KINDS and "regional_sign_out" in AUDIT_HELD_OUT_KINDS


def _pooled_z(counts: np.ndarray, days: list[int], name: str) -> float:
    """How far a segment's opens (or its step's conversions), pooled over `days`, depart from what the other
    dates' level expects there, in standard errors (sampling and the usual day-to-day spread)."""
    on = np.zeros(len(counts), dtype=bool)
    on[days] = True
    if name == "app_opens":
        seen, expected = float(counts[on, 0].sum()), float(counts[~on, 0].mean() * on.sum())
        variance = expected
    else:
        step = RATE_COLUMNS.index(name)
        entered, converted = counts[:, step].astype(float), counts[:, step + 1].astype(float)
        usual = converted[~on].sum() / entered[~on].sum()
        seen, expected = float(converted[on].sum()), float(usual * entered[on].sum())
        variance = expected * (1 - usual)
    return (seen - expected) / float(np.sqrt(variance + (SPREAD * expected) ** 2))


def _check_trace(kind: str, seed: int) -> None:
    world = build_audit_world(AUDIT, episode_config(seed, kind, 1))
    counted = counted_sessions(world.log)
    rows = audit_rows(world, audit_mix(AUDIT), counted)
    mine = [i for i in world.incidents if i.kind == kind]
    assert mine, (kind, seed)
    segment = mine[0].segment.normalised()
    assert len(segment.named()) == 3 and {i.segment.normalised() for i in mine} == {segment}
    for incident in mine:
        ours = [r for r in rows if r.kind == kind and r.day == incident.record.day]
        assert [r.segment for r in ours] == [segment], (kind, seed, ours)
        assert departs(ours[0].observed, ours[0].baseline, audit_mix(AUDIT).margin), (kind, seed, ours[0])
    field, value = SIBLING[kind]
    sibling = Segment(**{**segment.named(), field: value})
    days, name = [i.record.day for i in mine], mine[0].record.entity_name
    moved = _pooled_z(segment_sessions(world.log, counted, segment), days, name)
    beside = _pooled_z(segment_sessions(world.log, counted, sibling), days, name)
    assert moved <= -3 and abs(beside) < 3, (kind, seed, segment, moved, beside)


@pytest.mark.slow
@pytest.mark.parametrize("kind", THREE_FIELD)
def test_each_three_field_kind_moves_its_own_segment_and_its_rows_name_it(kind: str) -> None:
    for seed in SWEEP:
        _check_trace(kind, seed)


@pytest.mark.slow
@pytest.mark.parametrize("kind", THREE_FIELD)
def test_the_expert_finds_each_three_field_kind_from_the_tables_over_a_seed_sweep(kind: str) -> None:
    """The expert's three-field scan, reading the episode's tables alone, names every date of the kind's run in a
    segment that holds the injected one, over a few seeds; on the same worlds without it, it finds nothing."""
    dates = found = 0
    for seed in SWEEP:
        tables, incidents = log_tables(seed, kind, False)
        mine = [i for i in incidents if i.kind == kind]
        assert mine, (kind, seed)
        hits = findings(FINDER[kind], tables)
        dates += len(mine)
        found += sum(covered(incident, hits) for incident in mine)
        assert findings(FINDER[kind], log_tables(seed, None, False)[0]) == [], (kind, seed)
    assert found / dates >= 0.9, (kind, found, dates)
