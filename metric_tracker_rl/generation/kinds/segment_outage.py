"""A platform's or a country's traffic collapses for a block of hours; those who come convert as usual.

At a tier with cuboids (deep) its root cause is a cuboid naming a platform or a country, or both: its evidence is a
block of hours, which is served per cell only, so its cuboid names cell fields only (`CuboidRule.hourly`)."""

from __future__ import annotations

import numpy as np

from metric_tracker_rl.generation.anomalies.base import counts_from, draw_window, hourly_mix_from
from metric_tracker_rl.generation.kinds.base import IncidentKind, SegmentIncident, register_incident_kind
from metric_tracker_rl.generation.kinds.cuboid import CuboidRule, draw_cuboid, leaf_mask, own_z
from metric_tracker_rl.generation.segment_plan import SegmentWorld

HOURS = (3, 7)  # the outage's length
CUBOID_RULE = CuboidRule(needs_one_of=("platform", "country"), hourly=True)


class SegmentOutage(IncidentKind):
    name = "segment_outage"
    family = "absolute_drop_in_event_count"
    entity_names = ("app_opens",)
    segment_meaning = "one platform or country"
    magnitude_meaning = "share of the opens lost in the outage's hours"
    magnitude_range = (0.6, 0.9)
    description = f"{100 * magnitude_range[0]:.0f}-{magnitude_range[1]:.0%} of the opens lost in a block of hours"
    magnitude_bounds = (0.05, 0.95)
    definition = (
        "a platform's or a country's opens collapse for a block of hours (at deep, a platform's in one "
        "country perhaps); conversion is unchanged"
    )

    def place(self, world: SegmentWorld, stream: str, rng: np.random.Generator) -> list[SegmentIncident]:
        """`stream` is unused: the outage edits the cells' traffic itself, from `rng`."""
        day = world.calendar.draw(rng)
        if day is None:
            return []
        start, end = draw_window(rng, int(rng.integers(HOURS[0], HOURS[1] + 1)))
        if world.cuboids is not None:  # the tier's root causes are cuboids
            return self._place_cuboid(world, day, (start, end), rng)
        segment = world.one_dimension(rng)
        cells = world.plan.cells(segment)
        traffic = world.plan.traffic
        drop = self.draw_magnitude(world, rng)
        lost = drop * traffic[cells, day, start:end].sum() / traffic[cells, day].sum()
        traffic[cells, day, start:end] *= 1.0 - drop
        record = self.record(
            day,
            self.entity_names[0],
            float(lost),
            (start, end),
            f"{segment.label()} loses {drop:.0%} of its app opens between {start:02d}:00 and "
            f"{end:02d}:00 (an outage); conversion is unchanged",
            counts_from(1) | hourly_mix_from(0),
        )
        return [self.incident(record, segment)]

    def _place_cuboid(
        self, world: SegmentWorld, day: int, hours: tuple[int, int], rng: np.random.Generator
    ) -> list[SegmentIncident]:
        drop = self.draw_magnitude(world, rng)
        plan = world.plan
        reach = plan.leaf_reach([day])
        segment, boost = draw_cuboid(
            world,
            rng,
            CUBOID_RULE,
            [day],
            reach,
            lambda s: own_z(world, reach, s, [day], -1, drop, hours),
            max_boost=self.magnitude_bounds[1] / drop,
            min_boost=self.magnitude_bounds[0] / drop,
        )
        drop *= boost
        before = float(reach[leaf_mask(world, segment)][:, day, 0].sum())
        world.scale_traffic(segment, day, 1.0 - drop, hours)
        after = float(plan.leaf_reach([day])[leaf_mask(world, segment)][:, day, 0].sum())
        start, end = hours
        record = self.record(
            day,
            self.entity_names[0],
            1.0 - after / before,
            hours,
            f"{segment.label()} loses {drop:.0%} of its app opens between {start:02d}:00 and "
            f"{end:02d}:00 (an outage); conversion is unchanged",
            counts_from(1) | hourly_mix_from(0),
        )
        return [self.incident(record, segment)]


register_incident_kind(SegmentOutage())
