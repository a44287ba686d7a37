"""`get_median_filter_rows`: the robust-z scan of counts and rates either way, each row typed by its direction."""

from __future__ import annotations

from metric_tracker_rl.analysis_tools.arguments import AnyMetricThreshold
from metric_tracker_rl.analysis_tools.generators import register_deviation_generator

register_deviation_generator(
    "get_median_filter_rows",
    "Candidate count and rate rows beyond the robust-z threshold, either way.",
    AnyMetricThreshold,
    0,
)
