"""Saved cards stop paying in one country for two to four dates: the payment provider starts asking for strong
customer authentication (a 3-D Secure challenge) on payments with a card on file there, as the European rules did
when they took effect, or re-verifies its stored card tokens, and many of the challenges sent to the app fail or are
abandoned. Returning users, who pay with the card they saved, place their orders as usual but fewer of the orders
are paid; new users, who type a card in and authenticate it as they do, pay as always.

It is reported as a rate drop of order_placed_to_payment_successful on the country's returning users, one row per
date. The country is drawn among those whose sample expects enough returning users' orders each date
(LEAST_ORDERS), and the drawn fall is sized to be clear in the segment's own data on each date (up to LARGEST_FALL:
a sample holds a few dozen returning users' orders a day in its largest country, a few in its smallest)."""

from __future__ import annotations

import numpy as np

from metric_tracker_rl.generation.kinds.base import IncidentKind, SegmentIncident, register_incident_kind
from metric_tracker_rl.generation.kinds.observed import observed_run
from metric_tracker_rl.generation.segment_plan import SegmentWorld
from metric_tracker_rl.world.segments import Segment

DAYS = (2, 4)
PAYMENT_STEP = 3
ORDERS = 3  # the event a payment's arrivals are counted at: order_placed
LEAST_ORDERS = 8.0  # returning users' orders the sample expects in the country on each date, at the least
# The most the fall is raised to, to be clear in a country's returning users' own data: where the challenge cannot
# complete in the app, most payments with a saved card fail.
LARGEST_FALL = 0.85


class StoredCardChallenge(IncidentKind):
    name = "stored_card_challenge"
    family = "rate_drop_from_median"
    entity_names = ("order_placed_to_payment_successful",)
    requires_fields = ("country", "user_type")
    segment_meaning = "one country's returning users"
    magnitude_meaning = "relative fall of returning users' payment step in the country"
    magnitude_range = (0.35, 0.55)
    magnitude_bounds = (0.0, 0.95)
    description = (
        f"returning users' payment step falls {100 * magnitude_range[0]:.0f}-{magnitude_range[1]:.0%} in a "
        f"country for {DAYS[0]}-{DAYS[1]} dates"
    )
    definition = "payments with a saved card fail in one country for a few dates; typed-in cards pay as usual"

    def place(self, world: SegmentWorld, stream: str, rng: np.random.Generator) -> list[SegmentIncident]:
        countries = [Segment(country=c, user_type="returning") for c in world.plan.layout.values_of("country")]
        largest = max(self.largest_fall(world), LARGEST_FALL)
        run = observed_run(world, rng, DAYS, countries, ORDERS, LEAST_ORDERS)
        if run is None:
            return []
        days, segment = run
        fall = self.clear_in_segment(world, segment, days, PAYMENT_STEP, self.draw_magnitude(world, rng), largest)
        return self.step_drop_over_dates(
            world,
            segment,
            days,
            self.entity_names[0],
            [fall] * len(days),
            f"saved cards are challenged in {segment.label()}",
        )


register_incident_kind(StoredCardChallenge())
