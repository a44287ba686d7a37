"""`get_instrumentation_data_quality_issue_rows`: the data-quality family's scan, counts that rise beyond their
baseline with impossible hours behind them."""

from __future__ import annotations

from typing import Any

from metric_tracker_rl.analysis_tools.arguments import FamilyThreshold
from metric_tracker_rl.analysis_tools.comparisons import impossible_hour_flags
from metric_tracker_rl.analysis_tools.generators import (
    FAMILY_CONSTANTS,
    MIN_FLAGGED_HOURS,
    flagged_rows,
    register_generator,
    robust_z,
)
from metric_tracker_rl.analysis_tools.registry import derived
from metric_tracker_rl.catalog.published import COUNT_COLUMNS, ENTITY_NAMES
from metric_tracker_rl.world.public_episode import PublicEpisode


@register_generator(
    "get_instrumentation_data_quality_issue_rows",
    "Candidate data-quality issues: events over the "
    f"previous one in {MIN_FLAGGED_HOURS}+ hours, count beyond the z threshold.",
    FamilyThreshold,
    {"threshold_multiplier": 3.0},
    constant_columns=FAMILY_CONSTANTS,
)
def get_instrumentation_data_quality_issue_rows(episode: PublicEpisode, args: FamilyThreshold) -> list[dict[str, Any]]:
    names = ENTITY_NAMES["data_quality"]
    flags = derived(episode, impossible_hour_flags).counts  # (steps, D), step i -> event i + 1
    impossible = flags[[COUNT_COLUMNS.index(name) - 1 for name in names]]
    passes = (impossible >= MIN_FLAGGED_HOURS) & (robust_z(episode, "data_quality", names) > args.threshold_multiplier)
    return flagged_rows(
        episode,
        "data_quality",
        names,
        passes,
        "instrumentation_data_quality_issue",
        "get_instrumentation_data_quality_issue_rows",
    )
