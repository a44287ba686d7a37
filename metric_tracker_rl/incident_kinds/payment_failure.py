"""Payments fail for a block of hours on one mobile platform's live version."""

from __future__ import annotations

import numpy as np

from metric_tracker_rl.incident_kinds.base import IncidentKind, SegmentIncident, register_incident_kind
from metric_tracker_rl.segment_plan import SegmentWorld, pick
from metric_tracker_rl.segments import MOBILE_PLATFORMS, Segment


class PaymentFailure(IncidentKind):
    name = "payment_failure"
    family = "funnel_break"
    entity_names = ("order_placed_to_payment_successful",)
    segment_meaning = "platform + the version carrying it"
    magnitude_meaning = "hours in which payments nearly stop"
    magnitude_range = (3.0, 7.0)
    description = f"a block of {magnitude_range[0]:.0f}-{magnitude_range[1]:.0f} hours"
    magnitude_bounds = (1.0, 13.0)  # the funnel break's window fits 09:00 to 22:00

    def draw_magnitude(self, world: SegmentWorld, rng: np.random.Generator) -> float:
        """A whole number of hours."""
        low, high = self.magnitude_range_at(world.magnitude_scale)
        return float(rng.integers(round(low), round(high) + 1))

    def place(self, world: SegmentWorld, stream: str, rng: np.random.Generator) -> list[SegmentIncident]:
        day = world.calendar.draw(rng)
        if day is None:
            return []
        platform = pick(MOBILE_PLATFORMS, rng)
        segment = Segment(platform, None, world.live_version(platform, day))
        hours = self.draw_magnitude(world, rng)
        return self.over_dates(world, segment, [day], self.entity_names[0], hours, stream)


register_incident_kind(PaymentFailure())
