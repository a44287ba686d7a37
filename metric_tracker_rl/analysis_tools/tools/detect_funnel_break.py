"""`detect_funnel_break`: each funnel step's broken hours on one date, as runs of hours."""

from __future__ import annotations

from typing import Any

from metric_tracker_rl.analysis_tools.arguments import ScopedDateArgs
from metric_tracker_rl.analysis_tools.comparisons import (
    BROKEN_HOUR_RATIO,
    BROKEN_HOUR_RULE,
    broken_hour_flags,
    hour_runs,
)
from metric_tracker_rl.analysis_tools.registry import derived, register_tool
from metric_tracker_rl.catalog.published import FUNNEL_STEPS, MIN_HOURLY_DENOMINATOR
from metric_tracker_rl.catalog.tiers import COUNTS
from metric_tracker_rl.world.public_episode import PublicEpisode


@register_tool(
    "detect_funnel_break",
    f"Each step's hours under {BROKEN_HOUR_RATIO:.0%} of the date's median hour "
    f"(<{MIN_HOURLY_DENOMINATOR} arrivals: not judged): confirms a break.",
    ScopedDateArgs,
    reads=(COUNTS,),
    example={"date": "2026-03-10"},
)
def detect_funnel_break(episode: PublicEpisode, args: ScopedDateArgs) -> dict[str, Any]:
    day = episode.data.date_index(args.date)
    broken = derived(episode, broken_hour_flags)
    steps = []
    for i, step in enumerate(FUNNEL_STEPS):
        hours = broken.hours.get((day, i), [])
        steps.append(
            {
                "step": step,
                "broken_hours": len(hours),
                "broken_runs": [{"start_hour": a, "end_hour": b} for a, b in hour_runs(hours)],
                **episode.panel.row("funnel_step", step, day),
            }
        )
    return {"date": args.date, "steps": steps, "rule": BROKEN_HOUR_RULE}
