"""Segments the data cannot tell from an incident's own (a tier with `SegmentedMix.twin_z`: abyss).

Two segments one field apart (the smaller one is the larger with one more field named) differ by a slice: the
traffic the larger holds and the smaller does not. Whether an all-day fall of a step's conversion lies in the larger
or only in the smaller shows in that slice alone. Where, on one of the incident's dates, its fall that date would
stand there at an expected z under the tier's `twin_z` (the sizing the brief publishes, kinds/cuboid.own_z's, from
the plan's expected counts), the data of that date cannot tell the two apart, and the grader credits that date's
row on either (its values read from its own segment's data).
Behind the truth wall: it reads the plan.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from metric_tracker_rl.generation.anomalies.base import step_index
from metric_tracker_rl.generation.kinds.base import SegmentIncident
from metric_tracker_rl.generation.kinds.cuboid import COMMON_RATE_SPREAD, LEAF_RATE_SPREAD, field_values, leaf_mask
from metric_tracker_rl.generation.segment_plan import SegmentWorld
from metric_tracker_rl.world.segments import Segment

ALL_DAY = (0, 24)
RATE_ENTITIES = ("conversion_rate", "funnel_step")


def one_field_apart(segment: Segment, fields: tuple[str, ...], world: SegmentWorld) -> list[Segment]:
    """Every segment one field from `segment`, once each: it with one named field left out (a version's platform
    stays: the version is the field), or with one more field named, any of that field's values."""
    named = segment.named()
    coarser = [
        Segment(**{f: v for f, v in named.items() if f != field})
        for field in named
        if not (field == "platform" and "app_version" in named)
    ]
    finer = [
        Segment(**named, **{field: value})
        for field in fields
        if field not in named
        for value in field_values(world, field)
    ]
    return list(dict.fromkeys(other.normalised() for other in (*coarser, *finer)))


def slice_sd(
    world: SegmentWorld, reach: np.ndarray, slice_mask: np.ndarray, step: int, fall: float, fallen: bool
) -> float:
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
    return float(
        np.sqrt((1.0 - rate) / max(rate * arrivals, 1e-9) + LEAF_RATE_SPREAD**2 / units + COMMON_RATE_SPREAD**2)
    )


def twin_segments(
    world: SegmentWorld, incident: SegmentIncident, fields: tuple[str, ...], twin_z: float
) -> tuple[Segment, ...]:
    """The segments one field from the incident's that share its traffic at its step on its date and whose slice
    between them would show its fall that date at an expected z under `twin_z`. None for an incident of hours or of
    counts (the published sizing is an all-day conversion's)."""
    record = incident.record
    if record.hours != ALL_DAY or record.entity_type not in RATE_ENTITIES:
        return ()
    step = step_index(record.entity_name)
    reach = world.plan.leaf_reach([record.day])[:, :, record.day]
    incident_segment = incident.segment.normalised()
    own = leaf_mask(world, incident_segment)
    twins = []
    for other in one_field_apart(incident_segment, fields, world):
        theirs = leaf_mask(world, other)
        if other == incident_segment or float(reach[own & theirs][:, step].sum()) <= 0.0:
            continue
        incident_is_larger = bool((theirs <= own).all())
        between = own & ~theirs if incident_is_larger else theirs & ~own
        if record.magnitude / slice_sd(world, reach, between, step, record.magnitude, incident_is_larger) < twin_z:
            twins.append(other)
    return tuple(twins)


def incident_twins(
    world: SegmentWorld, incidents: Sequence[SegmentIncident], fields: tuple[str, ...], twin_z: float
) -> tuple[tuple[Segment, ...], ...]:
    """Each incident date's twin segments, aligned with `incidents`."""
    return tuple(twin_segments(world, incident, fields, twin_z) for incident in incidents)
