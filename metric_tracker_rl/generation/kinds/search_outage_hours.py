"""The menu's search and catalogue service fails on one platform for a block of hours: sessions open the app and
reach the menu as usual in every country, but almost none can find a product to add to the cart until it is back.
Unlike a promotion's end or a dull menu (a whole day converting a little worse), the step nearly stops, and only
in those hours.

It is reported as a funnel break of the add-to-cart step on the platform (step_stop_hours.py: the platform and
hours are drawn among those whose sample shows the stop)."""

from __future__ import annotations

from metric_tracker_rl.generation.kinds.base import register_incident_kind
from metric_tracker_rl.generation.kinds.step_stop_hours import StepStopHours


class SearchOutageHours(StepStopHours):
    name = "search_outage_hours"
    entity_names = ("menu_open_to_product_added_to_cart",)
    step = 1  # menu_open -> product_added_to_cart
    field = "platform"
    clear_block = 20.0  # carts the sample expects in the block, at the least
    down = "the menu's search is down on {segment}"
    across = "in every country"
    segment_meaning = "one platform, every country"
    magnitude_meaning = "hours in which adding to the cart nearly stops"
    magnitude_range = (5.0, 9.0)
    definition = "adding to the cart almost stops for a block of hours on one platform, in every country"


register_incident_kind(SearchOutageHours())
