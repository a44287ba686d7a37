"""`get_absolute_drop_in_event_count_rows`: the robust-z scan of event counts below the negative threshold, typed as
count drops (its family's detection method)."""

from __future__ import annotations

from metric_tracker_rl.analysis_tools.arguments import CountThreshold
from metric_tracker_rl.analysis_tools.generators import DIRECTIONAL_SCAN, register_deviation_generator

register_deviation_generator(
    "get_absolute_drop_in_event_count_rows",
    "Candidate count-drop rows: event counts whose robust z-score is below -threshold_multiplier.",
    CountThreshold,
    -1,
    kept_for=DIRECTIONAL_SCAN,
)
