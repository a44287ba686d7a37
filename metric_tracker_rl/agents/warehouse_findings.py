"""What the warehouse expert finds and reports: a finding (a date, a dashboard metric, what it is, a segment and
its values), the window every part of its procedure reads dates by, the cuboid arithmetic it decides by, the
statements it sends in parts that fit the query tool, and a finding as a report row."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from metric_tracker_rl.agents.expert_core.queries import readable
from metric_tracker_rl.agents.warehouse_scans import SPREAD
from metric_tracker_rl.agents.warehouse_sql import REVENUE_STEP, SEGMENT_COLUMNS
from metric_tracker_rl.catalog.families import EntityType
from metric_tracker_rl.catalog.published import COUNT_COLUMNS, FAMILY_ENTITY_TYPE, severity_for
from metric_tracker_rl.models import MetricSubmissionRow
from metric_tracker_rl.sql.sandbox import WAREHOUSE_MAX_SQL_CHARS
from metric_tracker_rl.world.metrics_layer import RATE_COLUMNS, STEP_SESSION_COLUMNS
from metric_tracker_rl.world.segments import Segment
from metric_tracker_rl.world.warehouse_brief import DEFECT_FAMILY

DATA_QUALITY = "data_quality"
REVENUE = "revenue_usd"
RATE_DROP, FUNNEL_BREAK, COUNT_DROP = "rate_drop_from_median", "funnel_break", "absolute_drop_in_event_count"
# A report names a count by its funnel column: the dashboard's sessions as app_opens, ...
COUNT_OF_DASHBOARD = dict(zip(STEP_SESSION_COLUMNS, COUNT_COLUMNS, strict=True))


@dataclass(frozen=True)
class Finding:
    """One reported row: date, dashboard metric, what it is (a family, or data_quality), segment, values."""

    date: str
    metric: str
    anomaly_type: str
    segment: Segment
    baseline: float = math.nan
    observed: float = math.nan
    kind: str = ""  # what the expert took it for (a defect or incident kind), for its own review
    z: float = 0.0  # how far the fall it was found by stood out (a release's pooled z)
    repaired: float = math.nan  # a defect's: the metric's value with it undone, where the procedure read one

    @property
    def step(self) -> int:
        """The metric's step: 0 for sessions, 1 to 4 for the rates, REVENUE_STEP for revenue_usd."""
        if self.metric == REVENUE:
            return REVENUE_STEP
        return 0 if self.metric == "sessions" else RATE_COLUMNS.index(self.metric) + 1


Rows = list[dict[str, Any]]
Statement = tuple[str, str]


class Window:
    """What every part of the procedure reads: the rules it applies, the window's dates and the context rows (the
    procedure, a dataclass, holds them as its fields)."""

    rules: frozenset[str]
    dates: list[str]
    context: Rows

    def day(self, date: str) -> int:
        """The window's index of `date`; a date outside the window (a recount on another clock reads the day
        before it) stands at the window's nearer end."""
        if date in self.dates:
            return self.dates.index(date)
        return 0 if date < self.dates[0] else len(self.dates) - 1

    def shift(self, date: str, days: int) -> str:
        return (dt.date.fromisoformat(date) + dt.timedelta(days=days)).isoformat()


def segment_of(row: dict[str, Any]) -> Segment:
    return Segment(*(row.get(name) for name in SEGMENT_COLUMNS)).normalised()


def overlaps(a: Segment, b: Segment) -> bool:
    """Two cuboids share leaves: no field they both name differs."""
    return all(x is None or y is None or x == y for x, y in zip(a.values(), b.values(), strict=True))


def widened(row: dict[str, Any]) -> Segment:
    """A run's cuboid, or its parent where the fall ripples through the rest of the parent (the scan's `wider`: the
    parent's value, which names its field)."""
    if row.get("wider") is None:
        return segment_of(row)
    return segment_of({name: value for name, value in row.items() if value == row["wider"]})


def within_shift(finding: Finding, shifts: list[Finding]) -> bool:
    """A payment failure on a date of a level shift of payments in an overlapping cuboid: that shift's date."""
    return finding.kind == "payment_failure" and any(
        s.date == finding.date and s.metric == finding.metric and overlaps(s.segment, finding.segment) for s in shifts
    )


