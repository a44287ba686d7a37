"""A release breaks a late funnel step on its new version only, from its rollout's first date until a fix."""

from __future__ import annotations

import numpy as np

from metric_tracker_rl.incident_kinds.base import IncidentKind, SegmentIncident, register_incident_kind
from metric_tracker_rl.segment_plan import SegmentWorld, pick
from metric_tracker_rl.segments import Segment

DAYS = (3, 6)  # dates the new version stays broken, one row each


class ReleaseRegression(IncidentKind):
    name = "release_regression"
    family = "rate_drop_from_median"
    entity_names = ("order_placed_to_payment_successful", "product_added_to_cart_to_order_placed")
    segment_meaning = "platform + the new version"
    magnitude_meaning = "relative fall of the step's conversion on the new version"
    magnitude_range = (0.25, 0.55)
    description = (f"from the rollout's first date until a fix ({DAYS[0]}-{DAYS[1]} dates, one row each); the "
                   "aggregate's drop grows with the rollout")
    magnitude_bounds = (0.0, 0.95)

    def place(self, world: SegmentWorld, stream: str, rng: np.random.Generator) -> list[SegmentIncident]:
        releases = world.plan.releases
        release = releases[int(rng.integers(len(releases)))]
        length = int(rng.integers(DAYS[0], DAYS[1] + 1))
        days = [release.start_day + i for i in range(length)]
        if not all(world.calendar.free(d) for d in days):
            return []
        for day in days:
            world.calendar.take(day)
        entity = pick(self.entity_names, rng)
        magnitude = self.draw_magnitude(world, rng)
        return self.over_dates(world, Segment(release.platform, None, release.version), days, entity, magnitude,
                               stream, f"release {release.version} on {release.platform} breaks {entity} on the new "
                                       f"version (drop {magnitude:.0%}) until a fix")


register_incident_kind(ReleaseRegression())
