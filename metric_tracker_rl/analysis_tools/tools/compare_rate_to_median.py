"""`compare_rate_to_median`: one conversion rate on one date against its same-weekday baseline (a segment's, when
the call names one)."""

from __future__ import annotations

from typing import Any

from metric_tracker_rl.analysis_tools.arguments import DateRateArgs
from metric_tracker_rl.analysis_tools.comparisons import comparison, scoped_panel
from metric_tracker_rl.analysis_tools.registry import register_tool
from metric_tracker_rl.catalog.tiers import COUNTS
from metric_tracker_rl.world.public_episode import PublicEpisode


@register_tool(
    "compare_rate_to_median",
    "One rate on one date against its same-weekday baseline: confirms a rate candidate.",
    DateRateArgs,
    reads=(COUNTS,),
    example={"date": "2026-03-10", "entity_name": "app_open_to_order_placed"},
)
def compare_rate_to_median(episode: PublicEpisode, args: DateRateArgs) -> dict[str, Any]:
    return comparison(episode, scoped_panel(episode, args), "conversion_rate", args.entity_name, args.date)
