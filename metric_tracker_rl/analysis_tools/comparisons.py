"""What the comparison tools share: one date against its baseline, and the hour-level checks behind funnel
breaks and impossible counts (the family generators read the same checks over every date)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from metric_tracker_rl.analysis_tools.arguments import DailyScopedDateArgs
from metric_tracker_rl.analysis_tools.registry import ToolError
from metric_tracker_rl.catalog.published import (
    MIN_HOURLY_DENOMINATOR,  # hours with fewer events at the earlier step are too noisy to judge
)
from metric_tracker_rl.world.daily_panel import (
    MetricPanel,
    nanmedian_last_axis,
    safe_ratio,
    same_weekday_peer_lists,
)
from metric_tracker_rl.world.public_episode import PublicEpisode

BROKEN_HOUR_RATIO = 0.3  # a step is broken in an hour converting below 30% of its median hour that day
BROKEN_HOUR_RULE = (
    f"an hour is broken when the step converts below {BROKEN_HOUR_RATIO:.0%} of the date's median "
    f"hourly rate for that step (hours with < {MIN_HOURLY_DENOMINATOR} events at the earlier step are "
    "not judged); broken_runs are [start_hour, end_hour): end_hour is exclusive, the first hour "
    "after the run"
)


def comparison(
    episode: PublicEpisode, panel: MetricPanel, entity_type: str, entity_name: str, date: str
) -> dict[str, Any]:
    """One entity on one date in `panel` (the episode's, or a segment's), with its baseline dates' values."""
    dates = episode.data.dates
    day = episode.data.date_index(date)
    k = panel.index(entity_type, entity_name)
    values = panel.entity_lists(k)[0]
    return {
        "date": date,
        "weekday": episode.data.weekdays[day],
        "entity_type": entity_type,
        "entity_name": entity_name,
        **panel.row(entity_type, entity_name, day),
        "baseline_dates": [
            {"date": dates[p], "value": values[p] if math.isfinite(values[p]) else None}
            for p in same_weekday_peer_lists(len(dates))[day]
        ],
        "robust_std": float(panel.spread[k]),
    }


def scoped_panel(episode: PublicEpisode, args: DailyScopedDateArgs) -> MetricPanel:
    """The daily numbers of the segment a day-level tool's call names, any dimension of the episode's included
    (a channel's or user type's are its own days, the sum of its leaves)."""
    try:
        return episode.segment_panel(args.segment())
    except ValueError as exc:
        raise ToolError(str(exc)) from None


def broken_step_hours(hourly: np.ndarray) -> np.ndarray:
    """(D, 24, steps) True where a step converts far below its median hour of the same date."""
    denominators = hourly[..., :-1].astype(float)
    rates = safe_ratio(hourly[..., 1:].astype(float), denominators)
    judged = denominators >= MIN_HOURLY_DENOMINATOR
    typical = nanmedian_last_axis(np.swapaxes(np.where(judged, rates, np.nan), -1, -2))[..., None, :]
    with np.errstate(invalid="ignore"):
        return judged & (rates < BROKEN_HOUR_RATIO * typical)


def impossible_hours(hourly: np.ndarray) -> np.ndarray:
    """(D, 24, steps) True where an event outnumbers the event before it in the funnel."""
    return hourly[..., 1:] > hourly[..., :-1]


def hour_runs(hours: list[int]) -> list[list[int]]:
    """Sorted hours as [start, end) runs of consecutive hours."""
    runs: list[list[int]] = []
    for hour in hours:
        if runs and runs[-1][1] == hour:
            runs[-1][1] = hour + 1
        else:
            runs.append([hour, hour + 1])
    return runs


@dataclass(frozen=True)
class HourFlags:
    """An hour-level check over every date: per-date per-step flag counts and the flagged hours."""

    counts: np.ndarray  # (steps, D) flagged hours per step and date
    hours: dict[tuple[int, int], list[int]]  # (day, step) -> flagged hours, for the flagged pairs only

    @classmethod
    def of(cls, flags: np.ndarray) -> HourFlags:
        """flags: (D, 24, steps) bool."""
        hours: dict[tuple[int, int], list[int]] = {}
        for day, step, hour in zip(*np.nonzero(flags.transpose(0, 2, 1)), strict=True):
            hours.setdefault((int(day), int(step)), []).append(int(hour))
        return cls(counts=flags.sum(axis=1).T, hours=hours)


def broken_hour_flags(episode: PublicEpisode) -> HourFlags:
    return HourFlags.of(broken_step_hours(episode.data.hourly))


def impossible_hour_flags(episode: PublicEpisode) -> HourFlags:
    return HourFlags.of(impossible_hours(episode.data.hourly))
