"""`compare_hourly_mix_to_baseline`: how far one event's hourly shares on a date are from its day type's usual
hours, hour by hour."""

from __future__ import annotations

from typing import Any

from metric_tracker_rl.analysis_tools.arguments import DateMixArgs
from metric_tracker_rl.analysis_tools.comparisons import comparison
from metric_tracker_rl.analysis_tools.registry import register_tool
from metric_tracker_rl.catalog.published import ENTITY_VALUE_DEFINITIONS
from metric_tracker_rl.catalog.tiers import COUNTS
from metric_tracker_rl.world.daily_panel import COLUMN_INDEX
from metric_tracker_rl.world.public_episode import PublicEpisode


@register_tool(
    "compare_hourly_mix_to_baseline",
    "One event's hourly shares on one date against its day-type profile; observed_value is their distance.",
    DateMixArgs,
    reads=(COUNTS,),
    example={"date": "2026-03-10", "entity_name": "app_opens"},
)
def compare_hourly_mix_to_baseline(episode: PublicEpisode, args: DateMixArgs) -> dict[str, Any]:
    day = episode.data.date_index(args.date)
    column = COLUMN_INDEX[args.entity_name]
    share = episode.panel.hourly_share[day, :, column].tolist()
    expected = episode.panel.hourly_baseline_share[day, :, column].tolist()
    hours = [
        {"hour": h, "share": share[h], "baseline_share": expected[h], "excess_share": share[h] - expected[h]}
        for h in range(len(share))
    ]
    # Its values are a distance, not a daily count or rate: the result says what they mean where they are read.
    return {
        **comparison(episode, episode.panel, "hourly_mix", args.entity_name, args.date),
        "value": ENTITY_VALUE_DEFINITIONS["hourly_mix"],
        "hours": hours,
    }
