"""What the tools over the segmented data share: the episode's segments (an error where there are none), and
each release's rollout stages, which get_releases and get_context's releases table both show."""

from __future__ import annotations

from typing import Any

from metric_tracker_rl.analysis_tools.registry import ToolError
from metric_tracker_rl.catalog.validation import NO_SEGMENTS as EPISODE_HAS_NO_SEGMENTS
from metric_tracker_rl.world.public_episode import PublicEpisode
from metric_tracker_rl.world.segments import SegmentedData

NO_SEGMENTS = f"{EPISODE_HAS_NO_SEGMENTS}; use the aggregate tools"


def segments_of(episode: PublicEpisode) -> SegmentedData:
    """The episode's segmented data; a ToolError that says to use the aggregate tools where it has none."""
    if episode.segments is None:
        raise ToolError(NO_SEGMENTS)
    return episode.segments


def release_steps(data: SegmentedData) -> list[dict[str, Any]]:
    """Each release's rollout stages: a row per date until it reaches every user, and that date's."""
    rows, previous = [], None
    for row in data.release_rows():  # each release's dates in order
        release = (row["platform"], row["app_version"])
        if row["rollout_share"] < 1.0 or previous != (release, row["rollout_share"]):
            rows.append(row)
        previous = (release, row["rollout_share"])
    return rows
