"""What an episode's sample of a segment is expected to hold: the kinds a business meets beside the deep tier's
(checkout outages, paid channels stopping, price rises, promotions) size themselves by it, so that the segment they
pick shows the change in the data an episode publishes rather than in the world behind it."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from metric_tracker_rl.generation.kinds.cuboid import hour_arrivals, leaf_mask
from metric_tracker_rl.generation.segment_plan import SegmentWorld, pick
from metric_tracker_rl.world.segments import Segment


def daily_arrivals(world: SegmentWorld, segment: Segment, days: Sequence[int], event: int) -> np.ndarray:
    """(len(days),) the segment's expected observed arrivals at `event` (0 app_open .. 4 payment) on each date."""
    reach = world.plan.leaf_reach(days)
    return reach[leaf_mask(world, segment)][:, list(days), event].sum(axis=0) * world.observed_share


def holding(
    world: SegmentWorld, segments: Sequence[Segment], days: Sequence[int], event: int, least: float
) -> list[Segment]:
    """The segments whose sample expects at least `least` arrivals at `event` on every one of `days`."""
    return [segment for segment in segments if daily_arrivals(world, segment, days, event).min() >= least]


def hour_blocks(
    world: SegmentWorld, segment: Segment, day: int, length: int, event: int, within: tuple[int, int], least: float
) -> list[tuple[int, int]]:
    """The blocks of `length` hours inside `within` whose sample expects at least `least` arrivals at `event`."""
    arrivals = hour_arrivals(world, segment, day, event)
    return [
        (start, start + length)
        for start in range(within[0], within[1] - length + 1)
        if arrivals[start : start + length].sum() >= least
    ]


def has_leaves(world: SegmentWorld) -> bool:
    """Whether the world splits its cells by channel and user type (a daily-only segment needs leaves)."""
    return world.plan.split is not None


def observed_run(
    world: SegmentWorld,
    rng: np.random.Generator,
    lengths: tuple[int, int],
    segments: Sequence[Segment],
    event: int,
    least: float,
    clear: Callable[[Segment, list[int]], bool] | None = None,
) -> tuple[list[int], Segment] | None:
    """A run of dates of a drawn length and, drawn among `segments`, one whose sample expects at least `least`
    arrivals at `event` on each of them and where the kind's change would be `clear` on them (None: no leaves, no
    room in the calendar, or no such segment)."""
    if not has_leaves(world):
        return None
    days = world.calendar.draw_run(rng, lengths)
    options = holding(world, segments, days, event, least) if days else []
    if clear is not None:
        options = [segment for segment in options if clear(segment, days)]
    return (days, pick(options, rng)) if options else None
