"""The rows a warehouse world expects, with their values by the metrics layer.

- A business incident: its record's date, metric and segment; observed and baseline read from the metrics layer's
  counted sessions (what the dashboard sums; a segment naming channel or user type by the layer's definitions of
  them) by the published baseline rule, as the other segmented tiers read theirs from their counts: the segment's
  step sessions stand where the five counts stand (sessions for app_opens, ...).
- A data defect: one row per date, on the dashboard metric it corrupts; observed the dashboard's, baseline the
  metrics layer's over the events without the defect (world.DefectValues).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from metric_tracker_rl.catalog.families import PUBLISHED_FAMILIES, EntityType
from metric_tracker_rl.catalog.plain_types import MetricSubmissionRow
from metric_tracker_rl.catalog.published import COUNT_COLUMNS, FAMILY_ENTITY_TYPE, row_key, severity_for
from metric_tracker_rl.generation.anomalies.base import ChangePointRecord, InjectionRecord
from metric_tracker_rl.generation.episode import (
    DistractorRecord,
    GroundTruth,
    change_point_baseline,
    daily_series,
)
from metric_tracker_rl.generation.warehouse.world import WarehouseWorld
from metric_tracker_rl.world.metrics_layer import (
    STEP_SESSION_COLUMNS,
    CountedSessions,
    counted_sessions,
    segment_sessions,
)
from metric_tracker_rl.world.segments import CELL_FIELDS, Segment
from metric_tracker_rl.world.warehouse_brief import DEFECT_FAMILY

# A count of the funnel as the dashboard names it: sessions reaching that step; and back, as a report names it.
DASHBOARD_COUNT: dict[str, str] = dict(zip(COUNT_COLUMNS, STEP_SESSION_COLUMNS, strict=True))
COUNT_OF_DASHBOARD: dict[str, str] = {column: count for count, column in DASHBOARD_COUNT.items()}
DATA_QUALITY = "data_quality"


@dataclass(frozen=True)
class ExpectedRow:
    """One row the world expects: what it is (`kind`: an incident kind or a defect kind; `family`: the incident's
    family, or data_quality), its date, the dashboard metric, the segment, and the metrics layer's values; a
    defect's row of the audit also the value its defect hid (`repaired`: the metric over the events as they would
    have been recorded without it), where the recorded events can tell it (None elsewhere)."""

    kind: str
    family: str
    day: int
    metric: str
    segment: Segment
    baseline: float
    observed: float
    repaired: float | None = None

    @property
    def delta(self) -> float:
        return self.observed - self.baseline

    @property
    def entity(self) -> tuple[EntityType, str]:
        """The row's entity as a report names it: a count by its funnel column (sessions as app_opens, ...), a rate
        by its name; a defect's on data_quality, an incident's on its family's entity type."""
        entity_type: EntityType = "data_quality" if self.family == DATA_QUALITY else FAMILY_ENTITY_TYPE[self.family]
        return entity_type, COUNT_OF_DASHBOARD.get(self.metric, self.metric)

    def report_row(self, dates: tuple[str, ...], repaired_values: bool = False) -> MetricSubmissionRow:
        """The row a perfect report holds for it (the grader's expected row): a defect's names the data quality
        family, every row its family's own detection method and the severity its values give; with
        `repaired_values` (a tier that asks them) a defect's row holds its repaired value where it has one."""
        entity_type, entity_name = self.entity
        repaired = self.repaired if repaired_values and self.family == DATA_QUALITY else None
        family = DEFECT_FAMILY if self.family == DATA_QUALITY else self.family
        segment = self.segment.normalised()
        scope: dict[str, Any] = {} if segment.is_aggregate else {**dict.fromkeys(CELL_FIELDS), **segment.named()}
        return MetricSubmissionRow(
            date=dates[self.day],
            entity_type=entity_type,
            entity_name=entity_name,
            anomaly_type=family,
            detection_method=PUBLISHED_FAMILIES[family].generator,
            baseline_value=self.baseline,
            observed_value=self.observed,
            delta_value=self.delta,
            severity=severity_for(entity_type, self.baseline, self.observed),
            repaired_value=repaired,
            **scope,
        )


def expected_rows(world: WarehouseWorld, counted: CountedSessions | None = None) -> list[ExpectedRow]:
    """The incidents' rows and the defects' rows, by date; a date whose metric has no value in its segment (a rate
    over no sessions: in a sample, a new version's first date may have none) is no row, as the brief says.
    `counted`: the world's counted sessions, when the caller has them."""
    counted = counted_sessions(world.log) if counted is None else counted
    rows = incident_rows(world, counted)
    for defect, values in zip(world.defects, world.defect_values, strict=True):
        rows += [
            ExpectedRow(
                defect.kind, DATA_QUALITY, value.day, defect.metric, defect.segment, value.baseline, value.observed
            )
            for value in values
        ]
    rows = [row for row in rows if math.isfinite(row.baseline) and math.isfinite(row.observed)]
    return sorted(rows, key=lambda row: (row.day, row.metric, row.segment.label()))


