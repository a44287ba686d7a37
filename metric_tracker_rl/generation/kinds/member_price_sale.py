"""A members' price sale runs in one country for one to three dates (a loyalty event such as Prime Day or a
rewards programme's members-only prices, announced inside the app): returning users, the signed-in members, see
the members' prices on the menu and add far more of what they look at to their carts; new users, not members yet,
see the usual prices and add as always. No more people arrive, and a cart is ordered and paid as usual.

It is reported as a rate spike of menu_open_to_product_added_to_cart on the country's returning users, one row per
date. The country is drawn among those whose sample expects enough returning users' menu visits each date
(LEAST_MENU_OPENS), and the drawn rise is sized to be clear in the segment's own data on each date (up to
LARGEST_LIFT), never lifting the step past HIGHEST_RATE."""

from __future__ import annotations

import numpy as np

from metric_tracker_rl.generation.anomalies.base import counts_from, full_day, rates_through_step
from metric_tracker_rl.generation.kinds.base import IncidentKind, SegmentIncident, register_incident_kind
from metric_tracker_rl.generation.kinds.observed import daily_arrivals, observed_run
from metric_tracker_rl.generation.segment_plan import SegmentWorld
from metric_tracker_rl.world.segments import Segment

DAYS = (1, 3)
CART_STEP = 1  # menu_open -> product_added_to_cart
LEAST_MENU_OPENS = 50.0  # returning users' menu visits the sample expects in the country on each date, at the least
HIGHEST_RATE = 0.9  # a lifted step converts at most this well over the segment's day
LARGEST_LIFT = 1.5  # the most a thin segment's rise is raised to, to be clear in its own data


class MemberPriceSale(IncidentKind):
    name = "member_price_sale"
    family = "rate_spike_from_median"
    entity_names = ("menu_open_to_product_added_to_cart",)
    requires_fields = ("country", "user_type")
    segment_meaning = "one country's returning users"
    magnitude_meaning = "relative rise of returning users' add-to-cart step in the country"
    magnitude_range = (0.45, 0.7)
    magnitude_bounds = (0.0, 2.0)
    description = (
        f"returning users' add-to-cart step rises {100 * magnitude_range[0]:.0f}-{magnitude_range[1]:.0%} in a "
        f"country for {DAYS[0]}-{DAYS[1]} dates"
    )
    definition = "signed-in customers in one country see members' prices for a few dates and add more to their carts"

    def place(self, world: SegmentWorld, stream: str, rng: np.random.Generator) -> list[SegmentIncident]:
        entity = self.entity_names[0]
        countries = [Segment(country=c, user_type="returning") for c in world.plan.layout.values_of("country")]
        run = observed_run(
            world,
            rng,
            DAYS,
            countries,
            CART_STEP,
            LEAST_MENU_OPENS,
            lambda s, d: self.clear_at(world, s, d, CART_STEP, LARGEST_LIFT),
        )
        if run is None:
            return []
        days, segment = run
        lift = self.clear_in_segment(world, segment, days, CART_STEP, self.draw_magnitude(world, rng), LARGEST_LIFT)
        visits = daily_arrivals(world, segment, days, CART_STEP)
        rates = daily_arrivals(world, segment, days, CART_STEP + 1) / np.maximum(visits, 1e-9)
        neutral = (rates_through_step(CART_STEP) | counts_from(CART_STEP + 1)) - {(self.entity_type, entity)}
        out = []
        for day, rate in zip(days, rates, strict=True):
            factor = min(1.0 + lift, HIGHEST_RATE / max(float(rate), 1e-9))
            world.scale_step(segment, day, CART_STEP, factor)
            record = self.record(
                day,
                entity,
                factor - 1.0,
                full_day(),
                f"a members' price sale in {segment.label()}: {entity} rises by {factor - 1.0:.0%}",
                neutral,
            )
            out.append(self.run_incident(record, segment, days))
        return out


register_incident_kind(MemberPriceSale())
