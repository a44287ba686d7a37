"""New users on one platform stop getting past the first screen (a broken sign-up or consent screen in the
onboarding flow) for one to three dates: their app opens arrive as usual, but few reach the menu; returning users,
who skip onboarding, convert as always.

It is reported as a rate drop of app_open_to_menu_open on the platform's new users, one row per date."""

from __future__ import annotations

import numpy as np

from metric_tracker_rl.generation.kinds.base import IncidentKind, SegmentIncident, register_incident_kind
from metric_tracker_rl.generation.kinds.observed import observed_run
from metric_tracker_rl.generation.segment_plan import SegmentWorld
from metric_tracker_rl.world.segments import Segment

DAYS = (1, 3)
LEAST_NEW_OPENS = 40.0  # new users' opens the sample expects on each date, at the least


class OnboardingBreak(IncidentKind):
    name = "onboarding_break"
    family = "rate_drop_from_median"
    entity_names = ("app_open_to_menu_open",)
    requires_fields = ("platform", "user_type")
    segment_meaning = "one platform's new users"
    magnitude_meaning = "relative fall of new users' first step on the platform"
    magnitude_range = (0.6, 0.85)
    magnitude_bounds = (0.0, 0.95)
    description = (
        f"new users' first step falls {100 * magnitude_range[0]:.0f}-{magnitude_range[1]:.0%} for "
        f"{DAYS[0]}-{DAYS[1]} dates"
    )
    definition = "new users on one platform stop getting past the app's first screen for a few dates"

    def place(self, world: SegmentWorld, stream: str, rng: np.random.Generator) -> list[SegmentIncident]:
        platforms = [Segment(platform=p, user_type="new") for p in world.plan.layout.values_of("platform")]
        largest = self.largest_fall(world)
        run = observed_run(
            world, rng, DAYS, platforms, 0, LEAST_NEW_OPENS, lambda s, d: self.clear_at(world, s, d, 0, largest)
        )
        if run is None:
            return []
        days, segment = run
        magnitude = self.draw_magnitude(world, rng)
        if world.only_clear:  # raised where the drawn fall would not be clear, never lowered
            magnitude = max(magnitude, self.clear_in_segment(world, segment, days, 0, magnitude, largest))
        return self.step_drop_over_dates(
            world,
            segment,
            days,
            self.entity_names[0],
            [magnitude] * len(days),
            f"onboarding breaks for {segment.label()}",
        )


register_incident_kind(OnboardingBreak())
