"""An app store's search ad campaign stops in one country for two to four dates: its budget ran out or the
campaign was paused. Such ads show in one store's search and so reach one platform's users alone (Apple's in the App
Store, Google Play's in its store). Fewer people arrive, all day, from paid search on that
platform in that country; those who still come (a saved link, an ad seen before) convert as usual, and paid search
on the other platforms and every other channel carry on.

It is reported as an absolute drop of app_opens on the country's paid search on the platform, one row per date. The
platform and country are drawn among those whose sample expects enough of those opens each date (LEAST_OPENS)."""

from __future__ import annotations

import numpy as np

from metric_tracker_rl.generation.kinds.base import IncidentKind, SegmentIncident, register_incident_kind
from metric_tracker_rl.generation.segment_plan import SegmentWorld
from metric_tracker_rl.world.segments import Segment

DAYS = (2, 4)
STORE_PLATFORMS = ("ios", "android")  # each has an app store whose search ads reach its users alone
STORE_CHANNEL = "paid_search"
LEAST_OPENS = 16.0  # the segment's opens the sample expects on each date, at the least


class SearchAdsPause(IncidentKind):
    name = "search_ads_pause"
    family = "absolute_drop_in_event_count"
    entity_names = ("app_opens",)
    requires_fields = ("platform", "country", "channel")
    count_all_day = True
    segment_meaning = "paid search on one platform in one country"
    magnitude_meaning = "share of the segment's opens lost"
    magnitude_range = (0.85, 0.97)
    magnitude_bounds = (0.05, 0.99)
    description = (
        f"{100 * magnitude_range[0]:.0f}-{magnitude_range[1]:.0%} of paid search opens on one platform in a "
        f"country lost all day for {DAYS[0]}-{DAYS[1]} dates"
    )
    definition = "an app store's search ads stop in one country for a few dates; those who come convert as usual"

    def place(self, world: SegmentWorld, stream: str, rng: np.random.Generator) -> list[SegmentIncident]:
        """`stream` is unused: the loss edits the leaves' traffic itself."""
        layout = world.plan.layout
        segments = [
            Segment(platform=platform, country=country, channel=STORE_CHANNEL)
            for platform in layout.values_of("platform")
            if platform in STORE_PLATFORMS
            for country in layout.values_of("country")
        ]
        return self.channel_stop(world, rng, DAYS, segments, LEAST_OPENS, "its search ads stopped")


register_incident_kind(SearchAdsPause())
