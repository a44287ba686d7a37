"""The rows an audit world expects, by the published rules of a finding (world/audit_brief.py), never by what a
mechanism is:

- a business incident's row: its record's date, root-cause metric and segment, as at the warehouse
  (warehouse/truth.py), where the metrics layer's value there departs from its baseline by more than the margin;
- a data defect's rows: on each date it covers, the first dashboard metric (sessions, the rates down the funnel, the
  revenue) whose value in its segment it moved past the margin, relative to the metrics layer's over the events as
  they would have been recorded without it. Every value is what the dashboard shows: observed the date's,
  baseline by the published baseline rule over the same series, so no value needs the mechanism to compute.

The margin is relative: |a - b| > margin * |b| (b the baseline, or the value without the defect).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from metric_tracker_rl.catalog.plain_types import MetricSubmissionRow
from metric_tracker_rl.catalog.published import FUNNEL_STEPS, row_key
from metric_tracker_rl.catalog.tiers import AuditMix
from metric_tracker_rl.generation.episode import DistractorRecord, GroundTruth, daily_series
from metric_tracker_rl.generation.warehouse.defects import DefectRecord
from metric_tracker_rl.generation.warehouse.truth import (
    DATA_QUALITY,
    ExpectedRow,
    expected_rows,
    leaf_sessions,
)
from metric_tracker_rl.generation.warehouse.world import WarehouseWorld
from metric_tracker_rl.sql.columns import SqlTable
from metric_tracker_rl.world.daily_panel import peer_median, same_weekday_peers
from metric_tracker_rl.world.metrics_layer import (
    RATE_COLUMNS,
    CountedSessions,
    counted_sessions,
    segment_metric,
    segment_sessions,
)

# The dashboard metrics a defect's row may name, in the order they are tried: the sessions (app_opens in a report),
# the four rates down the funnel, the revenue. The step counts are left out: each is the sessions times the rates
# before it.
AUDIT_METRICS: tuple[str, ...] = ("sessions", *RATE_COLUMNS, "revenue_usd")
assert tuple(RATE_COLUMNS) == tuple(FUNNEL_STEPS), "a report names a rate by its step"


def moved(value: float, reference: float, margin: float) -> bool:
    """Whether `value` departs from `reference` by more than the margin (relative to the reference)."""
    if not (math.isfinite(value) and math.isfinite(reference)):
        return False
    return abs(value - reference) > margin * abs(reference)


def _series(board: SqlTable, record: DefectRecord, metric: str, num_days: int) -> np.ndarray:
    return np.array([segment_metric(board, record.segment, metric, day) for day in range(num_days)])


def defect_rows(world: WarehouseWorld, margin: float) -> list[ExpectedRow]:
    """Each defect's rows: on each date it covers, the first metric of AUDIT_METRICS it moved past the margin in
    its segment (relative to the value without it), with the dashboard's values."""
    num_days = world.log.num_days
    rows = []
    for record in world.defects:
        recorded = {m: _series(world.dashboard, record, m, num_days) for m in AUDIT_METRICS}
        without = {m: _series(world.clean_dashboard, record, m, num_days) for m in AUDIT_METRICS}
        for day in (d for d in record.days if 0 <= d < num_days):
            metric = next((m for m in AUDIT_METRICS if moved(recorded[m][day], without[m][day], margin)), None)
            if metric is None:
                continue
            baseline = peer_median(recorded[metric], same_weekday_peers(num_days))[day]
            rows.append(ExpectedRow(record.kind, DATA_QUALITY, day, metric, record.segment.normalised(),
                                    float(baseline), float(recorded[metric][day])))
    return [row for row in rows if math.isfinite(row.baseline) and math.isfinite(row.observed)]


def relative_move(value: float, reference: float) -> float:
    """|value - reference| / |reference|: infinite from zero, and 0 where either is undefined (NaN)."""
    if not (math.isfinite(value) and math.isfinite(reference)):
        return 0.0
    if reference == 0:
        return math.inf if value != 0 else 0.0
    return abs(value - reference) / abs(reference)


def audit_rows(world: WarehouseWorld, mix: AuditMix) -> list[ExpectedRow]:
    """Every row the world expects: its incidents' that depart past the margin, and its defects'."""
    counted = counted_sessions(world.log)
    incidents = [row for row in map(plain_baseline(world, counted), expected_rows(world, counted))
                 if row.family != DATA_QUALITY and moved(row.observed, row.baseline, mix.margin)]
    rows = incidents + defect_rows(world, mix.margin)
    return sorted(rows, key=lambda row: (row.day, row.metric, row.segment.label()))


def plain_baseline(world: WarehouseWorld, counted: CountedSessions) -> Callable[[ExpectedRow], ExpectedRow]:
    """An incident row with its baseline by the published rule alone (the same weekday's other dates), where the
    warehouse reads a lasting incident's from before its change point: the audit publishes one rule for every
    row."""

    def row_of(row: ExpectedRow) -> ExpectedRow:
        if row.family == DATA_QUALITY:
            return row
        entity_type, entity_name = row.entity
        _, baselines = daily_series(segment_sessions(world.log, counted, row.segment), entity_type, entity_name)
        return replace(row, baseline=float(baselines[row.day]))

    return row_of


def audit_truth(world: WarehouseWorld, mix: AuditMix, dates: tuple[str, ...]) -> GroundTruth:
    """The grader's truth of an audit world: its rows, the side-effect keys of its incidents (less any expected
    key), the benign changes and the defects for the record, and the overlap credit's weights."""
    rows: list[MetricSubmissionRow] = [row.report_row(dates) for row in audit_rows(world, mix)]
    keys = {row_key(r.date, r.entity_type, r.entity_name) for r in rows}
    neutral = {row_key(dates[i.record.day], t, n) for i in world.incidents for t, n in i.record.neutral} - keys
    benign = [DistractorRecord(f.kind, f.day, f"{f.segment.label()}: {f.description}") for f in world.fluctuations]
    benign += [DistractorRecord(b.kind, b.day, f"{b.segment.label()}: {b.description}") for b in world.benign]
    return GroundTruth(tuple(rows), frozenset(neutral), tuple(i.record for i in world.incidents), (),
                       tuple(sorted(benign, key=lambda record: record.day)), leaf_sessions(world))
