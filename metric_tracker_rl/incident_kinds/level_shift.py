"""One step converts worse in one platform or country for several dates, until a fix."""

from __future__ import annotations

import numpy as np

from metric_tracker_rl.catalog import FUNNEL_STEPS
from metric_tracker_rl.incident_kinds.base import IncidentKind, SegmentIncident, register_incident_kind
from metric_tracker_rl.segment_plan import SegmentWorld, pick

DAYS = (2, 5)


class LevelShift(IncidentKind):
    name = "level_shift"
    family = "rate_drop_from_median"
    entity_names = FUNNEL_STEPS
    segment_meaning = "one platform or country"
    magnitude_meaning = "relative fall of the step's conversion in the segment"
    magnitude_range = (0.22, 0.45)
    description = (f"a {100 * magnitude_range[0]:.0f}-{magnitude_range[1]:.0%} lower step for {DAYS[0]}-{DAYS[1]} "
                   "dates until a fix: it contaminates no same-weekday peer of its own dates, but a second one on the "
                   "same weekday would")
    magnitude_bounds = (0.0, 0.95)

    def place(self, world: SegmentWorld, stream: str, rng: np.random.Generator) -> list[SegmentIncident]:
        days = world.calendar.draw_run(rng, DAYS)
        if not days:
            return []
        segment = world.one_dimension(rng, ("country", "platform"))
        entity = pick(self.entity_names, rng)
        magnitude = self.draw_magnitude(world, rng)
        return self.over_dates(world, segment, days, entity, magnitude, stream)


register_incident_kind(LevelShift())
