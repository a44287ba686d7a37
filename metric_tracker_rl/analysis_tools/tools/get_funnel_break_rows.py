"""`get_funnel_break_rows`: the funnel-break family's scan, steps that sink on a date with broken hours behind
them."""

from __future__ import annotations

from typing import Any

from metric_tracker_rl.analysis_tools.arguments import FamilyThreshold
from metric_tracker_rl.analysis_tools.comparisons import broken_hour_flags
from metric_tracker_rl.analysis_tools.generators import (
    FAMILY_CONSTANTS,
    MIN_FLAGGED_HOURS,
    flagged_rows,
    register_generator,
    robust_z,
)
from metric_tracker_rl.analysis_tools.registry import derived
from metric_tracker_rl.catalog.published import FUNNEL_STEPS
from metric_tracker_rl.world.public_episode import PublicEpisode


@register_generator(
    "get_funnel_break_rows",
    "Candidate funnel breaks: steps under -threshold z in "
    f"{MIN_FLAGGED_HOURS}+ hours (bot opens sink app_open_to_menu_open too).",
    FamilyThreshold,
    {"threshold_multiplier": 3.0},
    constant_columns=FAMILY_CONSTANTS,
)
def get_funnel_break_rows(episode: PublicEpisode, args: FamilyThreshold) -> list[dict[str, Any]]:
    broken = derived(episode, broken_hour_flags).counts  # (steps, D)
    sinks = robust_z(episode, "funnel_step", FUNNEL_STEPS) < -args.threshold_multiplier
    return flagged_rows(
        episode,
        "funnel_step",
        FUNNEL_STEPS,
        (broken >= MIN_FLAGGED_HOURS) & sinks,
        "funnel_break",
        "get_funnel_break_rows",
    )
