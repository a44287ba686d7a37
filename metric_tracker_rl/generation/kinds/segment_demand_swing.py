"""Benign: one platform's or country's demand rises or falls all day, every event and hour together."""

from __future__ import annotations

import numpy as np

from metric_tracker_rl.generation.kinds.base import BenignKind, register_benign_kind
from metric_tracker_rl.generation.segment_plan import SegmentWorld
from metric_tracker_rl.world.segments import Segment


class SegmentDemandSwing(BenignKind):
    name = "segment_demand_swing"
    segment_meaning = "one platform or country"
    magnitude_meaning = "relative change of the segment's traffic, either way"
    magnitude_range = (0.2, 0.5)
    description = (
        f"rises or falls {100 * magnitude_range[0]:.0f}-{magnitude_range[1]:.0%} all day, every event and hour together"
    )
    magnitude_bounds = (0.0, 0.95)

    def apply(self, world: SegmentWorld, day: int, rng: np.random.Generator) -> tuple[Segment, str]:
        segment = world.one_dimension(rng)
        swing = self.draw_magnitude(world, rng) * (1 if rng.random() < 0.5 else -1)
        world.plan.traffic[world.plan.cells(segment), day] *= 1.0 + swing
        return segment, (
            f"demand in {segment.label()} {'rose' if swing > 0 else 'fell'} by {abs(swing):.0%} all "
            "day: every event and hour together"
        )


register_benign_kind(SegmentDemandSwing())
