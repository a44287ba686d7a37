"""`compare_count_to_median`: one event count on one date against its same-weekday baseline (a segment's, when the
call names one)."""

from __future__ import annotations

from typing import Any

from metric_tracker_rl.analysis_tools.arguments import DateCountArgs
from metric_tracker_rl.analysis_tools.comparisons import comparison, scoped_panel
from metric_tracker_rl.analysis_tools.registry import register_tool
from metric_tracker_rl.catalog.tiers import COUNTS
from metric_tracker_rl.world.public_episode import PublicEpisode


@register_tool(
    "compare_count_to_median",
    "One count on one date against its same-weekday baseline: confirms a count candidate.",
    DateCountArgs,
    reads=(COUNTS,),
    example={"date": "2026-03-10", "entity_name": "app_opens"},
)
def compare_count_to_median(episode: PublicEpisode, args: DateCountArgs) -> dict[str, Any]:
    return comparison(episode, scoped_panel(episode, args), "event_count", args.entity_name, args.date)
