"""Benign: a low-converting segment's traffic grows all day, its own conversion unchanged (the aggregate's falls)."""

from __future__ import annotations

import numpy as np

from metric_tracker_rl.generation.kinds.base import BenignKind, register_benign_kind
from metric_tracker_rl.generation.segment_plan import SegmentWorld, pick
from metric_tracker_rl.world.segments import Segment

LOW_CONVERTING = (Segment(platform="web"), Segment(country="IN"), Segment(country="BR"))


class MixShift(BenignKind):
    name = "mix_shift"
    segment_meaning = "web, BR or IN (a low-converting segment)"
    magnitude_meaning = "extra traffic as a share of the segment's day"
    magnitude_range = (0.4, 1.2)
    description = (
        f"{100 * magnitude_range[0]:.0f}-{magnitude_range[1]:.0%} more traffic all day; the aggregate's "
        "conversion falls while every segment's own conversion is unchanged"
    )
    magnitude_bounds = (0.0, 5.0)

    def apply(self, world: SegmentWorld, day: int, rng: np.random.Generator) -> tuple[Segment, str]:
        segment = pick(LOW_CONVERTING, rng)
        surge = self.draw_magnitude(world, rng)
        world.plan.traffic[world.plan.cells(segment), day] *= 1.0 + surge
        return segment, (
            f"{segment.label()} (a low-converting segment) had {surge:.0%} more traffic all day; its own "
            "conversion, and every other segment's, is unchanged"
        )


register_benign_kind(MixShift())
