"""`get_releases`: each app release's rollout share by date (segmented tiers only)."""

from __future__ import annotations

from typing import Any

from metric_tracker_rl.analysis_tools.arguments import NoArgs
from metric_tracker_rl.analysis_tools.registry import register_tool
from metric_tracker_rl.analysis_tools.segment_tools import release_steps, segments_of
from metric_tracker_rl.catalog.tiers import SEGMENTS
from metric_tracker_rl.world.public_episode import PublicEpisode


# Offered where there are segments: elsewhere a call answers that the tier does not offer it, naming the tier's tools.
@register_tool("get_releases", "Segments only: each release's rollout share by date.", NoArgs, reads=(SEGMENTS,))
def get_releases(episode: PublicEpisode, args: NoArgs) -> dict[str, Any]:
    return {"rows": release_steps(segments_of(episode)), "note": "a release's share stays at 1.0 after its last row"}