def in_parts(
    name: str, asked: Sequence[tuple[Any, ...]], build: Callable[[Sequence[tuple[Any, ...]]], str]
) -> Generator[Statement, Rows, Rows]:
    """The rows of a statement over a list of rows asked for, sent in as few parts as keep each statement within
    the query tool's length (a long list, such as every date after a tracking deploy, takes two or more)."""
    rows: Rows = []
    start = 0
    while start < len(asked):
        end = len(asked)
        while end - start > 1 and len(sent_text(build(asked[start:end]))) > WAREHOUSE_MAX_SQL_CHARS:
            end = start + (end - start) // 2
        rows += yield (name, build(asked[start:end]))
        start = end
    return rows


def sent_text(sql: str) -> str:
    """A statement as the expert sends it: readable where that fits the warehouse's statement length."""
    return readable(sql, WAREHOUSE_MAX_SQL_CHARS)


def fits(sql: str) -> bool:
    """Whether a statement, as the expert sends it, is within the query tool's length."""
    return len(sent_text(sql)) <= WAREHOUSE_MAX_SQL_CHARS


def kept_by(segment: Segment, host: Segment) -> bool:
    """A concurrent incident's cuboid: it keeps one of its host's values (an app version aside) and agrees with it
    on every field both name."""
    fields = (
        (segment.platform, host.platform),
        (segment.country, host.country),
        (segment.channel, host.channel),
        (segment.user_type, host.user_type),
    )
    return any(a is not None and a == b for a, b in fields) and overlaps(segment, host)


def arm_segment(row: dict[str, Any]) -> Segment:
    """An experiment's arm from its context row (channel and user type as 'channel/user_type')."""
    channel = user_type = None
    for part in str(row.get("detail") or "").split("/"):
        if part in ("new", "returning"):
            user_type = part
        elif part:
            channel = part
    return Segment(row.get("platform"), row.get("country"), None, channel, user_type)


def pooled_z(row: dict[str, Any], length: int) -> float | None:
    """The pooled z of a context test's first `length` dates (None where it has fewer)."""
    lists = [numbers(row[name])[:length] for name in ("r", "e", "w")]
    if len(lists[0]) < length:
        return None
    residual, spread = sum(lists[0]), sum(lists[2])
    variance = spread + SPREAD**2 * sum(e * e for e in lists[1])  # each date's spread its own
    return residual / math.sqrt(variance) if variance > 0 else None


def numbers(cell: Any) -> list[float]:
    """A list cell as numbers (the SQL tool shows a list as its text)."""
    if isinstance(cell, list):
        return [float(x) for x in cell]
    return [float(x) for x in str(cell).strip("[]").split(",") if x.strip()]


def dedupe(found: Iterable[Finding]) -> list[Finding]:
    """One finding per date and metric (the first: the procedure finds the likelier ones first)."""
    seen: dict[tuple[str, str, bool], Finding] = {}
    for f in found:
        seen.setdefault((f.date, f.metric, f.anomaly_type == DATA_QUALITY), f)
    return sorted(seen.values(), key=lambda f: (f.date, f.metric))


def number_or_nan(value: Any) -> float:
    try:
        return float(value) if value is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


def shown(value: float, baseline: float) -> float:
    """A row's value to four decimals, but exact beside a baseline of zero: the delta's tolerance is a share of the
    baseline, so a rounded delta of a zero baseline (a revenue no purchase made before) misses it."""
    return value if baseline == 0 else round(value, 4)


def report_row(finding: Finding) -> MetricSubmissionRow:
    """A finding as a report row: a defect on data_quality under the data quality family, an incident on its
    family's entity type; a count named by its funnel column (sessions as app_opens); values and severity its own,
    and a defect's repaired value where it has one."""
    entity_type: EntityType
    if finding.anomaly_type == DATA_QUALITY:
        entity_type, family = "data_quality", DEFECT_FAMILY
    else:
        entity_type, family = FAMILY_ENTITY_TYPE[finding.anomaly_type], finding.anomaly_type
    baseline = 0.0 if math.isnan(finding.baseline) else finding.baseline
    observed = 0.0 if math.isnan(finding.observed) else finding.observed
    segment: dict[str, Any] = finding.segment.normalised().named()
    return MetricSubmissionRow(
        date=finding.date,
        entity_type=entity_type,
        entity_name=COUNT_OF_DASHBOARD.get(finding.metric, finding.metric),
        anomaly_type=family,
        detection_method="query",
        baseline_value=shown(baseline, baseline),
        observed_value=shown(observed, baseline),
        delta_value=shown(observed - baseline, baseline),
        severity=severity_for(entity_type, baseline, observed),
        repaired_value=shown(finding.repaired, finding.repaired) if math.isfinite(finding.repaired) else None,
        **segment,
    )
