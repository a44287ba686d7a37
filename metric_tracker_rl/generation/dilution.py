"""How diluted a cuboid incident is in the coarser views: whether any one-dimension breakdown shows it.

The test (whether an incident of two or three dimensions stands out in some one-dimension breakdown): for each date
of an incident, every value of every dimension (app_version per platform, as compare_segments lists them) gets the
z-score of the incident's metric on that date against the value's same-weekday median: z = (observed - baseline) /
spread, where spread is the robust spread compare_segments shows (1.4826 x the median absolute deviation from the
baseline over the window), floored at the binomial standard deviation of a rate (sqrt(p (1 - p) / n) at the baseline
rate p over the date's n arrivals) or the Poisson one of a count (sqrt(baseline)). An incident stands out when some
value on some of its dates reaches |z| >= STANDS_OUT. Only metrics with a daily series count (conversion rates and
event counts): hourly mixes and data-quality counts are cell-level kinds of one dimension. An outage's or a payment
failure's evidence is hourly, which this daily test does not read: the benchmark shows the whole-day kinds
(rate_drop_from_median) apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from metric_tracker_rl.catalog.plain_types import MetricSubmissionRow
from metric_tracker_rl.catalog.published import CONVERSION_BY_NAME, COUNT_COLUMNS
from metric_tracker_rl.generation.anomalies import InjectionRecord
from metric_tracker_rl.generation.episode import Episode, daily_series
from metric_tracker_rl.world.daily_panel import MAD_TO_SIGMA, nanmedian_last_axis
from metric_tracker_rl.world.funnel import window_calendar
from metric_tracker_rl.world.segments import SEGMENT_FIELDS, Segment, SegmentedData

STANDS_OUT = 4.0
DAILY_TYPES = ("conversion_rate", "funnel_step", "event_count")


@dataclass(frozen=True)
class CuboidIncident:
    """One incident of an episode's truth: its rows and records (one per date) and the cuboid they name."""

    segment: Segment
    rows: tuple[MetricSubmissionRow, ...]
    records: tuple[InjectionRecord, ...]

    @property
    def depth(self) -> int:
        named = self.segment.named()
        return len(named) - ("app_version" in named and "platform" in named)


def cuboid_incidents(episode: Episode) -> list[CuboidIncident]:
    """The episode's incidents, a multi-date one once (its records' `continues` chain)."""
    groups: dict[tuple[int, str, Segment], list[tuple[MetricSubmissionRow, InjectionRecord]]] = {}
    for record, row in zip(episode.truth.injections, episode.truth.expected_rows, strict=True):
        segment = Segment(**{name: getattr(row, name, None) for name in SEGMENT_FIELDS})
        first = record.day if record.continues is None else record.continues
        groups.setdefault((first, row.entity_name, segment), []).append((row, record))
    return [
        CuboidIncident(segment, tuple(row for row, _ in dates), tuple(record for _, record in dates))
        for (_, _, segment), dates in groups.items()
    ]


def one_dimension_views(data: SegmentedData) -> list[Segment]:
    """Every value of every dimension, as compare_segments lists them (a version with its platform)."""
    views = []
    for name, values in data.dimension_values().items():
        if name == "app_version":
            views += [
                Segment(p, None, v) for p in data.layout.values_of("platform") for v in data.layout.platform_versions(p)
            ]
        else:
            views += [Segment(**{name: value}) for value in values]
    return views


def largest_one_dimension_z(data: SegmentedData, row: MetricSubmissionRow, views: Iterable[Segment]) -> float:
    """The largest |z| of the row's metric on its date over the one-dimension views (see the module's test)."""
    day = window_calendar(data.num_days).iso_dates.index(row.date)
    largest = 0.0
    for view in views:
        daily = data.segment_daily(view)
        values, baseline = daily_series(daily, row.entity_type, row.entity_name)
        observed, base = values[day], baseline[day]
        if not (np.isfinite(observed) and np.isfinite(base)):
            continue
        spread = MAD_TO_SIGMA * float(nanmedian_last_axis(np.abs(values - baseline)))
        if row.entity_type == "event_count":
            floor = np.sqrt(max(base, 1.0))
        else:
            trials = daily[day, COUNT_COLUMNS.index(CONVERSION_BY_NAME[row.entity_name].denominator)]
            floor = np.sqrt(base * (1.0 - base) / max(int(trials), 1))
        largest = max(largest, abs(observed - base) / max(spread, floor, 1e-12))
    return largest


def holds_part_of(view: Segment, incident: Segment) -> bool:
    """Whether a one-dimension view shares traffic with the incident's cuboid (it names no field the cuboid gives
    another value)."""
    named = incident.named()
    return all(named.get(field, value) == value for field, value in view.named().items())


def stands_out(data: SegmentedData, incident: CuboidIncident) -> bool:
    """Whether some one-dimension view that holds part of the incident shows it on one of its dates (|z| >=
    STANDS_OUT). A version's app opens follow its rollout from date to date, so its views are read for rates only
    (as the short segment rule reads them)."""
    views = [view for view in one_dimension_views(data) if holds_part_of(view, incident.segment)]
    count_views = [view for view in views if view.app_version is None]
    return any(
        largest_one_dimension_z(data, row, views if row.entity_type != "event_count" else count_views) >= STANDS_OUT
        for row in incident.rows
    )


def dilution_by_depth(episodes: Iterable[Episode]) -> list[tuple[int, bool, str]]:
    """(depth, diluted, family) for each of the episodes' incidents with a daily metric: diluted when it stands
    out in no one-dimension view."""
    out = []
    for episode in episodes:
        data = episode.public.segments
        assert data is not None, "dilution is measured on a segmented episode"
        for incident in cuboid_incidents(episode):
            if incident.rows[0].entity_type in DAILY_TYPES:
                out.append((incident.depth, not stands_out(data, incident), incident.rows[0].anomaly_type))
    return out
