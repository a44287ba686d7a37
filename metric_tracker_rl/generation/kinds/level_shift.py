"""One step converts worse in one platform or country for several dates, until a fix.

At a tier with cuboids (deep) its root cause is a cuboid of any fields in play but app_version (a version belongs
to the release kinds), e.g. web ∧ paid_social or android ∧ IN ∧ new: its evidence is daily, so it needs no cell
part. There it also follows a rollout: the first date carries part of the fall, the middle dates all of it, and
the last date has partly recovered (each date its own row)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from metric_tracker_rl.catalog.published import FUNNEL_STEPS
from metric_tracker_rl.generation.anomalies.base import step_index
from metric_tracker_rl.generation.kinds.base import IncidentKind, SegmentIncident, register_incident_kind
from metric_tracker_rl.generation.kinds.cuboid import CuboidRule, draw_cuboid, own_z
from metric_tracker_rl.generation.segment_plan import SegmentWorld, pick
from metric_tracker_rl.world.segments import Segment

DAYS = (2, 5)
CUBOID_RULE = CuboidRule()
# At deep, the share of the fall on each date of a run: growing on its first date, recovering on its last.
ROLLOUT_RAMP = (0.8, 1.0, 0.85)


class LevelShift(IncidentKind):
    name = "level_shift"
    family = "rate_drop_from_median"
    entity_names = FUNNEL_STEPS
    segment_meaning = "one platform or country"
    magnitude_meaning = "relative fall of the step's conversion in the segment"
    magnitude_range = (0.22, 0.45)
    description = (
        f"a {100 * magnitude_range[0]:.0f}-{magnitude_range[1]:.0%} lower step for {DAYS[0]}-{DAYS[1]} "
        "dates until a fix: it contaminates no same-weekday peer of its own dates, but a second one on the "
        "same weekday would"
    )
    magnitude_bounds = (0.0, 0.95)
    definition = (
        f"a step converts worse all day in a segment for {DAYS[0]}-{DAYS[1]} dates in a row until a fix "
        f"(at deep {ROLLOUT_RAMP[0]:g} of the full fall on its first date, {ROLLOUT_RAMP[2]:g} on "
        "its last, all of it between)"
    )

    def place(self, world: SegmentWorld, stream: str, rng: np.random.Generator) -> list[SegmentIncident]:
        days = world.calendar.draw_run(rng, DAYS)
        if not days:
            return []
        if world.cuboids is not None:  # the tier's root causes are cuboids
            return self._place_cuboid(world, days, rng)
        segment = world.one_dimension(rng, ("country", "platform"))
        entity = pick(self.entity_names, rng)
        magnitude = self.draw_magnitude(world, rng)
        return self.over_dates(world, segment, days, entity, magnitude, stream)

    def _place_cuboid(self, world: SegmentWorld, days: list[int], rng: np.random.Generator) -> list[SegmentIncident]:
        entity = pick(self.entity_names, rng)
        magnitude = self.draw_magnitude(world, rng)
        shares = ramp(len(days))
        step = step_index(entity)
        reach = world.plan.leaf_reach(days)
        segment, boost = draw_cuboid(
            world,
            rng,
            CUBOID_RULE,
            days,
            reach,
            lambda s: own_z(world, reach, s, days, step, magnitude * min(shares)),
            max_boost=self.largest_fall(world) / magnitude,
            min_boost=self.magnitude_bounds[0] / magnitude,
        )
        magnitude *= boost
        return self.step_drop_over_dates(world, segment, days, entity, [magnitude * share for share in shares])

    def place_concurrent(
        self, world: SegmentWorld, host: SegmentIncident, taken: set[str], rng: np.random.Generator
    ) -> SegmentIncident | None:
        """A second incident on the host's date, in a cuboid overlapping the host's (it keeps one of the host's
        values and agrees with every field both name), on a step none of `taken` (the date's entities) names; one
        date. None when every step is taken, or (world.only_clear) when it would not be clear in its own
        data even at the largest fall."""
        free = [entity for entity in self.entity_names if entity not in taken]
        if not free:
            return None
        day = host.record.day
        entity = pick(free, rng)
        magnitude = self.draw_magnitude(world, rng)
        step = step_index(entity)
        named = {f: v for f, v in host.segment.named().items() if f != "app_version"} or {"platform": "web"}
        field = pick(tuple(named), rng)
        reach = world.plan.leaf_reach([day])
        segment, boost = draw_cuboid(
            world,
            rng,
            CUBOID_RULE,
            [day],
            reach,
            lambda s: own_z(world, reach, agree(s, host.segment), [day], step, magnitude),
            base=Segment(**{field: named[field]}),
            max_boost=self.largest_fall(world) / magnitude,
            min_boost=self.magnitude_bounds[0] / magnitude,
        )
        segment = agree(segment, host.segment)
        if world.only_clear and own_z(world, reach, segment, [day], step, magnitude * boost) < world.own_z[0]:
            return None
        return self.step_drop_over_dates(world, segment, [day], entity, [magnitude * boost])[0]


def agree(segment: Segment, host: Segment) -> Segment:
    """The segment with the host's value on every field both name (so the two overlap)."""
    shared = {f: v for f, v in host.named().items() if f in segment.named() and f != "app_version"}
    return replace(segment, **shared)


def ramp(length: int) -> list[float]:
    """Each date's share of the full fall over a run of `length` dates (ROLLOUT_RAMP's first, middle and last)."""
    if length == 1:
        return [1.0]
    first, middle, last = ROLLOUT_RAMP
    return [first] + [middle] * (length - 2) + [last]


register_incident_kind(LevelShift())
