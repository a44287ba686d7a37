"""`get_annotations`: the calendar notes, which explain their dates (a release does not)."""

from __future__ import annotations

from typing import Any

from metric_tracker_rl.analysis_tools.arguments import NoArgs
from metric_tracker_rl.analysis_tools.registry import register_tool
from metric_tracker_rl.catalog.tiers import COUNTS
from metric_tracker_rl.world.public_episode import PublicEpisode


@register_tool(
    "get_annotations",
    "Calendar notes: a campaign, holiday or late data explains its date; a release does not.",
    NoArgs,
    reads=(COUNTS,),
)
def get_annotations(episode: PublicEpisode, args: NoArgs) -> dict[str, Any]:
    return {"annotations": [a.as_dict() for a in episode.annotations]}
