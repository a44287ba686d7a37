"""`get_metric_median`: each selected metric's median over the window, overall and per weekday."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np

from metric_tracker_rl.analysis_tools.arguments import AnyMetricArgs
from metric_tracker_rl.analysis_tools.inspection import metric_series
from metric_tracker_rl.analysis_tools.registry import REFERENCE_API, finite_or_none, register_tool
from metric_tracker_rl.catalog.tiers import COUNTS
from metric_tracker_rl.world.daily_panel import nanmedian_last_axis
from metric_tracker_rl.world.public_episode import PublicEpisode


@lru_cache(maxsize=8)
def _weekday_positions(weekdays: tuple[str, ...]) -> tuple[tuple[str, ...], np.ndarray]:
    """The weekdays in window order and, per weekday, the positions of its dates padded with -1 (read-only)."""
    names = tuple(dict.fromkeys(weekdays))
    groups = [[d for d, w in enumerate(weekdays) if w == name] for name in names]
    width = max(len(group) for group in groups)
    positions = np.array([group + [-1] * (width - len(group)) for group in groups])
    positions.setflags(write=False)
    return names, positions


@register_tool(
    "get_metric_median",
    "Median of metrics over the window, overall and per weekday.",
    AnyMetricArgs,
    example={"metric_name": "app_opens"},
    reads=(COUNTS,),
    kept_for=f"{REFERENCE_API} and the debugger; get_metric_std_dev_from_median gives a model the same medians",
)
def get_metric_median(episode: PublicEpisode, args: AnyMetricArgs) -> dict[str, Any]:
    weekdays, padded = _weekday_positions(episode.data.weekdays)
    metrics = args.selected()
    series = np.vstack([metric_series(episode, metric)[1] for metric in metrics])  # (M, D)
    # One sort for every metric and weekday: padding is NaN, which the median skips like a missing value.
    by_weekday = nanmedian_last_axis(np.where(padded >= 0, series[:, padded], np.nan)).tolist()  # (M, weekdays)
    overall = nanmedian_last_axis(series).tolist()
    return {
        "metrics": [
            {
                "metric": metric,
                "median": finite_or_none(median),
                "median_by_weekday": {
                    w: m if math.isfinite(m) else None for w, m in zip(weekdays, medians, strict=True)
                },
            }
            for metric, median, medians in zip(metrics, overall, by_weekday, strict=True)
        ]
    }
