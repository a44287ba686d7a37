"""A delivery fee rises in one country: for three to six dates, until it is rolled back, shoppers fill their carts
as before but fewer place the order once they see the total, on every platform and channel.

It is reported as a rate drop of product_added_to_cart_to_order_placed on the country, one row per date. The
country is drawn among those whose sample holds enough carts each date (LEAST_CARTS), and the drawn fall is sized to
be clear in the country's own data on each date, as every all-day incident of the tier is (up to the largest fall a
small segment's is raised to)."""

from __future__ import annotations

import numpy as np

from metric_tracker_rl.generation.kinds.base import IncidentKind, SegmentIncident, register_incident_kind
from metric_tracker_rl.generation.kinds.observed import has_leaves, holding
from metric_tracker_rl.generation.segment_plan import SegmentWorld, pick
from metric_tracker_rl.world.segments import Segment

DAYS = (3, 6)
ORDER_STEP = 2
LEAST_CARTS = 25.0  # carts the sample expects in the country on each date, at the least


class PriceRise(IncidentKind):
    name = "price_rise"
    family = "rate_drop_from_median"
    entity_names = ("product_added_to_cart_to_order_placed",)
    requires_fields = ("country",)
    segment_meaning = "one country"
    magnitude_meaning = "relative fall of the order step in the country"
    magnitude_range = (0.4, 0.55)
    magnitude_bounds = (0.0, 0.95)
    description = (
        f"the order step falls {100 * magnitude_range[0]:.0f}-{magnitude_range[1]:.0%} in a country for "
        f"{DAYS[0]}-{DAYS[1]} dates"
    )
    definition = "fewer carts become orders in one country for several dates in a row, until a price is rolled back"

    def place(self, world: SegmentWorld, stream: str, rng: np.random.Generator) -> list[SegmentIncident]:
        if not has_leaves(world):
            return []
        days = self._run(world, rng)
        if not days:
            return []
        countries = [Segment(country=c) for c in world.plan.layout.values_of("country")]
        options = holding(world, countries, days, ORDER_STEP, LEAST_CARTS)
        if not options:
            return []
        segment = pick(options, rng)
        magnitude = self.clear_in_segment(
            world, segment, days, ORDER_STEP, self.draw_magnitude(world, rng), self.largest_fall(world)
        )
        return self.step_drop_over_dates(
            world, segment, days, self.entity_names[0], [magnitude] * len(days), f"a price rises in {segment.label()}"
        )

    def _run(self, world: SegmentWorld, rng: np.random.Generator) -> list[int]:
        """A run of the drawn length, or the longest shorter one the calendar still holds (no shorter than DAYS)."""
        length = int(rng.integers(DAYS[0], DAYS[1] + 1))
        for tried in range(length, DAYS[0] - 1, -1):
            start = world.calendar.draw(rng, tried)
            if start is not None:
                return list(range(start, start + tried))
        return []


register_incident_kind(PriceRise())
