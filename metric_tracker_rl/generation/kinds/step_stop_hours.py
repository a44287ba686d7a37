"""What the kinds of a service down for a block of hours share: one funnel step almost stops in the segments of
one field (every value of the others) while the arrivals before it come as usual, reported as a funnel break of
that step. A kind names its step, its field, the arrivals its block must expect at the least and how its record
reads; the date, the segment and the block are drawn among those whose sample expects at least that many arrivals
at the step in the block and LEAST_DAY_SHARE of the day's, so the date's own rate falls clearly."""

from __future__ import annotations

import numpy as np

from metric_tracker_rl.generation.anomalies.base import counts_from, hourly_mix_from, rates_through_step
from metric_tracker_rl.generation.kinds.base import IncidentKind, SegmentIncident
from metric_tracker_rl.generation.kinds.cuboid import hour_arrivals
from metric_tracker_rl.generation.kinds.observed import has_leaves, hour_blocks
from metric_tracker_rl.generation.segment_plan import SegmentWorld, pick
from metric_tracker_rl.world.segments import Segment

RESIDUAL = (0.0, 0.06)  # the share of the block's arrivals at the step that still go through
HOUR_WINDOW = (9, 23)  # the busy hours a block lies in
LEAST_DAY_SHARE = 0.3  # the block's share of the day's arrivals at the step, at the least


class StepStopHours(IncidentKind):
    """A step (`step`: 0 app_open to menu_open .. 3 order to payment) almost stops for a block of hours in one value
    of `field`; `clear_block`: the arrivals at the step its sample expects in the block, at the least. The record
    says what is `down` (with `{segment}` where the segment goes) and the stop reaches `across` every value of the
    other fields; the declaration alone sets the fields it requires and its description."""

    family = "funnel_break"
    magnitude_bounds = (1.0, 14.0)
    step: int
    field: str
    clear_block: float
    down: str
    across: str

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.requires_fields = (cls.field,)
        cls.description = f"a block of {cls.magnitude_range[0]:.0f}-{cls.magnitude_range[1]:.0f} hours"

    def what(self, segment: Segment, entity: str, start: int, end: int) -> str:
        """The record's description of the block."""
        return (
            f"{self.down.format(segment=segment.label())}: {entity} almost stops between {start:02d}:00 and "
            f"{end:02d}:00 {self.across}"
        )

    def place(self, world: SegmentWorld, stream: str, rng: np.random.Generator) -> list[SegmentIncident]:
        """`stream` is unused: the stop edits the cells' step rates itself, from `rng`."""
        if not has_leaves(world):
            return []
        day = world.calendar.draw(rng)
        if day is None:
            return []
        low, high = (round(h) for h in self.magnitude_range)
        length = int(rng.integers(low, high + 1))
        placements = self._placements(world, day, length, high)
        if not placements:
            return []
        segment, hours = pick(placements, rng)
        return [self.stop(world, segment, day, hours, rng)]

    def _placements(
        self, world: SegmentWorld, day: int, length: int, longest: int
    ) -> list[tuple[Segment, tuple[int, int]]]:
        """Every value of the field and block of `length` hours that shows the stop; where none does, those of the
        shortest longer block that does (up to `longest`)."""
        segments = [Segment(**{self.field: value}) for value in world.plan.layout.values_of(self.field)]
        arrivals = self.step + 1  # the event whose arrivals the step converts into
        for hours in range(length, longest + 1):
            placements = [
                (segment, block)
                for segment in segments
                for block in hour_blocks(world, segment, day, hours, arrivals, HOUR_WINDOW, self.clear_block)
                if _day_share(world, segment, day, block, arrivals) >= LEAST_DAY_SHARE
            ]
            if placements:
                return placements
        return []

    def stop(
        self, world: SegmentWorld, segment: Segment, day: int, hours: tuple[int, int], rng: np.random.Generator
    ) -> SegmentIncident:
        start, end = hours
        world.scale_step(segment, day, self.step, float(rng.uniform(*RESIDUAL)), hours)
        entity = self.entity_names[0]
        arrivals = self.step + 1
        neutral = (
            {("conversion_rate", entity)}
            | rates_through_step(self.step)
            | counts_from(arrivals)
            | hourly_mix_from(arrivals)
        )
        return self.incident(
            self.record(day, entity, float(end - start), hours, self.what(segment, entity, start, end), neutral),
            segment,
        )


def _day_share(world: SegmentWorld, segment: Segment, day: int, hours: tuple[int, int], event: int) -> float:
    arrivals = hour_arrivals(world, segment, day, event)
    return float(arrivals[slice(*hours)].sum() / max(arrivals.sum(), 1e-9))