def incident_rows(world: WarehouseWorld, counted: CountedSessions, change_points: bool = True) -> list[ExpectedRow]:
    """Each incident date's row, its values the metrics layer's; a lasting incident's baseline read from before its
    change point where `change_points` (else by the same weekday's other dates, as every other row's)."""
    return [
        _incident_row(world, counted, incident.kind, incident.record, incident.segment, change_points)
        for incident in world.incidents
    ]


def _incident_row(
    world: WarehouseWorld,
    counted: CountedSessions,
    kind: str,
    record: InjectionRecord,
    segment: Segment,
    change_points: bool,
) -> ExpectedRow:
    counts = segment_sessions(world.log, counted, segment)
    values, baselines = daily_series(counts, record.entity_type, record.entity_name)
    baseline = float(baselines[record.day])
    if change_points and isinstance(record, ChangePointRecord):
        baseline = change_point_baseline(values, record.day, record.change_point)
    metric = DASHBOARD_COUNT.get(record.entity_name, record.entity_name)
    return ExpectedRow(
        kind, record.family, record.day, metric, segment.normalised(), baseline, float(values[record.day])
    )


def warehouse_truth(world: WarehouseWorld, dates: tuple[str, ...]) -> GroundTruth:
    """The grader's truth of a warehouse world: its expected rows (truth_of)."""
    counted = counted_sessions(world.log)
    return truth_of(world, expected_rows(world, counted), dates, counted)


def truth_of(
    world: WarehouseWorld,
    expected: list[ExpectedRow],
    dates: tuple[str, ...],
    counted: CountedSessions,
    repaired_values: bool = False,
) -> GroundTruth:
    """The grader's truth of a raw-event world that expects `expected`: those rows as report rows (a defect's with
    its repaired value where the tier asks them: `repaired_values`), the side-effect keys of its incidents (less any
    expected key), its benign changes (look-alikes and bursts, for the record), and T of the overlap credit (each
    leaf's counted sessions by date)."""
    rows = [row.report_row(dates, repaired_values) for row in expected]
    keys = {row_key(r.date, r.entity_type, r.entity_name) for r in rows}
    neutral = {row_key(dates[i.record.day], t, n) for i in world.incidents for t, n in i.record.neutral} - keys
    benign = [DistractorRecord(f.kind, f.day, f"{f.segment.label()}: {f.description}") for f in world.fluctuations]
    benign += [DistractorRecord(b.kind, b.day, f"{b.segment.label()}: {b.description}") for b in world.benign]
    return GroundTruth(
        tuple(rows),
        frozenset(neutral),
        tuple(i.record for i in world.incidents),
        (),
        tuple(sorted(benign, key=lambda record: record.day)),
        leaf_sessions(world, counted),
    )


def leaf_sessions(
    world: WarehouseWorld, counted: CountedSessions | None = None
) -> tuple[np.ndarray, Callable[[Segment], np.ndarray]]:
    """(L, D) the metrics layer's counted sessions of each leaf (one value of every dimension a row may name) by
    date, over the events as recorded, and the (L,) mask of the leaves inside a segment."""
    log = world.log
    counted = counted_sessions(log) if counted is None else counted
    users, sessions = log.users, log.sessions
    fields = {
        "platform": (counted.platform, users.platform.values),
        "app_version": (counted.version, sessions.app_version.values),
        "country": (counted.country, users.country.values),
        "channel": (counted.channel, users.channel.values),
        "user_type": (np.where(counted.new, 0, 1), ("new", "returning")),
    }
    codes = np.stack([np.asarray(code, dtype=np.int64) for code, _ in fields.values()], axis=1)
    leaves, leaf = np.unique(codes, axis=0, return_inverse=True)
    opens = np.zeros((len(leaves), log.num_days))
    np.add.at(opens, (leaf.reshape(-1), counted.day), 1.0)
    labels = {name: (leaves[:, i], values) for i, (name, (_, values)) in enumerate(fields.items())}

    def leaves_of(segment: Segment) -> np.ndarray:
        keep = np.ones(len(leaves), dtype=bool)
        for name, value in segment.normalised().named().items():
            column, values = labels[name]
            keep &= column == (values.index(value) if value in values else -1)
        return keep

    return opens, leaves_of
