"""A members' discount is applied at checkout in one country for one to three dates (a loyalty weekend: a share
off every order of a signed-in customer, announced inside the app): returning users, the signed-in members, fill
their carts as before, but far more of those carts become orders once the total shows the discount; new users, not
members yet, see no discount and order as always. No more people arrive.

It is reported as a rate spike of product_added_to_cart_to_order_placed on the country's returning users, one row
per date. The country is drawn among those whose sample expects enough returning users' carts each date
(LEAST_CARTS), and the drawn rise is sized to be clear in the segment's own data on each date (up to LARGEST_LIFT),
never lifting the step past HIGHEST_RATE."""

from __future__ import annotations

import numpy as np

from metric_tracker_rl.generation.anomalies.base import counts_from, full_day, rates_through_step
from metric_tracker_rl.generation.kinds.base import IncidentKind, SegmentIncident, register_incident_kind
from metric_tracker_rl.generation.kinds.observed import daily_arrivals, observed_run
from metric_tracker_rl.generation.segment_plan import SegmentWorld
from metric_tracker_rl.world.segments import Segment

DAYS = (1, 3)
ORDER_STEP = 2  # product_added_to_cart -> order_placed
LEAST_CARTS = 20.0  # returning users' carts the sample expects in the country on each date, at the least
HIGHEST_RATE = 0.9  # a lifted step converts at most this well over the segment's day
LARGEST_LIFT = 1.0  # the most a thin segment's rise is raised to, to be clear in its own data


class MemberCheckoutDiscount(IncidentKind):
    name = "member_checkout_discount"
    family = "rate_spike_from_median"
    entity_names = ("product_added_to_cart_to_order_placed",)
    requires_fields = ("country", "user_type")
    segment_meaning = "one country's returning users"
    magnitude_meaning = "relative rise of returning users' order step in the country"
    magnitude_range = (0.45, 0.7)
    magnitude_bounds = (0.0, 2.0)
    description = (
        f"returning users' order step rises {100 * magnitude_range[0]:.0f}-{magnitude_range[1]:.0%} in a "
        f"country for {DAYS[0]}-{DAYS[1]} dates"
    )
    definition = "signed-in customers in one country get a discount at checkout for a few dates and order more"

    def place(self, world: SegmentWorld, stream: str, rng: np.random.Generator) -> list[SegmentIncident]:
        entity = self.entity_names[0]
        countries = [Segment(country=c, user_type="returning") for c in world.plan.layout.values_of("country")]
        run = observed_run(world, rng, DAYS, countries, ORDER_STEP, LEAST_CARTS)
        if run is None:
            return []
        days, segment = run
        lift = self.clear_in_segment(world, segment, days, ORDER_STEP, self.draw_magnitude(world, rng), LARGEST_LIFT)
        carts = daily_arrivals(world, segment, days, ORDER_STEP)
        rates = daily_arrivals(world, segment, days, ORDER_STEP + 1) / np.maximum(carts, 1e-9)
        neutral = (rates_through_step(ORDER_STEP) | counts_from(ORDER_STEP + 1)) - {(self.entity_type, entity)}
        out = []
        for day, rate in zip(days, rates, strict=True):
            factor = min(1.0 + lift, HIGHEST_RATE / max(float(rate), 1e-9))
            world.scale_step(segment, day, ORDER_STEP, factor)
            record = self.record(
                day,
                entity,
                factor - 1.0,
                full_day(),
                f"a members' discount at checkout in {segment.label()}: {entity} rises by {factor - 1.0:.0%}",
                neutral,
            )
            out.append(self.run_incident(record, segment, days))
        return out


register_incident_kind(MemberCheckoutDiscount())
