"""Bots from one country: the hourly-mix-shift injector on the country's cells (opens that never reach the menu).

Cell-level at every tier, deep included: bots are a country's (their evidence is its hourly mix of opens, which
exists per cell only), and the extra opens are spread over the leaves in proportion to their counts."""

from __future__ import annotations

import numpy as np

from metric_tracker_rl.generation.kinds.base import IncidentKind, SegmentIncident, register_incident_kind
from metric_tracker_rl.generation.segment_plan import SegmentWorld, pick
from metric_tracker_rl.world.segments import Segment


class CountryBots(IncidentKind):
    name = "country_bots"
    family = "hourly_traffic_mix_shift"
    entity_names = ("app_opens",)
    requires_fields = ("country",)
    description = (
        "the mix-shift injector on the country's cells: extra opens in a block of hours that never reach the menu"
    )
    segment_meaning = "one country"
    definition = "bots add opens that never reach the menu in a block of hours, in one country"
    magnitude_meaning = "extra opens as a share of the country's opens that day"
    magnitude_range = (0.25, 0.9)
    magnitude_bounds = (0.05, 3.0)

    def place(self, world: SegmentWorld, stream: str, rng: np.random.Generator) -> list[SegmentIncident]:
        day = world.calendar.draw(rng)
        if day is None:
            return []
        segment = Segment(country=pick(world.plan.layout.values_of("country"), rng))
        share = self.draw_magnitude(world, rng)
        return self.over_dates(
            world, segment, [day], self.entity_names[0], share, stream, f"bots from {segment.country}"
        )


register_incident_kind(CountryBots())
