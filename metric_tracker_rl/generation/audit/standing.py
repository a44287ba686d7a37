"""Whether each of an audit world's incident rows stands out in the data a model reads. The kinds size a change for
its segment's expected noise, but a sampled segment's realised days can leave it within their own spread; the audit
asks only for changes its data show, so a world with such a row is drawn again (world.py).

A row stands when its move from its usual value is beyond STANDING_SDS of its segment's day-to-day deviations, or
its run's is (its incident's rows on consecutive dates of one metric and segment: the sum of their standings over
the square root of their number). The usual value of a date is the median of the metric on its weekday's clean
dates within NEAR_DAYS (all of the window's where none is that near), a clean date being one no incident or defect
touches in a segment sharing cells with the row's; the deviations are each such clean date's own from its peers',
their spread the robust standard deviation. A rate is read as it is, a count on a log scale (a version's sessions
as their share of their platform's, which its rollout grows). A row of a change of some hours is also read in
them (the sessions whose app_open is in them), where it stands further than on its whole date.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from metric_tracker_rl.generation.episode import daily_series
from metric_tracker_rl.generation.warehouse.truth import ExpectedRow
from metric_tracker_rl.generation.warehouse.world import WarehouseWorld
from metric_tracker_rl.world.events import MICROS_PER_DAY, EventLog, day_start_micros, event_code
from metric_tracker_rl.world.metrics_layer import (
    RATE_COLUMNS,
    STEP_SESSION_COLUMNS,
    CountedSessions,
    counted_events,
    segment_sessions,
)
from metric_tracker_rl.world.segments import Segment, segments_meet

STANDING_SDS = 3.2  # a little past the 3 the findability check holds every row to, so the two never part on a row
NEAR_DAYS = 21  # the clean dates a date is compared with: those within three weeks (a version's traffic grows)
WHOLE_DAY = (0, 24)  # the hours of an incident of every hour
ROBUST_SD = 1.4826  # times the median absolute deviation: a normal spread's standard deviation


def faint_rows(world: WarehouseWorld, counted: CountedSessions, rows: Iterable[ExpectedRow]) -> list[ExpectedRow]:
    """The incident rows among `rows` that stand out neither on their own nor in their run (the module's rule)."""
    hours = {(i.kind, i.record.day): i.record.hours for i in world.incidents}
    judged = [row for row in rows if (row.kind, row.day) in hours]
    opened: list[np.ndarray] = []  # each counted session's hour, read once and only for a row of some hours
    standing = {row: _standing(world, counted, row, hours[(row.kind, row.day)], opened) for row in judged}
    faint = []
    for run in _runs(judged):
        pooled = sum(min(standing[row], 1e6) for row in run) / math.sqrt(len(run))
        faint += [row for row in run if standing[row] <= STANDING_SDS and (len(run) == 1 or pooled <= STANDING_SDS)]
    return faint


def _runs(rows: list[ExpectedRow]) -> list[list[ExpectedRow]]:
    """The rows grouped by kind, metric and segment into runs of consecutive dates."""
    runs: list[list[ExpectedRow]] = []
    last: dict[tuple[str, str, Segment], list[ExpectedRow]] = {}
    for row in sorted(rows, key=lambda r: r.day):
        key = (row.kind, row.metric, row.segment)
        run = last.get(key)
        if run is not None and row.day - run[-1].day == 1:
            run.append(row)
        else:
            last[key] = [row]
            runs.append(last[key])
    return runs


def _standing(
    world: WarehouseWorld,
    counted: CountedSessions,
    row: ExpectedRow,
    hours: tuple[int, int] | None,
    opened: list[np.ndarray],
) -> float:
    """The row's standing on its whole date or, for a change of some hours, in them where it stands further."""
    clean = _clean_days(world, row.segment)
    standing = _standing_in(_normalised(world, counted, row), clean, row.day)
    if hours is None or hours == WHOLE_DAY:
        return standing
    if not opened:
        opened.append(_open_hours(world.log))
    keep = counted.mask(world.log, row.segment) & (opened[0] >= hours[0]) & (opened[0] < hours[1])
    block = np.zeros((world.log.num_days, len(STEP_SESSION_COLUMNS)), dtype=np.int64)
    for step in range(len(STEP_SESSION_COLUMNS)):
        np.add.at(block[:, step], counted.day[keep], counted.reached[keep, step])
    return max(standing, _standing_in(_scaled(block, row.metric), clean, row.day))


def _standing_in(series: np.ndarray, clean: np.ndarray, day: int) -> float:
    usual = _peer_median(series, clean, day)
    own = [series[d] - _peer_median(series, clean, int(d)) for d in np.flatnonzero(clean) if abs(d - day) <= NEAR_DAYS]
    spread = np.array([x for x in own if math.isfinite(x)])
    if len(spread) <= 2 or not math.isfinite(usual):
        return 0.0  # nothing to read it against: it cannot be shown to stand
    sd = ROBUST_SD * float(np.median(np.abs(spread - np.median(spread))))
    gap = abs(float(series[day]) - usual)
    return gap / sd if sd > 0 else (math.inf if gap > 0 else 0.0)


def _open_hours(log: EventLog) -> np.ndarray:
    """(N,) each counted session's hour of its reporting date at its app_open, in counted_sessions' order."""
    events = log.events
    opens = np.flatnonzero(counted_events(log) & (events.name == event_code("app_open")))
    never = np.iinfo(np.int64).max
    first = np.full(len(log.sessions.user), never)
    np.minimum.at(first, events.session[opens], events.timestamp_us[opens])
    live = first[first < never]
    return ((live - day_start_micros(0)) % MICROS_PER_DAY) // (MICROS_PER_DAY // 24)


def _scaled(counts: np.ndarray, metric: str) -> np.ndarray:
    """A metric from (D, 5) counts: a rate as it is, a count of sessions on a log scale."""
    if metric in RATE_COLUMNS:
        return daily_series(counts, "conversion_rate", metric)[0]
    if metric not in STEP_SESSION_COLUMNS:
        raise ValueError(f"an incident's row names a rate or a count of sessions, not {metric!r}")
    return np.log1p(counts[:, STEP_SESSION_COLUMNS.index(metric)].astype(float))


def _normalised(world: WarehouseWorld, counted: CountedSessions, row: ExpectedRow) -> np.ndarray:
    """The row's metric over the window on the scale its spread is read on (the module's rule)."""
    counts = segment_sessions(world.log, counted, row.segment)
    if row.metric in RATE_COLUMNS or row.segment.app_version is None:
        return _scaled(counts, row.metric)
    series = counts[:, STEP_SESSION_COLUMNS.index(row.metric)].astype(float)
    platform = segment_sessions(world.log, counted, Segment(platform=row.segment.platform))[:, 0].astype(float)
    return np.log1p(np.where(platform > 0, series / np.maximum(platform, 1.0), np.nan))


def _clean_days(world: WarehouseWorld, segment: Segment) -> np.ndarray:
    clean = np.ones(world.log.num_days, dtype=bool)
    for incident in world.incidents:
        if segments_meet(incident.segment, segment):
            clean[incident.record.day] = False
    for defect in world.defects:
        if segments_meet(defect.segment, segment):
            clean[[d for d in defect.days if 0 <= d < len(clean)]] = False
    return clean


def _peer_median(series: np.ndarray, clean: np.ndarray, day: int) -> float:
    """The median over the clean dates of `day`'s weekday within NEAR_DAYS of it, `day` left out (all of the
    window's where none is that near); NaN where it has none."""
    peers = [d for d in range(day % 7, len(series), 7) if d != day and clean[d] and math.isfinite(series[d])]
    near = [d for d in peers if abs(d - day) <= NEAR_DAYS]
    return float(np.median(series[near or peers])) if peers else math.nan
