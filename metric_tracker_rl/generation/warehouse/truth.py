"""The rows a warehouse world expects, with their values by the metrics layer.

- A business incident: its record's date, metric and segment; observed and baseline read from the metrics layer's
  counted sessions (what the dashboard sums; a segment naming channel or user type by the layer's definitions of
  them) by the published baseline rule, as the other segmented tiers read theirs from their counts: the segment's
  step sessions stand where the five counts stand (sessions for app_opens, ...).
- A data defect: one row per date, on the dashboard metric it corrupts; observed the dashboard's, baseline the
  metrics layer's over the events without the defect (world.DefectValues).
"""

from __future__ import annotations

from dataclasses import dataclass

from metric_tracker_rl.generation.anomalies.base import ChangePointRecord, InjectionRecord
from metric_tracker_rl.generation.episode import change_point_baseline, daily_series
from metric_tracker_rl.generation.warehouse.world import WarehouseWorld
from metric_tracker_rl.spec.published import COUNT_COLUMNS
from metric_tracker_rl.world.metrics_layer import (
    STEP_SESSION_COLUMNS,
    CountedSessions,
    counted_sessions,
    segment_sessions,
)
from metric_tracker_rl.world.segments import Segment

# A count of the funnel as the dashboard names it: sessions reaching that step.
DASHBOARD_COUNT: dict[str, str] = dict(zip(COUNT_COLUMNS, STEP_SESSION_COLUMNS, strict=True))
DATA_QUALITY = "data_quality"


@dataclass(frozen=True)
class ExpectedRow:
    """One row the world expects: what it is (`kind`: an incident kind or a defect kind; `family`: the incident's
    family, or data_quality), its date, the dashboard metric, the segment, and the metrics layer's values."""

    kind: str
    family: str
    day: int
    metric: str
    segment: Segment
    baseline: float
    observed: float

    @property
    def delta(self) -> float:
        return self.observed - self.baseline


def expected_rows(world: WarehouseWorld) -> list[ExpectedRow]:
    """The incidents' rows (those of dashboard segments) and the defects' rows, by date."""
    counted = counted_sessions(world.log)
    rows = [_incident_row(world, counted, incident.kind, incident.record, incident.segment)
            for incident in world.incidents]
    for defect, values in zip(world.defects, world.defect_values, strict=True):
        rows += [ExpectedRow(defect.kind, DATA_QUALITY, value.day, defect.metric, defect.segment, value.baseline,
                             value.observed) for value in values]
    return sorted(rows, key=lambda row: (row.day, row.metric, row.segment.label()))


def _incident_row(world: WarehouseWorld, counted: CountedSessions, kind: str, record: InjectionRecord,
                  segment: Segment) -> ExpectedRow:
    counts = segment_sessions(world.log, counted, segment)
    values, baselines = daily_series(counts, record.entity_type, record.entity_name)
    baseline = float(baselines[record.day])
    if isinstance(record, ChangePointRecord):
        baseline = change_point_baseline(values, record.day, record.change_point)
    metric = DASHBOARD_COUNT.get(record.entity_name, record.entity_name)
    return ExpectedRow(kind, record.family, record.day, metric, segment.normalised(), baseline,
                       float(values[record.day]))
