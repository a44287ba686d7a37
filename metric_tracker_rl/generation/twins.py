"""Segments the data cannot tell from an incident's own (a tier with `SegmentedMix.twin_z`: abyss).

Two segments one field apart (the smaller one is the larger with one more field named) differ by a slice: the
traffic the larger holds and the smaller does not. Whether an all-day fall of a step's conversion lies in the larger
or only in the smaller shows in that slice alone; where the fall would stand there at an expected z under the tier's
`twin_z`, by the sizing the brief publishes (kinds/cuboid.own_z's, from the plan's expected counts), the data cannot
tell the two apart, and the grader credits a row on either (its values read from its own segment's data).
Behind the truth wall: it reads the plan.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from metric_tracker_rl.generation.anomalies.base import step_index
from metric_tracker_rl.generation.kinds.base import SegmentIncident
from metric_tracker_rl.generation.kinds.cuboid import COMMON_RATE_SPREAD, LEAF_RATE_SPREAD, field_values, leaf_mask
from metric_tracker_rl.generation.segment_plan import SegmentWorld
from metric_tracker_rl.world.segments import Segment

ALL_DAY = (0, 24)
RATE_ENTITIES = ("conversion_rate", "funnel_step")


def one_field_apart(segment: Segment, fields: tuple[str, ...], world: SegmentWorld) -> Iterator[Segment]:
    """Every segment one field from `segment`: it with one named field left out (a version's platform stays: the
    version is the field), or with one more field named, any of that field's values."""
    named = segment.named()
    for field in named:
        if field == "platform" and "app_version" in named:
            continue
        yield Segment(**{f: v for f, v in named.items() if f != field}).normalised()
    for field in fields:
        if field not in named:
            for value in field_values(world, field):
                yield Segment(**named, **{field: value}).normalised()


def slice_sd(world: SegmentWorld, reach: np.ndarray, slice_mask: np.ndarray, step: int, fall: float,
             fallen: bool) -> float:
    """The relative sd of step `step`'s conversion in the leaves of `slice_mask` on one date (`reach`: the plan's
    (S, K, 5) expected counts that date), by the published sizing: sqrt((1 - p) / (p n) + LEAF_RATE_SPREAD^2 / L
    + COMMON_RATE_SPREAD^2), n its arrivals at the step, p its conversion without the incident's `fall` (`fallen`:
    the plan's counts hold it, so it is undone), L its leaves with arrivals. Infinite without arrivals."""
    mine = reach[slice_mask] * world.observed_share
    arrivals = float(mine[:, step].sum())
    if arrivals <= 0.0:
        return float("inf")
    rate = float(mine[:, step + 1].sum()) / arrivals
    rate = min(rate / (1.0 - fall) if fallen else rate, 1.0)
    units = int((mine[:, step] > 0).sum())
    return float(np.sqrt((1.0 - rate) / max(rate * arrivals, 1e-9) + LEAF_RATE_SPREAD ** 2 / units
                         + COMMON_RATE_SPREAD ** 2))


def sized_dates(run: Sequence[SegmentIncident]) -> list[SegmentIncident]:
    """The dates an incident is sized on, as the brief publishes: all of them, a release_regression's last only."""
    return list(run[-1:]) if run[0].kind == "release_regression" else list(run)


def twin_segments(world: SegmentWorld, run: Sequence[SegmentIncident], fields: tuple[str, ...],
                  twin_z: float) -> tuple[Segment, ...]:
    """The segments one field from an incident's (`run`: its dates, in order) that share traffic with it at its
    step and whose slice between them would show its fall at an expected z under `twin_z`: its smallest daily fall
    over the largest sd of its sized dates, as the incident itself is sized. None for an incident of hours or of
    counts (the published sizing is an all-day conversion's)."""
    first = run[0].record
    if first.hours != ALL_DAY or first.entity_type not in RATE_ENTITIES:
        return ()
    step = step_index(first.entity_name)
    dates = sized_dates(run)
    reach = world.plan.leaf_reach([i.record.day for i in run])
    own = leaf_mask(world, run[0].segment)
    fall = min(i.record.magnitude for i in dates)
    twins = []
    for other in one_field_apart(run[0].segment.normalised(), fields, world):
        if other == run[0].segment.normalised():
            continue
        theirs = leaf_mask(world, other)
        if float(reach[own & theirs][..., step].sum()) <= 0.0:
            continue
        incident_is_larger = bool((theirs <= own).all())
        between = own & ~theirs if incident_is_larger else theirs & ~own
        sd = max(slice_sd(world, reach[:, :, i.record.day], between, step, i.record.magnitude, incident_is_larger)
                 for i in dates)
        if fall / sd < twin_z:
            twins.append(other)
    return tuple(twins)


def incident_twins(world: SegmentWorld, incidents: Sequence[SegmentIncident], fields: tuple[str, ...],
                   twin_z: float) -> tuple[tuple[Segment, ...], ...]:
    """Each incident date's twin segments (aligned with `incidents`): those of the incident it is a date of."""
    runs: dict[tuple[str, int, str, Segment], list[SegmentIncident]] = {}
    for incident in incidents:
        record = incident.record
        first = record.day if record.continues is None else record.continues
        runs.setdefault((incident.kind, first, record.entity_name, incident.segment), []).append(incident)
    twins = {key: twin_segments(world, sorted(run, key=lambda i: i.record.day), fields, twin_z)
             for key, run in runs.items()}
    return tuple(twins[(i.kind, i.record.day if i.record.continues is None else i.record.continues,
                        i.record.entity_name, i.segment)] for i in incidents)
