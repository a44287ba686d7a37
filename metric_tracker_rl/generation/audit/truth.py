"""The rows an audit world expects, by the published rules of a finding (world/audit_brief.py), never by what a
mechanism is:

- a business incident's row: its record's date, root-cause metric and segment, as at the warehouse
  (warehouse/truth.py), where the metrics layer's value there departs from its baseline by more than the margin;
- a data defect's rows: on each date it covers, the first dashboard metric (sessions, the rates down the funnel, the
  revenue) whose value in its segment it moved past the margin, relative to the metrics layer's over the events as
  they would have been recorded without it. Every value is what the dashboard shows: observed the date's,
  baseline by the published baseline rule over the same series, so no value needs the mechanism to compute. Its
  repaired value (where the tier asks it) is the metric's value without it, the one the departure is measured from.

The margin is relative: |a - b| / |b| > margin (b the baseline, or the value without the defect), as
world/audit_brief.departs reads it.
"""

from __future__ import annotations

import math

import numpy as np

from metric_tracker_rl.catalog.published import FUNNEL_STEPS
from metric_tracker_rl.catalog.tiers import AuditMix
from metric_tracker_rl.generation.defects import DEFECT_REGISTRY, DefectRecord
from metric_tracker_rl.generation.episode import GroundTruth
from metric_tracker_rl.generation.warehouse.truth import (
    DATA_QUALITY,
    ExpectedRow,
    incident_rows,
    truth_of,
)
from metric_tracker_rl.generation.warehouse.world import WarehouseWorld
from metric_tracker_rl.sql.columns import SqlTable
from metric_tracker_rl.world.audit_brief import departs
from metric_tracker_rl.world.daily_panel import peer_median, same_weekday_peers
from metric_tracker_rl.world.metrics_layer import (
    RATE_COLUMNS,
    CountedSessions,
    counted_sessions,
    segment_metric,
)

# The dashboard metrics a defect's row may name, in the order they are tried: the sessions (app_opens in a report),
# the four rates down the funnel, the revenue. The step counts are left out: each is the sessions times the rates
# before it.
AUDIT_METRICS: tuple[str, ...] = ("sessions", *RATE_COLUMNS, "revenue_usd")
assert tuple(RATE_COLUMNS) == tuple(FUNNEL_STEPS), "a report names a rate by its step"


def _series(board: SqlTable, record: DefectRecord, metric: str, num_days: int) -> np.ndarray:
    return np.array([segment_metric(board, record.segment, metric, day) for day in range(num_days)])


def defect_rows(world: WarehouseWorld, margin: float) -> list[ExpectedRow]:
    """Each defect's rows: on each date it covers, the first metric of AUDIT_METRICS it moved past the margin in
    its segment (relative to the value without it), with the dashboard's values, and that value without it as the
    row's repaired value where the recorded events can tell it (its mechanism is repairable)."""
    num_days = world.log.num_days
    rows = []
    for record in world.defects:
        recorded = {m: _series(world.dashboard, record, m, num_days) for m in AUDIT_METRICS}
        without = {m: _series(world.clean_dashboard, record, m, num_days) for m in AUDIT_METRICS}
        repairable = DEFECT_REGISTRY[record.kind].repairable
        for day in (d for d in record.days if 0 <= d < num_days):
            metric = next((m for m in AUDIT_METRICS if departs(recorded[m][day], without[m][day], margin)), None)
            if metric is None:
                continue
            baseline = peer_median(recorded[metric], same_weekday_peers(num_days))[day]
            rows.append(
                ExpectedRow(
                    record.kind,
                    DATA_QUALITY,
                    day,
                    metric,
                    record.segment.normalised(),
                    float(baseline),
                    float(recorded[metric][day]),
                    float(without[metric][day]) if repairable else None,
                )
            )
    return [row for row in rows if math.isfinite(row.baseline) and math.isfinite(row.observed)]


def audit_rows(world: WarehouseWorld, mix: AuditMix, counted: CountedSessions | None = None) -> list[ExpectedRow]:
    """Every row the world expects: its incidents' that depart past the margin (every baseline by the published
    rule: the audit publishes one for every row), and its defects'. `counted`: the world's counted sessions, when
    the caller has them."""
    counted = counted_sessions(world.log) if counted is None else counted
    incidents = [
        row
        for row in incident_rows(world, counted, change_points=False)
        if departs(row.observed, row.baseline, mix.margin)
    ]
    rows = incidents + defect_rows(world, mix.margin)
    return sorted(rows, key=lambda row: (row.day, row.metric, row.segment.label()))


def audit_truth(
    world: WarehouseWorld, mix: AuditMix, dates: tuple[str, ...], counted: CountedSessions, rows: list[ExpectedRow]
) -> GroundTruth:
    """The grader's truth of an audit world: its `rows` (audit_rows over its `counted` sessions, which its draw
    read already: world.kept_draw), as warehouse.truth.truth_of makes them."""
    return truth_of(world, rows, dates, counted, mix.repaired_values)
