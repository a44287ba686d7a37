"""The web client logs one event more than once, from some hour on, for one to three dates.

Platform-level at every tier, deep included: the web client's logging is one build for every country, channel and
user type, and duplicates are drawn per cell after the counts (spread over the leaves in proportion)."""

from __future__ import annotations

import numpy as np

from metric_tracker_rl.catalog.published import DATA_QUALITY_EVENTS
from metric_tracker_rl.generation.kinds.base import IncidentKind, SegmentIncident, register_incident_kind
from metric_tracker_rl.generation.segment_plan import SegmentWorld, pick
from metric_tracker_rl.world.segments import Segment

DAYS = (1, 3)


class WebTrackingBug(IncidentKind):
    name = "web_tracking_bug"
    family = "instrumentation_data_quality_issue"
    entity_names = DATA_QUALITY_EVENTS
    segment_meaning = "platform=web"
    # Enough copies that the event outnumbers its step (the family's definition).
    magnitude_meaning = "extra copies logged per real event"
    magnitude_range = (0.9, 1.6)
    description = (
        f"an event logged {1 + magnitude_range[0]:.1f}-{1 + magnitude_range[1]:.1f} times from some hour "
        f"on, {DAYS[0]}-{DAYS[1]} dates"
    )
    magnitude_bounds = (0.9, 4.0)
    definition = (
        f"web logs one event more than once from some hour on, {DAYS[0]}-{DAYS[1]} dates in a row, on all of web"
    )

    def place(self, world: SegmentWorld, stream: str, rng: np.random.Generator) -> list[SegmentIncident]:
        days = world.calendar.draw_run(rng, DAYS)
        if not days:
            return []
        entity = pick(self.entity_names, rng)
        magnitude = self.draw_magnitude(world, rng)
        return self.over_dates(world, Segment(platform="web"), days, entity, magnitude, stream)


register_incident_kind(WebTrackingBug())
