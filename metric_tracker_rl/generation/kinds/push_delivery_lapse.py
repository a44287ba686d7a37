"""Push notifications stop reaching one mobile platform's users for two to four dates: the push service's
credential lapsed (an APNs certificate left to expire) or the app still sent through an API its provider switched
off (Firebase's legacy Cloud Messaging API, shut down in 2024). Returning users, whom a reminder or an order update
brings back, open the app less all day; new users, who have not been asked to allow notifications yet, arrive as
always, and everyone who comes converts as usual.

It is reported as an absolute drop of app_opens on the platform's returning users, one row per date. The platform
is drawn among the mobile ones whose sample expects enough returning opens each date (LEAST_RETURNING_OPENS), and
the drawn share lost is raised to be clear in the segment's own data where it would not be (up to LARGEST_LOSS)."""

from __future__ import annotations

import numpy as np

from metric_tracker_rl.generation.kinds.base import OPENS, IncidentKind, SegmentIncident, register_incident_kind
from metric_tracker_rl.generation.kinds.observed import observed_run
from metric_tracker_rl.generation.segment_plan import SegmentWorld
from metric_tracker_rl.world.segments import Segment

DAYS = (2, 4)
MOBILE = ("ios", "android")  # the platforms whose users get push notifications
LEAST_RETURNING_OPENS = 60.0  # returning users' opens the sample expects on the platform each date, at the least
LARGEST_LOSS = 0.75  # the most a thin segment's loss is raised to, to be clear in its own data


class PushDeliveryLapse(IncidentKind):
    name = "push_delivery_lapse"
    family = "absolute_drop_in_event_count"
    entity_names = ("app_opens",)
    requires_fields = ("platform", "user_type")
    count_all_day = True
    segment_meaning = "one mobile platform's returning users"
    magnitude_meaning = "share of the platform's returning users' opens lost"
    magnitude_range = (0.4, 0.6)
    magnitude_bounds = (0.05, 0.95)
    description = (
        f"{100 * magnitude_range[0]:.0f}-{magnitude_range[1]:.0%} of a mobile platform's returning users' opens "
        f"lost all day for {DAYS[0]}-{DAYS[1]} dates"
    )
    definition = "reminders stop reaching one mobile platform's users, so fewer returning users open the app"

    def place(self, world: SegmentWorld, stream: str, rng: np.random.Generator) -> list[SegmentIncident]:
        """`stream` is unused: the loss edits the leaves' traffic itself."""
        segments = [
            Segment(platform=p, user_type="returning") for p in world.plan.layout.values_of("platform") if p in MOBILE
        ]
        run = observed_run(world, rng, DAYS, segments, 0, LEAST_RETURNING_OPENS)
        if run is None:
            return []
        days, segment = run
        loss = self.clear_in_segment(world, segment, days, OPENS, self.draw_magnitude(world, rng), LARGEST_LOSS)
        what = (
            f"push notifications stop reaching {segment.label()}: {loss:.0%} of their opens lost all day; "
            "conversion is unchanged"
        )
        return self.opens_lost_over_dates(world, segment, days, loss, what)


register_incident_kind(PushDeliveryLapse())
