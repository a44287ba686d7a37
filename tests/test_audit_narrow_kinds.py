"""The audit's incident kinds in narrow segments (one user type of a platform or country): each leaves its move in
the events of its own segment and not in the rest of its platform or country, and its rows name exactly that
segment, one per injected date, each past the published margin."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from metric_tracker_rl.catalog.task_splits import calibration_reset_kwargs
from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.catalog.tiers import AUDIT, AUDIT_HELD_OUT_KINDS, AUDIT_KINDS
from metric_tracker_rl.catalog.versions import tier_at
from metric_tracker_rl.generation.audit.truth import audit_rows
from metric_tracker_rl.generation.audit.world import audit_mix, build_audit_world
from metric_tracker_rl.world.audit_brief import departs
from metric_tracker_rl.world.metrics_layer import RATE_COLUMNS, counted_sessions, segment_sessions
from metric_tracker_rl.world.segments import Segment
from tests.audit_incident_helpers import FINDER, covered, findings, log_tables

# The version whose episodes this module's seeds were chosen on (the rules it tests are the same at version 2).
AUDIT_V1 = tier_at("audit", 1)

NARROW = ("push_delivery_lapse", "stored_card_challenge", "member_price_sale")
OFFSETS = (7, 8, 12, 13, 15, 33)  # eval calibration offsets that hold each of them


def test_the_narrow_kinds_join_the_audit_two_of_them_held_out() -> None:
    assert set(NARROW) <= set(AUDIT_KINDS)
    assert len(set(NARROW) & set(AUDIT_HELD_OUT_KINDS)) >= 2 and len(set(AUDIT_HELD_OUT_KINDS)) >= 3


SPREAD = 0.06  # a segment's measure varies from date to date by about this share of it, beyond sampling


def _pooled_z(counts: np.ndarray, records: list[Any]) -> float:
    """How far a segment's measure (its opens, or its step's conversions) pooled over the records' dates departs
    from what the other dates' level expects there, in standard errors (sampling and the usual day-to-day spread)."""
    days = np.zeros(len(counts), dtype=bool)
    days[[r.day for r in records]] = True
    name = records[0].entity_name
    if name == "app_opens":
        seen, expected = float(counts[days, 0].sum()), float(counts[~days, 0].mean() * days.sum())
        variance = expected
    else:
        step = RATE_COLUMNS.index(name)
        entered, converted = counts[:, step].astype(float), counts[:, step + 1].astype(float)
        usual = converted[~days].sum() / entered[~days].sum()
        seen, expected = float(converted[days].sum()), float(usual * entered[days].sum())
        variance = expected * (1 - usual)
    return (seen - expected) / float(np.sqrt(variance + (SPREAD * expected) ** 2))


@pytest.mark.slow
def test_each_narrow_kind_moves_its_own_segment_and_not_the_other_user_type() -> None:
    seen = set()
    for offset in OFFSETS:
        world = build_audit_world(AUDIT_V1, resolve_episode_config(**calibration_reset_kwargs("audit", offset, 1)))
        counted = counted_sessions(world.log)
        rows = audit_rows(world, audit_mix(AUDIT), counted)
        runs: dict[tuple[str, Segment], list[Any]] = {}
        for incident in (i for i in world.incidents if i.kind in NARROW):
            seen.add(incident.kind)
            segment = incident.segment.normalised()
            assert set(segment.named()) - {"platform", "country"} == {"user_type"}
            ours = [r for r in rows if r.kind == incident.kind and r.day == incident.record.day]
            assert [r.segment for r in ours] == [segment]
            assert departs(ours[0].observed, ours[0].baseline, audit_mix(AUDIT).margin)
            runs.setdefault((incident.kind, segment), []).append(incident.record)
        for (kind, segment), records in runs.items():
            other = segment_sessions(world.log, counted, Segment(**{**segment.named(), "user_type": "new"}))
            mine = segment_sessions(world.log, counted, segment)
            moved, beside = _pooled_z(mine, records), _pooled_z(other, records)
            assert abs(moved) >= 3 and abs(beside) < 3, (kind, segment, moved, beside)
    assert seen == set(NARROW)


SWEEP = (1, 2, 3, 4, 5, 6)


@pytest.mark.slow
@pytest.mark.parametrize("kind", NARROW)
def test_the_expert_finds_each_narrow_kind_from_the_tables_over_a_seed_sweep(kind: str) -> None:
    """The expert's finder, reading the episode's tables alone, names every date of the kind's run in a segment
    that holds the injected one, over a few seeds; on the same worlds without it, it finds nothing."""
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
