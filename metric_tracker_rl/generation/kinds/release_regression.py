"""A release breaks a late funnel step on its new version only, from its rollout's first date until a fix.

At a tier with cuboids (deep) the version (with its platform) may be narrowed by up to two of country, channel and
user type (a build that breaks for new users in one country): its evidence is daily."""

from __future__ import annotations

import numpy as np

from metric_tracker_rl.generation.anomalies.base import step_index
from metric_tracker_rl.generation.kinds.base import IncidentKind, SegmentIncident, register_incident_kind
from metric_tracker_rl.generation.kinds.cuboid import CuboidRule, draw_cuboid, enough_data, leaf_mask, own_z
from metric_tracker_rl.generation.segment_plan import SegmentWorld, pick
from metric_tracker_rl.world.segments import REGRESSION_DAYS, REGRESSION_STEPS, Segment

DAYS = REGRESSION_DAYS  # dates the new version stays broken, one row each (the brief publishes them)
CUBOID_RULE = CuboidRule(may_name=("country", "channel", "user_type"))


class ReleaseRegression(IncidentKind):
    name = "release_regression"
    family = "rate_drop_from_median"
    entity_names = REGRESSION_STEPS
    requires_fields = ("app_version",)
    segment_meaning = "platform + the new version"
    magnitude_meaning = "relative fall of the step's conversion on the new version"
    magnitude_range = (0.25, 0.55)
    definition = "a release breaks a step calendar_note_kinds.release names, on its new version"
    description = (
        f"from the rollout's first date until a fix ({DAYS[0]}-{DAYS[1]} dates, one row each); the "
        "aggregate's drop grows with the rollout"
    )
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
        if world.cuboids is not None:  # the tier's root causes are cuboids
            return self._place_cuboid(world, release.platform, release.version, days, entity, magnitude, rng)
        return self.over_dates(
            world,
            Segment(release.platform, None, release.version),
            days,
            entity,
            magnitude,
            stream,
            f"release {release.version} on {release.platform} breaks {entity} on the new "
            f"version (drop {magnitude:.0%}) until a fix",
        )

    def _place_cuboid(
        self,
        world: SegmentWorld,
        platform: str,
        version: str,
        days: list[int],
        entity: str,
        magnitude: float,
        rng: np.random.Generator,
    ) -> list[SegmentIncident]:
        """The release's version, narrowed to a cuboid clear on the run's last date (its rollout's widest)."""
        reach = world.plan.leaf_reach(days)
        step = step_index(entity)
        segment, boost = draw_cuboid(
            world,
            rng,
            CUBOID_RULE,
            days,
            reach,
            lambda s: (
                own_z(world, reach, s, days[-1:], step, magnitude)
                if enough_data(reach, leaf_mask(world, s), days, step)
                else 0.0
            ),
            base=Segment(platform, None, version),
            max_boost=self.largest_fall(world) / magnitude,
            min_boost=self.magnitude_bounds[0] / magnitude,
        )
        return self.step_drop_over_dates(
            world,
            segment,
            days,
            entity,
            [magnitude * boost] * len(days),
            f"release {version} on {platform} breaks {entity}",
        )


register_incident_kind(ReleaseRegression())
