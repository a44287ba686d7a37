"""A paid channel's traffic in one country stops for two to four dates (its ad account suspended, or the budget
run out): fewer people arrive, all day, from that channel there; those who still come (an ad seen before, a saved
link) convert as usual, and every other channel carries on.

It is reported as an absolute drop of app_opens on the country's channel, one row per date."""

from __future__ import annotations

import numpy as np

from metric_tracker_rl.generation.kinds.base import IncidentKind, SegmentIncident, register_incident_kind
from metric_tracker_rl.generation.segment_plan import SegmentWorld
from metric_tracker_rl.world.segments import Segment

DAYS = (2, 4)
PAID_CHANNELS = ("paid_search", "paid_social")
LEAST_OPENS = 20.0  # the channel's opens in the country the sample expects on each date, at the least


class PaidChannelStop(IncidentKind):
    name = "paid_channel_stop"
    family = "absolute_drop_in_event_count"
    entity_names = ("app_opens",)
    requires_fields = ("country", "channel")
    count_all_day = True
    segment_meaning = "a paid channel in one country"
    magnitude_meaning = "share of the channel's opens in the country lost"
    magnitude_range = (0.8, 0.95)
    magnitude_bounds = (0.05, 0.99)
    description = (
        f"{100 * magnitude_range[0]:.0f}-{magnitude_range[1]:.0%} of a paid channel's opens in a country "
        f"lost all day for {DAYS[0]}-{DAYS[1]} dates"
    )
    definition = "a paid channel's traffic in one country stops for a few dates; those who come convert as usual"

    def place(self, world: SegmentWorld, stream: str, rng: np.random.Generator) -> list[SegmentIncident]:
        segments = [
            Segment(country=country, channel=channel)
            for country in world.plan.layout.values_of("country")
            for channel in PAID_CHANNELS
        ]
        return self.channel_stop(world, rng, DAYS, segments, LEAST_OPENS, "its ads stopped")


register_incident_kind(PaidChannelStop())
