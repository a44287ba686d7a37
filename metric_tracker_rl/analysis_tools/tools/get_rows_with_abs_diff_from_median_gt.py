"""`get_rows_with_abs_diff_from_median_gt`: the scan of counts and rates whose distance from their baseline, in the
metric's own units, passes a threshold."""

from __future__ import annotations

from typing import Any

from metric_tracker_rl.analysis_tools.arguments import AbsDiffArgs
from metric_tracker_rl.analysis_tools.generators import deviation_rows, register_generator
from metric_tracker_rl.world.public_episode import PublicEpisode


@register_generator(
    "get_rows_with_abs_diff_from_median_gt",
    "Rows whose |delta| exceeds a threshold in the metric's units (0: every date).",
    AbsDiffArgs,
    {"metric_names": ["app_opens"], "threshold": 5000.0},
)
def get_rows_with_abs_diff_from_median_gt(episode: PublicEpisode, args: AbsDiffArgs) -> list[dict[str, Any]]:
    return deviation_rows(episode, args, "get_rows_with_abs_diff_from_median_gt", 0, "delta", args.threshold)
