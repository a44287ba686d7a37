"""A family no registered kind reports, as an incident of its own: its injector on one platform's or country's
cells, with the family's `segment_magnitude_range`. A scenario of that family alone uses it."""

from __future__ import annotations

import numpy as np

from metric_tracker_rl.generation.anomalies import FAMILY_REGISTRY
from metric_tracker_rl.generation.kinds.base import IncidentKind, SegmentIncident
from metric_tracker_rl.generation.segment_plan import SegmentWorld, pick

PREFIX = "segment/"


class FamilyOnSegment(IncidentKind):
    """Not registered: made on demand for one family (its name is PREFIX + the family's)."""

    segment_meaning = "one platform or country"

    def __init__(self, family: str) -> None:
        injector = FAMILY_REGISTRY[family]
        if injector.segment_magnitude_range is None:
            raise ValueError(f"{family!r} is reported by an incident kind, or has no segment_magnitude_range")
        self.name = PREFIX + family
        self.family = family
        self.entity_names = injector.entity_names
        self.description = injector.description
        self.definition = "the family's own incident on one platform's or one country's cells"
        # A count family's incident may last all day (when it is not confined to a block of hours).
        self.count_all_day = getattr(injector, "segment_partial_day_probability", 1.0) < 1.0
        self.magnitude_meaning = injector.magnitude_meaning
        self.magnitude_range = injector.segment_magnitude_range
        # The segment range may reach past the aggregate tiers' ranges: the bounds hold both.
        low, high = injector.magnitude_bounds
        self.magnitude_bounds = (min(low, self.magnitude_range[0]), max(high, self.magnitude_range[1]))

    def place(self, world: SegmentWorld, stream: str, rng: np.random.Generator) -> list[SegmentIncident]:
        day = world.calendar.draw(rng)
        if day is None:
            return []
        segment = world.one_dimension(rng)
        entity = pick(self.entity_names, rng)
        return self.over_dates(world, segment, [day], entity, self.draw_magnitude(world, rng), stream)
