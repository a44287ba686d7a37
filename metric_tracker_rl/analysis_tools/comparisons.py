"""Tools that compare one date with its baseline, and the hour-level checks behind funnel breaks and
impossible counts."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from metric_tracker_rl.analysis_tools.arguments import (
    DailyScopedDateArgs,
    DateCountArgs,
    DateMixArgs,
    DateRateArgs,
    ScopedDateArgs,
)
from metric_tracker_rl.analysis_tools.registry import ToolError, derived, register_tool
from metric_tracker_rl.spec.published import (
    COUNT_COLUMNS,
    ENTITY_VALUE_DEFINITIONS,
    FUNNEL_STEPS,
    MIN_HOURLY_DENOMINATOR,  # hours with fewer events at the earlier step are too noisy to judge
)
from metric_tracker_rl.world.daily_panel import (
    COLUMN_INDEX,
    MetricPanel,
    nanmedian_last_axis,
    safe_ratio,
    same_weekday_peer_lists,
)
from metric_tracker_rl.world.public_episode import PublicEpisode

BROKEN_HOUR_RATIO = 0.3  # a step is broken in an hour converting below 30% of its median hour that day
BROKEN_HOUR_RULE = (f"an hour is broken when the step converts below {BROKEN_HOUR_RATIO:.0%} of the date's median "
                    f"hourly rate for that step (hours with < {MIN_HOURLY_DENOMINATOR} events at the earlier step are "
                    "not judged); broken_runs are [start_hour, end_hour): end_hour is exclusive, the first hour "
                    "after the run")


def comparison(episode: PublicEpisode, panel: MetricPanel, entity_type: str, entity_name: str,
               date: str) -> dict[str, Any]:
    """One entity on one date in `panel` (the episode's, or a segment's), with its baseline dates' values."""
    dates = episode.data.dates
    day = episode.data.date_index(date)
    k = panel.index(entity_type, entity_name)
    values = panel.entity_lists(k)[0]
    return {
        "date": date, "weekday": episode.data.weekdays[day], "entity_type": entity_type, "entity_name": entity_name,
        **panel.row(entity_type, entity_name, day),
        "baseline_dates": [{"date": dates[p], "value": values[p] if math.isfinite(values[p]) else None}
                           for p in same_weekday_peer_lists(len(dates))[day]],
        "robust_std": float(panel.spread[k]),
    }


def scoped_panel(episode: PublicEpisode, args: DailyScopedDateArgs) -> MetricPanel:
    """The daily numbers of the segment a day-level tool's call names, any dimension of the episode's included
    (a channel's or user type's are its own days, the sum of its leaves)."""
    try:
        return episode.segment_panel(args.segment())
    except ValueError as exc:
        raise ToolError(str(exc)) from None


@register_tool("compare_rate_to_median", "One rate on one date against its same-weekday baseline: confirms a "
               "rate candidate.", DateRateArgs,
               example={"date": "2026-03-10", "entity_name": "app_open_to_order_placed"})
def compare_rate_to_median(episode: PublicEpisode, args: DateRateArgs) -> dict[str, Any]:
    return comparison(episode, scoped_panel(episode, args), "conversion_rate", args.entity_name, args.date)


@register_tool("compare_count_to_median", "One count on one date against its same-weekday baseline: confirms a "
               "count candidate.", DateCountArgs,
               example={"date": "2026-03-10", "entity_name": "app_opens"})
def compare_count_to_median(episode: PublicEpisode, args: DateCountArgs) -> dict[str, Any]:
    return comparison(episode, scoped_panel(episode, args), "event_count", args.entity_name, args.date)


@register_tool("compare_hourly_mix_to_baseline", "One event's hourly shares on one date against its day-type "
               "profile; observed_value is their distance.",
               DateMixArgs, example={"date": "2026-03-10", "entity_name": "app_opens"})
def compare_hourly_mix_to_baseline(episode: PublicEpisode, args: DateMixArgs) -> dict[str, Any]:
    day = episode.data.date_index(args.date)
    column = COLUMN_INDEX[args.entity_name]
    share = episode.panel.hourly_share[day, :, column].tolist()
    expected = episode.panel.hourly_baseline_share[day, :, column].tolist()
    hours = [{"hour": h, "share": share[h], "baseline_share": expected[h], "excess_share": share[h] - expected[h]}
             for h in range(len(share))]
    # Its values are a distance, not a daily count or rate: the result says what they mean where they are read.
    return {**comparison(episode, episode.panel, "hourly_mix", args.entity_name, args.date),
            "value": ENTITY_VALUE_DEFINITIONS["hourly_mix"], "hours": hours}


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


@register_tool("detect_funnel_break", f"Each step's hours under {BROKEN_HOUR_RATIO:.0%} of the date's median hour "
               f"(<{MIN_HOURLY_DENOMINATOR} arrivals: not judged): confirms a break.",
               ScopedDateArgs, example={"date": "2026-03-10"})
def detect_funnel_break(episode: PublicEpisode, args: ScopedDateArgs) -> dict[str, Any]:
    day = episode.data.date_index(args.date)
    broken = derived(episode, broken_hour_flags)
    steps = []
    for i, step in enumerate(FUNNEL_STEPS):
        hours = broken.hours.get((day, i), [])
        steps.append({"step": step, "broken_hours": len(hours),
                      "broken_runs": [{"start_hour": a, "end_hour": b} for a, b in hour_runs(hours)],
                      **episode.panel.row("funnel_step", step, day)})
    return {"date": args.date, "steps": steps, "rule": BROKEN_HOUR_RULE}


@register_tool("check_impossible_counts", "Hours of one date where an event outnumbers the previous one (double "
               "logging).", ScopedDateArgs,
               example={"date": "2026-03-10"})
def check_impossible_counts(episode: PublicEpisode, args: ScopedDateArgs) -> dict[str, Any]:
    day = episode.data.date_index(args.date)
    impossible = derived(episode, impossible_hour_flags)
    daily = episode.data.daily[day].tolist()
    pairs = []
    for i in range(len(COUNT_COLUMNS) - 1):
        pairs.append({"event": COUNT_COLUMNS[i + 1], "previous_event": COUNT_COLUMNS[i],
                      "impossible_hours": list(impossible.hours.get((day, i), [])),
                      "daily_event_count": daily[i + 1], "daily_previous_count": daily[i],
                      "daily_impossible": daily[i + 1] > daily[i]})
    return {"date": args.date, "pairs": pairs}
