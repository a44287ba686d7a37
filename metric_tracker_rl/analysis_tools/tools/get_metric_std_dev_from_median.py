"""`get_metric_std_dev_from_median`: each selected metric's median and robust spread, the unit of its z-scores."""

from __future__ import annotations

from typing import Any

import numpy as np

from metric_tracker_rl.analysis_tools.arguments import AnyMetricArgs
from metric_tracker_rl.analysis_tools.inspection import metric_series
from metric_tracker_rl.analysis_tools.registry import finite_or_none, register_tool
from metric_tracker_rl.catalog.tiers import COUNTS
from metric_tracker_rl.world.public_episode import PublicEpisode


@register_tool(
    "get_metric_std_dev_from_median",
    "Each metric's median and robust spread (the z-score unit): how large a normal move is.",
    AnyMetricArgs,
    reads=(COUNTS,),
    example={"metric_names": ["app_open_to_order_placed"]},
)
def get_metric_std_dev_from_median(episode: PublicEpisode, args: AnyMetricArgs) -> dict[str, Any]:
    out = []
    for metric in args.selected():
        _, values, k = metric_series(episode, metric)
        median = float(np.nanmedian(values))
        out.append(
            {
                "metric": metric,
                "median": finite_or_none(median),
                "robust_std_from_baseline": finite_or_none(episode.panel.spread[k]),
                "std_dev_from_median": finite_or_none(np.sqrt(np.nanmean((values - median) ** 2))),
            }
        )
    return {"metrics": out}
