"""The checkout service goes down in one country for a block of hours: carts fill as usual on every platform, but
almost no order goes through until it is back. Unlike a payment failure (an order placed, its payment refused on
one app's version), the order itself is never placed, on the web as on the apps.

It is reported as a funnel break of the order step on the country (step_stop_hours.py: the country and hours are
drawn among those whose sample shows the stop)."""

from __future__ import annotations

from metric_tracker_rl.generation.kinds.base import register_incident_kind
from metric_tracker_rl.generation.kinds.step_stop_hours import StepStopHours


class CheckoutOutageHours(StepStopHours):
    name = "checkout_outage_hours"
    entity_names = ("product_added_to_cart_to_order_placed",)
    step = 2  # product_added_to_cart -> order_placed
    field = "country"
    clear_block = 14.0  # orders the sample expects in the block, at the least
    down = "checkout is down in {segment}"
    across = "on every platform"
    segment_meaning = "one country, every platform"
    magnitude_meaning = "hours in which orders nearly stop"
    magnitude_range = (6.0, 10.0)
    definition = "orders almost stop being placed for a block of hours in one country, on every platform"


register_incident_kind(CheckoutOutageHours())
