"""The checkout service goes down in one country for a block of hours: carts fill as usual on every platform, but
almost no order goes through until it is back. Unlike a payment failure (an order placed, its payment refused on
one app's version), the order itself is never placed, on the web as on the apps.

It is reported as a funnel break of the order step on the country. The country and hours are drawn among those
whose sample expects enough orders in the block to show the stop (CLEAR_BLOCK_ORDERS) and enough of the day's
orders in it that the date's own rate falls clearly (LEAST_DAY_SHARE)."""

from __future__ import annotations

import numpy as np

from metric_tracker_rl.generation.anomalies.base import counts_from, hourly_mix_from, rates_through_step
from metric_tracker_rl.generation.kinds.base import IncidentKind, SegmentIncident, register_incident_kind
from metric_tracker_rl.generation.kinds.cuboid import hour_arrivals
from metric_tracker_rl.generation.kinds.observed import has_leaves, hour_blocks
from metric_tracker_rl.generation.segment_plan import SegmentWorld, pick
from metric_tracker_rl.world.segments import Segment

ORDER_STEP = 2  # product_added_to_cart -> order_placed
ORDERS = ORDER_STEP + 1  # the event whose arrivals are the orders
RESIDUAL = (0.0, 0.06)  # the share of the block's orders that still go through (a retry that lands)
HOUR_WINDOW = (9, 23)  # the busy hours a block lies in
CLEAR_BLOCK_ORDERS = 14.0  # orders the sample expects in the block, at the least
LEAST_DAY_SHARE = 0.3  # the block's share of the day's orders, at the least


class CheckoutOutageHours(IncidentKind):
    name = "checkout_outage_hours"
    family = "funnel_break"
    entity_names = ("product_added_to_cart_to_order_placed",)
    requires_fields = ("country",)
    segment_meaning = "one country, every platform"
    magnitude_meaning = "hours in which orders nearly stop"
    magnitude_range = (6.0, 10.0)
    magnitude_bounds = (1.0, 14.0)
    description = f"a block of {magnitude_range[0]:.0f}-{magnitude_range[1]:.0f} hours"
    definition = "orders almost stop being placed for a block of hours in one country, on every platform"

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
        return [self.stop_orders(world, segment, day, hours, rng)]

    def _placements(self, world: SegmentWorld, day: int, length: int, longest: int
                    ) -> list[tuple[Segment, tuple[int, int]]]:
        """Every country and block of `length` hours that shows the stop; where none does, those of the shortest
        longer block that does (up to `longest`)."""
        countries = [Segment(country=c) for c in world.plan.layout.values_of("country")]
        for hours in range(length, longest + 1):
            placements = [(segment, block) for segment in countries
                          for block in hour_blocks(world, segment, day, hours, ORDERS, HOUR_WINDOW,
                                                   CLEAR_BLOCK_ORDERS)
                          if _day_share(world, segment, day, block) >= LEAST_DAY_SHARE]
            if placements:
                return placements
        return []

    def stop_orders(self, world: SegmentWorld, segment: Segment, day: int, hours: tuple[int, int],
                    rng: np.random.Generator) -> SegmentIncident:
        start, end = hours
        world.scale_step(segment, day, ORDER_STEP, float(rng.uniform(*RESIDUAL)), hours)
        entity = self.entity_names[0]
        neutral = ({("conversion_rate", entity)} | rates_through_step(ORDER_STEP) | counts_from(ORDERS)
                   | hourly_mix_from(ORDERS))
        what = (f"checkout is down in {segment.label()}: {entity} almost stops between {start:02d}:00 and "
                f"{end:02d}:00 on every platform")
        return self.incident(self.record(day, entity, float(end - start), hours, what, neutral), segment)


def _day_share(world: SegmentWorld, segment: Segment, day: int, hours: tuple[int, int]) -> float:
    orders = hour_arrivals(world, segment, day, ORDERS)
    return float(orders[slice(*hours)].sum() / max(orders.sum(), 1e-9))


register_incident_kind(CheckoutOutageHours())
