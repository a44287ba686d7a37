"""`check_impossible_counts`: the hours of one date where an event outnumbers the one before it in the funnel (a
sign of double logging)."""

from __future__ import annotations

from typing import Any

from metric_tracker_rl.analysis_tools.arguments import ScopedDateArgs
from metric_tracker_rl.analysis_tools.comparisons import impossible_hour_flags
from metric_tracker_rl.analysis_tools.registry import derived, register_tool
from metric_tracker_rl.catalog.published import COUNT_COLUMNS
from metric_tracker_rl.catalog.tiers import COUNTS
from metric_tracker_rl.world.public_episode import PublicEpisode


@register_tool(
    "check_impossible_counts",
    "Hours of one date where an event outnumbers the previous one (double logging).",
    ScopedDateArgs,
    reads=(COUNTS,),
    example={"date": "2026-03-10"},
)
def check_impossible_counts(episode: PublicEpisode, args: ScopedDateArgs) -> dict[str, Any]:
    day = episode.data.date_index(args.date)
    impossible = derived(episode, impossible_hour_flags)
    daily = episode.data.daily[day].tolist()
    pairs = []
    for i in range(len(COUNT_COLUMNS) - 1):
        pairs.append(
            {
                "event": COUNT_COLUMNS[i + 1],
                "previous_event": COUNT_COLUMNS[i],
                "impossible_hours": list(impossible.hours.get((day, i), [])),
                "daily_event_count": daily[i + 1],
                "daily_previous_count": daily[i],
                "daily_impossible": daily[i + 1] > daily[i],
            }
        )
    return {"date": args.date, "pairs": pairs}
