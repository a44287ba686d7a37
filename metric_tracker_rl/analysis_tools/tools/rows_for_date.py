"""`rows_for_date`: one date's daily counts and conversion rates (a segment's, when the call names one)."""

from __future__ import annotations

from typing import Any

from metric_tracker_rl.analysis_tools.arguments import DailyScopedDateArgs
from metric_tracker_rl.analysis_tools.inspection import daily_row
from metric_tracker_rl.analysis_tools.registry import REFERENCE_API, ToolError, register_tool
from metric_tracker_rl.catalog.tiers import COUNTS
from metric_tracker_rl.world.public_episode import PublicEpisode


@register_tool(
    "rows_for_date",
    "Daily event counts and conversion rates of one date.",
    DailyScopedDateArgs,
    example={"date": "2026-03-10"},
    reads=(COUNTS,),
    kept_for=f"{REFERENCE_API} and the debugger; a model reads a date's daily row with show_raw_data",
)
def rows_for_date(episode: PublicEpisode, args: DailyScopedDateArgs) -> dict[str, Any]:
    try:
        daily = episode.segment_daily(args.segment())
    except ValueError as exc:
        raise ToolError(str(exc)) from None
    return {"row": daily_row(episode, episode.data.date_index(args.date), daily)}
