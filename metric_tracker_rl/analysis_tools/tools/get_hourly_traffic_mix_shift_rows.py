"""`get_hourly_traffic_mix_shift_rows`: the hourly-mix family's scan, events whose hours moved away from their
usual ones."""

from __future__ import annotations

from typing import Any

from metric_tracker_rl.analysis_tools.arguments import FamilyThreshold
from metric_tracker_rl.analysis_tools.generators import FAMILY_CONSTANTS, flagged_rows, register_generator, robust_z
from metric_tracker_rl.catalog.published import COUNT_COLUMNS
from metric_tracker_rl.world.public_episode import PublicEpisode


@register_generator(
    "get_hourly_traffic_mix_shift_rows",
    "Candidate hourly-mix shifts: events whose distance from their usual hours rose beyond the z threshold.",
    FamilyThreshold,
    {"threshold_multiplier": 3.0},
    constant_columns=FAMILY_CONSTANTS,
)
def get_hourly_traffic_mix_shift_rows(episode: PublicEpisode, args: FamilyThreshold) -> list[dict[str, Any]]:
    passes = robust_z(episode, "hourly_mix", COUNT_COLUMNS) > args.threshold_multiplier
    return flagged_rows(
        episode, "hourly_mix", COUNT_COLUMNS, passes, "hourly_traffic_mix_shift", "get_hourly_traffic_mix_shift_rows"
    )
