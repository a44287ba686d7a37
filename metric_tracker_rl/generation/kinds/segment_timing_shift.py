"""Benign: one platform or country uses the app a few hours earlier or later; totals and conversion unchanged."""

from __future__ import annotations

import numpy as np

from metric_tracker_rl.generation.kinds.base import BenignKind, register_benign_kind
from metric_tracker_rl.generation.segment_plan import SegmentWorld, pick
from metric_tracker_rl.world.segments import Segment


class SegmentTimingShift(BenignKind):
    name = "segment_timing_shift"
    segment_meaning = "one platform or country"
    magnitude_meaning = "hours earlier or later"
    magnitude_range = (1.0, 3.0)
    description = (
        f"uses the app {magnitude_range[0]:.0f}-{magnitude_range[1]:.0f} hours earlier or later; totals and "
        "conversion unchanged"
    )
    magnitude_bounds = (1.0, 12.0)

    def draw_magnitude(self, world: SegmentWorld, rng: np.random.Generator) -> float:
        """A whole number of hours, each equally likely."""
        low, high = self.magnitude_range_at(world.magnitude_scale)
        return float(pick(range(round(low), round(high) + 1), rng))

    def apply(self, world: SegmentWorld, day: int, rng: np.random.Generator) -> tuple[Segment, str]:
        segment = world.one_dimension(rng)
        cells = world.plan.cells(segment)
        hours = int(self.draw_magnitude(world, rng)) * (1 if rng.random() < 0.5 else -1)
        plan = world.plan
        plan.traffic[cells, day] = np.roll(plan.traffic[cells, day], hours, axis=1)
        plan.step_rates[cells, day] = np.roll(plan.step_rates[cells, day], hours, axis=1)
        return segment, (
            f"{segment.label()} used the app about {abs(hours)} hour(s) "
            f"{'later' if hours > 0 else 'earlier'} than usual; totals and conversion unchanged"
        )


register_benign_kind(SegmentTimingShift())
