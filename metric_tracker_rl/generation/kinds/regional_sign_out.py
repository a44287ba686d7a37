"""One platform's app signs its users out in one country for two to four dates: the country's data region moved
its accounts (a residency migration) or rotated the keys its session tokens are signed with, and that platform's
app cannot refresh a token issued before, so a returning user who opens it lands on the sign-in screen, and many
leave there (a forgotten password, no time now) before they reach the menu. New users, who have no session to lose,
sign up as always; the other platforms refresh their tokens; everyone who reaches the menu orders as usual.

It is reported as a rate drop of app_open_to_menu_open on the platform's returning users in the country, one row
per date. The platform and country are drawn among those whose sample expects enough returning users' opens each
date (LEAST_OPENS), and the drawn fall is sized to be clear in the segment's own data on each date (up to the
largest fall a thin segment's is raised to)."""

from __future__ import annotations

import numpy as np

from metric_tracker_rl.generation.kinds.base import IncidentKind, SegmentIncident, register_incident_kind
from metric_tracker_rl.generation.kinds.observed import observed_run
from metric_tracker_rl.generation.segment_plan import SegmentWorld
from metric_tracker_rl.world.segments import Segment

DAYS = (2, 4)
MENU_STEP = 0  # app_open -> menu_open
LEAST_OPENS = 25.0  # returning users' opens the sample expects on the platform in the country each date, at the least


class RegionalSignOut(IncidentKind):
    name = "regional_sign_out"
    family = "rate_drop_from_median"
    entity_names = ("app_open_to_menu_open",)
    requires_fields = ("platform", "country", "user_type")
    segment_meaning = "one platform's returning users in one country"
    magnitude_meaning = "relative fall of the segment's menu step"
    magnitude_range = (0.35, 0.55)
    magnitude_bounds = (0.0, 0.95)
    description = (
        f"returning users' menu step falls {100 * magnitude_range[0]:.0f}-{magnitude_range[1]:.0%} on one "
        f"platform in a country for {DAYS[0]}-{DAYS[1]} dates"
    )
    definition = "one platform's app signs returning users out in one country for a few dates; many leave at sign-in"

    def place(self, world: SegmentWorld, stream: str, rng: np.random.Generator) -> list[SegmentIncident]:
        layout = world.plan.layout
        segments = [
            Segment(platform=platform, country=country, user_type="returning")
            for platform in layout.values_of("platform")
            for country in layout.values_of("country")
        ]
        run = observed_run(world, rng, DAYS, segments, MENU_STEP, LEAST_OPENS)
        if run is None:
            return []
        days, segment = run
        fall = self.clear_in_segment(
            world, segment, days, MENU_STEP, self.draw_magnitude(world, rng), self.largest_fall(world)
        )
        return self.step_drop_over_dates(
            world,
            segment,
            days,
            self.entity_names[0],
            [fall] * len(days),
            f"{segment.label()} is signed out",
        )


register_incident_kind(RegionalSignOut())
