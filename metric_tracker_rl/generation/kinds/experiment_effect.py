"""Benign: an experiment changes the step it targets in its treatment arm (a cuboid of one to three dimensions)
for as long as it runs, as intended; the experiments table lists it. Also the draw of an experiment, which
experiment_breakage shares."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metric_tracker_rl.catalog.dimensions import PLATFORMS
from metric_tracker_rl.catalog.published import FUNNEL_STEPS
from metric_tracker_rl.generation.kinds.base import BenignKind, SegmentFluctuation, register_benign_kind
from metric_tracker_rl.generation.segment_plan import SegmentWorld, pick
from metric_tracker_rl.world.context import Experiment
from metric_tracker_rl.world.funnel import window_calendar
from metric_tracker_rl.world.segments import SEGMENT_FIELDS, Segment

RUN_DAYS = (3, 7)  # dates an experiment runs, inclusive
TARGET_STEPS = (1, 2)  # the cart and the checkout: the steps a product experiment changes (room to rise)
INTENDED_EFFECT = (0.1, 0.3)  # relative change of the targeted step, either way
MIN_ARM_SHARE = 0.05  # an arm on the cells carries this share of all traffic at least


@dataclass(frozen=True)
class DrawnExperiment:
    row: Experiment
    arm: Segment
    days: list[int]
    target_step: int
    effect: float  # relative change of the targeted step in the arm


def experiment_arm(world: SegmentWorld, rng: np.random.Generator, cells_only: bool) -> Segment:
    """A treatment arm. On the leaves: a platform or a country crossed with a channel or a user type. On the cells
    (`cells_only`): a platform, a country, or a platform in a country, that carries MIN_ARM_SHARE of the traffic
    (so that a breakage in it shows at its own grain)."""
    if cells_only:
        return pick(cell_arms(world), rng)
    countries = world.plan.layout.values_of("country")
    first = pick((Segment(platform=pick(PLATFORMS, rng)), Segment(country=pick(countries, rng))), rng)
    split = world.plan.split
    assert split is not None, "an experiment on a channel or user type needs the leaves"
    dimension = pick(split.dimensions, rng)
    return Segment(**{**first.named(), dimension.field: pick(dimension.values, rng)})


def cell_arms(world: SegmentWorld) -> list[Segment]:
    """The arms an experiment on the cells may have: a platform, a country, or a platform in a country, that
    carries MIN_ARM_SHARE of the traffic and names only fields the reset's dimensions allow."""
    countries = world.plan.layout.values_of("country")
    traffic = world.plan.traffic.sum(axis=(1, 2))
    candidates = [
        *(Segment(platform=p) for p in PLATFORMS),
        *(Segment(country=c) for c in countries),
        *(Segment(p, c) for p in PLATFORMS for c in countries),
    ]
    # A reset's dimensions bound a root cause's fields where the tier's root causes are cuboids.
    in_play = set(SEGMENT_FIELDS if world.cuboids is None else world.cuboids.fields)
    return [
        s
        for s in candidates
        if traffic[world.plan.cells(s)].sum() >= MIN_ARM_SHARE * traffic.sum() and set(s.named()) <= in_play
    ]


def leaf_arms(world: SegmentWorld) -> list[Segment]:
    """Every arm an experiment on the leaves may have: a platform or a country crossed with a channel or a user
    type."""
    split = world.plan.split
    assert split is not None, "an experiment on a channel or user type needs the leaves"
    firsts = [
        *(Segment(platform=p) for p in PLATFORMS),
        *(Segment(country=c) for c in world.plan.layout.values_of("country")),
    ]
    return [
        Segment(**{**first.named(), dimension.field: value})
        for first in firsts
        for dimension in split.dimensions
        for value in dimension.values
    ]


def draw_experiment(world: SegmentWorld, rng: np.random.Generator, cells_only: bool = False) -> DrawnExperiment | None:
    """An experiment's arm, dates (taken from the calendar), targeted step and intended effect; None when the
    calendar has no room."""
    days = world.calendar.draw_run(rng, RUN_DAYS)
    if not days:
        return None
    arm = experiment_arm(world, rng, cells_only)
    step = pick(TARGET_STEPS, rng)
    # Either way, half the time; a tier's falling_effect_share makes that share of the rises falls instead.
    effect = float(rng.uniform(*INTENDED_EFFECT)) * (
        1 if rng.random() < 0.5 * (1.0 - world.falling_effect_share) else -1
    )
    dates = window_calendar(world.plan.num_days).iso_dates
    row = Experiment(
        f"exp_{int(rng.integers(1000, 10000))}",
        arm.platform,
        arm.country,
        arm.channel,
        arm.user_type,
        FUNNEL_STEPS[step],
        dates[days[0]],
        dates[days[-1]],
    )
    return DrawnExperiment(row, arm, days, step, effect)


def apply_intended_effect(world: SegmentWorld, experiment: DrawnExperiment) -> None:
    for day in experiment.days:
        world.scale_step(experiment.arm, day, experiment.target_step, 1.0 + experiment.effect)


class ExperimentEffect(BenignKind):
    name = "experiment_effect"
    segment_meaning = "an experiment's treatment arm (a platform or country, with a channel or user type)"
    magnitude_meaning = "relative change of the targeted step, either way"
    magnitude_range = INTENDED_EFFECT
    description = (
        f"its targeted step (cart or checkout) converts {100 * INTENDED_EFFECT[0]:.0f}-"
        f"{INTENDED_EFFECT[1]:.0%} better or worse while it runs ({RUN_DAYS[0]}-{RUN_DAYS[1]} dates); "
        "the experiments table lists it"
    )
    magnitude_bounds = (0.0, 0.5)
    keeps_conversion = False
    needs_context = True

    def place(self, world: SegmentWorld, rng: np.random.Generator) -> SegmentFluctuation | None:
        experiment = draw_experiment(world, rng)
        if experiment is None:
            return None
        apply_intended_effect(world, experiment)
        row = experiment.row
        return SegmentFluctuation(
            self.name,
            experiment.days[0],
            experiment.arm,
            f"experiment {row.experiment} changes {row.target_step} by {experiment.effect:+.0%} in its arm from "
            f"{row.start_date} to {row.end_date}, as intended",
            self.keeps_conversion,
            (row,),
        )


register_benign_kind(ExperimentEffect())
