"""The menu's search and catalogue service fails on one platform for a block of hours: sessions open the app and
reach the menu as usual in every country, but almost none can find a product to add to the cart until it is back.
Unlike a promotion's end or a dull menu (a whole day converting a little worse), the step nearly stops, and only
in those hours.

It is reported as a funnel break of the add-to-cart step on the platform. The platform and hours are drawn among
those whose sample expects enough carts in the block to show the stop (CLEAR_BLOCK_CARTS) and enough of the day's
carts in it that the date's own rate falls clearly (LEAST_DAY_SHARE)."""

from __future__ import annotations

import numpy as np

from metric_tracker_rl.generation.anomalies.base import counts_from, hourly_mix_from, rates_through_step
from metric_tracker_rl.generation.kinds.base import IncidentKind, SegmentIncident, register_incident_kind
from metric_tracker_rl.generation.kinds.cuboid import hour_arrivals
from metric_tracker_rl.generation.kinds.observed import has_leaves, hour_blocks
from metric_tracker_rl.generation.segment_plan import SegmentWorld, pick
from metric_tracker_rl.world.segments import Segment

CART_STEP = 1  # menu_open -> product_added_to_cart
CARTS = CART_STEP + 1  # the event whose arrivals are the carts
RESIDUAL = (0.0, 0.06)  # the share of the block's carts still added (a product reached by a saved link)
HOUR_WINDOW = (9, 23)  # the busy hours a block lies in
CLEAR_BLOCK_CARTS = 20.0  # carts the sample expects in the block, at the least
LEAST_DAY_SHARE = 0.3  # the block's share of the day's carts, at the least


class SearchOutageHours(IncidentKind):
    name = "search_outage_hours"
    family = "funnel_break"
    entity_names = ("menu_open_to_product_added_to_cart",)
    requires_fields = ("platform",)
    segment_meaning = "one platform, every country"
    magnitude_meaning = "hours in which adding to the cart nearly stops"
    magnitude_range = (5.0, 9.0)
    magnitude_bounds = (1.0, 14.0)
    description = f"a block of {magnitude_range[0]:.0f}-{magnitude_range[1]:.0f} hours"
    definition = "adding to the cart almost stops for a block of hours on one platform, in every country"

    def place(self, world: SegmentWorld, stream: str, rng: np.random.Generator) -> list[SegmentIncident]:
        """`stream` is unused: the outage edits the cells' step rates itself, from `rng`."""
        if not has_leaves(world):
            return []
        day = world.calendar.draw(rng)
        if day is None:
            return []
        low, high = (round(h) for h in self.magnitude_range)
        length = int(rng.integers(low, high + 1))
        placements = self._placements(world, day, length, high)
        if not placements:
            return []
        segment, hours = pick(placements, rng)
        return [self.stop_carts(world, segment, day, hours, rng)]

    def _placements(self, world: SegmentWorld, day: int, length: int, longest: int
                    ) -> list[tuple[Segment, tuple[int, int]]]:
        """Every platform and block of `length` hours that shows the stop; where none does, those of the shortest
        longer block that does (up to `longest`)."""
        platforms = [Segment(platform=p) for p in world.plan.layout.values_of("platform")]
        for hours in range(length, longest + 1):
            placements = [(segment, block) for segment in platforms
                          for block in hour_blocks(world, segment, day, hours, CARTS, HOUR_WINDOW, CLEAR_BLOCK_CARTS)
                          if _day_share(world, segment, day, block) >= LEAST_DAY_SHARE]
            if placements:
                return placements
        return []

    def stop_carts(self, world: SegmentWorld, segment: Segment, day: int, hours: tuple[int, int],
                   rng: np.random.Generator) -> SegmentIncident:
        start, end = hours
        world.scale_step(segment, day, CART_STEP, float(rng.uniform(*RESIDUAL)), hours)
        entity = self.entity_names[0]
        neutral = ({("conversion_rate", entity)} | rates_through_step(CART_STEP) | counts_from(CARTS)
                   | hourly_mix_from(CARTS))
        what = (f"the menu's search is down on {segment.label()}: {entity} almost stops between {start:02d}:00 and "
                f"{end:02d}:00 in every country")
        return self.incident(self.record(day, entity, float(end - start), hours, what, neutral), segment)


def _day_share(world: SegmentWorld, segment: Segment, day: int, hours: tuple[int, int]) -> float:
    carts = hour_arrivals(world, segment, day, CARTS)
    return float(carts[slice(*hours)].sum() / max(carts.sum(), 1e-9))


register_incident_kind(SearchOutageHours())
