"""Concurrency inside one cuboid: a second incident in the very cuboid of one already placed, on the same date and
another step; and an experiment whose intended effect moves another step in an incident's own cuboid on its date.

An analyst who explains a cuboid's date by the first change it finds and sets the cuboid aside misses the second
one; one who dismisses a cuboid because an experiment's arm covers it dismisses the incident beside the effect.
Both keep the published rules: the second incident's step is none the date's incidents report or move (its row's
key and numbers are its own), and the experiment's target step is none an incident reports or moves on its dates
in a cuboid its arm shares traffic with (confounders.experiment_beside), so it explains its own step only.
Behind the truth wall: it reads the plan.
"""

from __future__ import annotations

from collections.abc import Sequence

from metric_tracker_rl.catalog.published import FUNNEL_STEPS
from metric_tracker_rl.catalog.seeding import derive_rng
from metric_tracker_rl.generation.anomalies.base import step_index
from metric_tracker_rl.generation.confounders import experiment_beside
from metric_tracker_rl.generation.kinds import (
    INCIDENT_KIND_REGISTRY,
    SegmentFluctuation,
    SegmentIncident,
    date_entities,
)
from metric_tracker_rl.generation.kinds.cuboid import own_z, scale_factor
from metric_tracker_rl.generation.kinds.experiment_effect import TARGET_STEPS
from metric_tracker_rl.generation.segment_plan import SegmentWorld, pick
from metric_tracker_rl.world.funnel import window_calendar
from metric_tracker_rl.world.segments import Segment

SECOND_KIND = "level_shift"  # the second incident is a one-date step fall, reported as this kind


def second_incidents(world: SegmentWorld, incidents: Sequence[SegmentIncident], dates: int) -> list[SegmentIncident]:
    """Up to `dates` one-date step falls, each in the cuboid of an incident already placed (hosts drawn without
    replacement: one a date and one an incident), on a step the date's incidents leave free; its fall raised or
    lowered to be clear in the cuboid's own data, as every cuboid root cause's."""
    rng = derive_rng(world.key, "same-cuboid")
    kind = INCIDENT_KIND_REGISTRY[SECOND_KIND]
    iso = window_calendar(world.plan.num_days).iso_dates
    out: list[SegmentIncident] = []
    used: set[int] = set()
    hosts: set[tuple[Segment, int]] = set()  # an incident hosts one second incident, on one of its dates
    for position in rng.permutation(len(incidents)):
        host = incidents[int(position)]
        day = host.record.day
        if len(out) == dates:
            break
        incident = (host.segment, host.record.continues if host.record.continues is not None else day)
        if day in used or incident in hosts or host.segment.normalised().is_aggregate:
            continue
        free = [step for step in kind.entity_names if step not in date_entities([*incidents, *out], day, iso)]
        if not free:
            continue
        entity = pick(free, rng)
        magnitude = kind.draw_magnitude(world, rng)
        reach = world.plan.leaf_reach([day])
        z = own_z(world, reach, host.segment, [day], step_index(entity), magnitude)
        boost = min(scale_factor(z, world, kind.magnitude_bounds[0] / magnitude), kind.largest_fall(world) / magnitude)
        used.add(day)
        hosts.add(incident)
        out += kind.step_drop_over_dates(
            world, host.segment, [day], entity, [magnitude * boost], "a second incident in the same cuboid"
        )
    return out


def effects_beside(
    world: SegmentWorld, incidents: Sequence[SegmentIncident], fluctuations: Sequence[SegmentFluctuation], count: int
) -> list[SegmentFluctuation]:
    """Up to `count` experiments, each with its arm on an incident's own cuboid (its fields but a version) over
    its first date, targeting another step (cart or checkout) that explains no incident on its dates."""
    rng = derive_rng(world.key, "effect-beside")
    firsts = [i for i in incidents if i.record.continues is None]
    placed: list[SegmentFluctuation] = []
    for position in rng.permutation(len(firsts)):
        if len(placed) == count:
            break
        host = firsts[int(position)]
        arm = Segment(**{f: v for f, v in host.segment.named().items() if f != "app_version"})
        if arm.is_aggregate:
            continue
        steps = [FUNNEL_STEPS[s] for s in TARGET_STEPS if FUNNEL_STEPS[s] != host.record.entity_name]
        context = [row for f in [*fluctuations, *placed] for row in f.context]
        made = experiment_beside(world, host, incidents, context, rng, arm, steps)
        if made is not None:
            placed.append(made)
    return placed
