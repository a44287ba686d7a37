"""Payments fail for a block of hours on one mobile platform's live version.

At a tier with cuboids (deep) the platform's live version may be narrowed by a country: its evidence is a block of
hours, which is served per cell only, so its cuboid names cell fields only (`CuboidRule.hourly`), and each hour of
the block carries enough orders to be read (`cuboid.block_readable`); where app_version is out of play (the reset's
`dimensions`), the platform stands for its version."""

from __future__ import annotations

import numpy as np

from metric_tracker_rl.generation.anomalies.base import counts_from, draw_window, hourly_mix_from, rates_through_step
from metric_tracker_rl.generation.kinds.base import IncidentKind, SegmentIncident, register_incident_kind
from metric_tracker_rl.generation.kinds.cuboid import (
    CuboidRule,
    block_readable,
    draw_cuboid,
    hour_arrivals,
    own_z,
    readable_placements,
)
from metric_tracker_rl.generation.segment_plan import SegmentWorld, pick
from metric_tracker_rl.world.segments import MOBILE_PLATFORMS, Segment

PAYMENT_STEP = 3
CUBOID_RULE = CuboidRule(may_name=("country", "channel", "user_type"), hourly=True)
RESIDUAL = (0.0, 0.08)  # the share of payments that still succeed in the failing hours (the funnel break's)
HOUR_WINDOW = (9, 22)  # the hours a funnel break's block lies in
# Orders a block expects, at the least, where its tier raises what its data would not show (SegmentWorld.raise_unclear):
# payments stopping among so many stand out of sampling by a likelihood-ratio z of about eight.
CLEAR_BLOCK_ORDERS = 15.0


class PaymentFailure(IncidentKind):
    name = "payment_failure"
    family = "funnel_break"
    entity_names = ("order_placed_to_payment_successful",)
    segment_meaning = "platform + the version carrying it"
    magnitude_meaning = "hours in which payments nearly stop"
    magnitude_range = (3.0, 7.0)
    description = f"a block of {magnitude_range[0]:.0f}-{magnitude_range[1]:.0f} hours"
    definition = (
        "payments almost stop for a block of hours on a mobile platform's live version (or the platform), "
        "at deep perhaps in one country"
    )
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
        if world.cuboids is not None:  # the tier's root causes are cuboids: the platform alone where versions are out
            base = segment if world.cuboids.versions_in_play else Segment(platform)
            return self._place_cuboid(world, base, day, hours, rng)
        return self.over_dates(world, segment, [day], self.entity_names[0], hours, stream)

    def _place_cuboid(
        self, world: SegmentWorld, base: Segment, day: int, hours: float, rng: np.random.Generator
    ) -> list[SegmentIncident]:
        start, end = draw_window(rng, round(hours), *HOUR_WINDOW)
        if not block_readable(world, base, day, (start, end), PAYMENT_STEP):  # too long to read even there
            placements = readable_placements(
                world, [base], day, round(hours) - 1, self.shortest_block(), PAYMENT_STEP, HOUR_WINDOW
            )
            if placements:
                _, (start, end) = pick(placements, rng)
        if world.raise_unclear:
            start, end = self.widened(world, base, day, (start, end))
        reach = world.plan.leaf_reach([day])
        fall = 1.0 - max(RESIDUAL)
        segment, _ = draw_cuboid(
            world,
            rng,
            CUBOID_RULE,
            [day],
            reach,
            lambda s: own_z(world, reach, s, [day], PAYMENT_STEP, fall, (start, end)),
            base=base,
        )
        return [self.stop_payments(world, segment, day, (start, end), rng)]

    def widened(self, world: SegmentWorld, segment: Segment, day: int, hours: tuple[int, int]) -> tuple[int, int]:
        """Where a sample leaves a block too few orders to show (world.raise_unclear): the block grown an hour at a
        time, later then earlier within HOUR_WINDOW, until it expects CLEAR_BLOCK_ORDERS orders or is as long as
        the kind's range allows."""
        orders = hour_arrivals(world, segment, day, PAYMENT_STEP)
        start, end = hours
        while orders[start:end].sum() < CLEAR_BLOCK_ORDERS and end - start < self.magnitude_range[1]:
            if end < HOUR_WINDOW[1] and (end - start) % 2 == 1 or start == HOUR_WINDOW[0]:
                end += 1
            else:
                start -= 1
        return start, end

    def shortest_block(self) -> int:
        """The fewest hours a block is shortened to where a longer one would not read hour by hour."""
        return max(1, round(self.magnitude_bounds[0]))

    def stop_payments(
        self,
        world: SegmentWorld,
        segment: Segment,
        day: int,
        hours: tuple[int, int],
        rng: np.random.Generator,
        describe: str | None = None,
    ) -> SegmentIncident:
        """Payments in a segment of cells nearly stop in `hours` of `day` (a share drawn from RESIDUAL still
        succeeds); `describe` prefixes the description."""
        start, end = hours
        world.scale_step(segment, day, PAYMENT_STEP, float(rng.uniform(*RESIDUAL)), hours)
        entity = self.entity_names[0]
        neutral = (
            {("conversion_rate", entity)}
            | rates_through_step(PAYMENT_STEP)
            | counts_from(PAYMENT_STEP + 1)
            | hourly_mix_from(PAYMENT_STEP + 1)
        )
        what = f"{entity} almost stops converting between {start:02d}:00 and {end:02d}:00 in {segment.label()}"
        record = self.record(
            day, entity, float(end - start), hours, what if describe is None else f"{describe}: {what}", neutral
        )
        return self.incident(record, segment)


register_incident_kind(PaymentFailure())
