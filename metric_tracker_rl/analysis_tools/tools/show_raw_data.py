"""`show_raw_data`: the daily counts and conversion rates, a page of dates from an offset."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from metric_tracker_rl.analysis_tools.arguments import ToolArgs
from metric_tracker_rl.analysis_tools.inspection import daily_row
from metric_tracker_rl.analysis_tools.registry import register_tool
from metric_tracker_rl.catalog.published import LONGEST_WINDOW_DAYS
from metric_tracker_rl.catalog.tiers import COUNTS
from metric_tracker_rl.world.public_episode import PublicEpisode


class RawDataArgs(ToolArgs):
    limit: int = Field(default=7, ge=1, le=28, description="Rows per page")
    offset: int = Field(default=0, ge=0, le=LONGEST_WINDOW_DAYS - 1, description="First date's index")


@register_tool("show_raw_data", "Daily counts and conversion rates from a date on.", RawDataArgs, reads=(COUNTS,))
def show_raw_data(episode: PublicEpisode, args: RawDataArgs) -> dict[str, Any]:
    days = range(args.offset, min(args.offset + args.limit, len(episode.data.dates)))
    return {"rows": [daily_row(episode, d) for d in days], "total_rows": len(episode.data.dates)}
