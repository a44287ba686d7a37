"""`list_dates`: every date of the window with its weekday and whether a calendar note names it."""

from __future__ import annotations

from typing import Any

from metric_tracker_rl.analysis_tools.arguments import NoArgs
from metric_tracker_rl.analysis_tools.registry import REFERENCE_API, register_tool
from metric_tracker_rl.catalog.tiers import COUNTS
from metric_tracker_rl.world.public_episode import PublicEpisode


@register_tool(
    "list_dates",
    "Every date with its weekday and whether it has a calendar note.",
    NoArgs,
    reads=(COUNTS,),
    kept_for=f"{REFERENCE_API} and the debugger; a model reads the window in its brief and the noted "
    "dates from get_annotations",
)
def list_dates(episode: PublicEpisode, args: NoArgs) -> dict[str, Any]:
    noted = {a.date for a in episode.annotations}
    data = episode.data
    return {
        "dates": [
            {"date": d, "weekday": w, "is_weekend": bool(e), "has_annotation": d in noted}
            for d, w, e in zip(data.dates, data.weekdays, data.weekend, strict=True)
        ]
    }
