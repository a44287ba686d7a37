"""Payments fail for a block of hours on one mobile platform's live version.

At a tier with cuboids (deep) the platform's live version may be narrowed by up to two of country, channel and
user type (a payment method that fails for one channel's users): its evidence is hourly, which shows at the cell
grain only, so it keeps its platform and version part (the hours show there, diluted by the cuboid's share); where
app_version is out of play (the reset's `dimensions`), its platform part."""

from __future__ import annotations

import numpy as np

from metric_tracker_rl.anomalies.base import counts_from, draw_window, hourly_mix_from, rates_through_step
from metric_tracker_rl.incident_kinds.base import IncidentKind, SegmentIncident, register_incident_kind
from metric_tracker_rl.incident_kinds.cuboid import CuboidRule, draw_cuboid, own_z
from metric_tracker_rl.segment_plan import SegmentWorld, pick
from metric_tracker_rl.segments import MOBILE_PLATFORMS, Segment

PAYMENT_STEP = 3
CUBOID_RULE = CuboidRule(may_name=("country", "channel", "user_type"))
RESIDUAL = (0.0, 0.08)  # the share of payments that still succeed in the failing hours (the funnel break's)
HOUR_WINDOW = (9, 22)  # the hours a funnel break's block lies in


class PaymentFailure(IncidentKind):
    name = "payment_failure"
    family = "funnel_break"
    entity_names = ("order_placed_to_payment_successful",)
    segment_meaning = "platform + the version carrying it"
    magnitude_meaning = "hours in which payments nearly stop"
    magnitude_range = (3.0, 7.0)
    description = f"a block of {magnitude_range[0]:.0f}-{magnitude_range[1]:.0f} hours"
    definition = ("payments almost stop for a block of hours on a mobile platform's live version (or the platform), "
                  "at deep perhaps for some users")
    magnitude_bounds = (1.0, 13.0)  # the funnel break's window fits 09:00 to 22:00

    def draw_magnitude(self, world: SegmentWorld, rng: np.random.Generator) -> float:
        """A whole number of hours."""
        low, high = self.magnitude_range_at(world.magnitude_scale)
        return float(rng.integers(round(low), round(high) + 1))

    def place(self, world: SegmentWorld, stream: str, rng: np.random.Generator) -> list[SegmentIncident]:
        day = world.calendar.draw(rng)
        if day is None:
            return []
        platform = pick(MOBILE_PLATFORMS, rng)
        segment = Segment(platform, None, world.live_version(platform, day))
        hours = self.draw_magnitude(world, rng)
        if world.max_cuboid_depth:  # the platform alone where versions are out of play
            base = segment if "app_version" in world.cuboid_fields else Segment(platform)
            return self._place_cuboid(world, base, day, hours, rng)
        return self.over_dates(world, segment, [day], self.entity_names[0], hours, stream)

    def _place_cuboid(self, world: SegmentWorld, base: Segment, day: int, hours: float, rng: np.random.Generator
                      ) -> list[SegmentIncident]:
        start, end = draw_window(rng, round(hours), *HOUR_WINDOW)
        reach = world.plan.leaf_reach([day])
        fall = 1.0 - max(RESIDUAL)
        segment, _ = draw_cuboid(world, rng, CUBOID_RULE, [day], reach,
                                 lambda s: own_z(world, reach, s, [day], PAYMENT_STEP, fall, (start, end)),
                                 base=base)
        world.scale_step(segment, day, PAYMENT_STEP, float(rng.uniform(*RESIDUAL)), (start, end))
        entity = self.entity_names[0]
        neutral = ({("conversion_rate", entity)} | rates_through_step(PAYMENT_STEP) | counts_from(PAYMENT_STEP + 1)
                   | hourly_mix_from(PAYMENT_STEP + 1))
        record = self.record(day, entity, float(end - start), (start, end),
                             f"{entity} almost stops converting between {start:02d}:00 and {end:02d}:00 in "
                             f"{segment.label()}", neutral)
        return [self.incident(record, segment)]


register_incident_kind(PaymentFailure())
