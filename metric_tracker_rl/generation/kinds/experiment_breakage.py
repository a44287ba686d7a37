"""An experiment breaks a step it does not target in its treatment arm for as long as it runs (its targeted step
changes as intended as well); the experiments table lists the experiment, not the breakage.

Where the episode's dial allows cuboids of two dimensions with a channel or user type, the arm is such a cuboid
(a platform or a country crossed with a channel or a user type, as a benign experiment's), its fall raised or
lowered to be clear in its own data as every cuboid root cause is (kinds/cuboid.py); where that arm cannot
be made clear, or the dial has no such cuboid, the arm is a platform, a country or both (cells). Where a sample
leaves most arms thin (the warehouse), the arm is a small one that can be made clear, and the step may nearly stop."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from metric_tracker_rl.catalog.published import FUNNEL_STEPS
from metric_tracker_rl.generation.anomalies.base import step_index
from metric_tracker_rl.generation.kinds.base import IncidentKind, SegmentIncident, register_incident_kind
from metric_tracker_rl.generation.kinds.cuboid import own_z, scale_factor
from metric_tracker_rl.generation.kinds.experiment_effect import (
    RUN_DAYS,
    DrawnExperiment,
    apply_intended_effect,
    cell_arms,
    draw_experiment,
    experiment_arm,
    leaf_arms,
)
from metric_tracker_rl.generation.segment_plan import SegmentWorld, pick
from metric_tracker_rl.world.segments import Segment

LEAF_FIELDS = ("channel", "user_type")
BROKEN_FALL = 0.9  # the most a broken step falls where its arm is raised to be clear in a sample


class ExperimentBreakage(IncidentKind):
    name = "experiment_breakage"
    family = "rate_drop_from_median"
    entity_names = FUNNEL_STEPS
    segment_meaning = (
        "an experiment's treatment arm: a platform or a country with a channel or a user type where "
        "the dial allows such cuboids and the arm's fall can be made clear (raised or lowered as a "
        "cuboid's), else a platform, a country or both with 5% of the traffic"
    )
    magnitude_meaning = "relative fall of the step it does not target, in its arm"
    magnitude_range = (0.35, 0.55)  # past any intended effect, so the broken step is the one that moved most
    description = (
        f"a step it does not target falls in its arm on every date it runs ({RUN_DAYS[0]}-{RUN_DAYS[1]}, "
        "one row each); the experiments table lists the experiment"
    )
    magnitude_bounds = (0.0, 0.95)
    definition = (
        f"an experiment breaks a step it does not target in its arm on each date it runs ({RUN_DAYS[0]}-"
        f"{RUN_DAYS[1]}); the experiments table lists the experiment"
    )
    needs_context = True

    def place(self, world: SegmentWorld, stream: str, rng: np.random.Generator) -> list[SegmentIncident]:
        dial = world.cuboids
        leaf_arms = dial is not None and dial.max_depth >= 2 and bool(set(LEAF_FIELDS) & set(dial.fields))
        experiment = draw_experiment(world, rng, cells_only=not leaf_arms)
        if experiment is None:
            return []
        broken = pick([step for step in FUNNEL_STEPS if step != experiment.row.target_step], rng)
        magnitude = self.draw_magnitude(world, rng)
        boost = 1.0
        if leaf_arms:
            experiment, boost = self._clear_arm(world, experiment, step_index(broken), magnitude, rng)
        apply_intended_effect(world, experiment)
        describe = (
            f"experiment {experiment.row.experiment} (changes {experiment.row.target_step} by "
            f"{experiment.effect:+.0%} as intended) breaks {broken} in its arm"
        )
        if experiment.arm.names_daily_field:
            incidents = self.step_drop_over_dates(
                world, experiment.arm, experiment.days, broken, [magnitude * boost] * len(experiment.days), describe
            )
        else:
            incidents = self.over_dates(
                world, experiment.arm, experiment.days, broken, magnitude * boost, stream, describe
            )
        return [
            replace(incident, context=(experiment.row,)) if i == 0 else incident for i, incident in enumerate(incidents)
        ]

    def largest_fall(self, world: SegmentWorld) -> float:
        """Where a sample leaves most arms thin (world.raise_unclear), a broken step may nearly stop (BROKEN_FALL):
        so a small arm's fall can be clear."""
        return min(BROKEN_FALL, self.magnitude_bounds[1]) if world.raise_unclear else super().largest_fall(world)

    def _clear_arm(
        self, world: SegmentWorld, experiment: DrawnExperiment, step: int, magnitude: float, rng: np.random.Generator
    ) -> tuple[DrawnExperiment, float]:
        """The drawn leaf arm with the factor that makes its fall clear in its own data on the weakest of its dates
        (raised to the world's own-z floor, lowered to its ceiling); a cells arm, unscaled, when no factor within
        the kind's largest fall does (a thin cuboid). Where a sample leaves most leaf arms thin
        (world.raise_unclear), a small leaf arm that such a factor makes clear, else a clear cells arm."""
        assert world.cuboids is not None, "a leaf arm is a cuboid"
        in_play = set(world.cuboids.fields)
        if not world.raise_unclear:
            if set(experiment.arm.named()) <= in_play:
                reach = world.plan.leaf_reach(experiment.days)
                z = own_z(world, reach, experiment.arm, experiment.days, step, magnitude)
                boost = scale_factor(z, world, self.magnitude_bounds[0] / magnitude)
                if z >= world.own_z[0] or boost <= self.largest_fall(world) / magnitude:
                    return experiment, boost
            return _with_arm(experiment, experiment_arm(world, rng, cells_only=True)), 1.0
        reach = world.plan.leaf_reach(experiment.days)
        arms = [arm for arm in leaf_arms(world) if set(arm.named()) <= in_play]
        chosen = self._clear_among(world, arms, reach, experiment.days, step, magnitude, rng)
        if chosen is None:
            chosen = self._clear_among(
                world, cell_arms(world), reach, experiment.days, step, magnitude, rng, clearest=True
            )
        assert chosen is not None
        arm, boost = chosen
        return _with_arm(experiment, arm), boost

    def _clear_among(
        self,
        world: SegmentWorld,
        arms: list[Segment],
        reach: np.ndarray,
        days: list[int],
        step: int,
        magnitude: float,
        rng: np.random.Generator,
        clearest: bool = False,
    ) -> tuple[Segment, float] | None:
        """One of `arms` whose fall is clear in its own data within the kind's largest fall, drawn from the third
        of them least clear (the smallest: an arm is a small part of the traffic, as an experiment's is), with the
        factor that raises it to the world's own-z floor (or lowers it to its ceiling); the clearest arm where none
        is and `clearest`, else None."""
        largest = self.largest_fall(world)
        zs = [own_z(world, reach, arm, days, step, largest) for arm in arms]
        clear = sorted((z, index) for index, z in enumerate(zs) if z >= world.own_z[0])
        if not clear and not (clearest and arms):
            return None
        smallest = [arms[index] for _, index in clear[: max(1, len(clear) // 3)]]
        arm = pick(smallest, rng) if clear else arms[int(np.argmax(zs))]
        z = own_z(world, reach, arm, days, step, magnitude)
        return arm, min(scale_factor(z, world, self.magnitude_bounds[0] / magnitude), largest / magnitude)


def _with_arm(experiment: DrawnExperiment, arm: Segment) -> DrawnExperiment:
    """The experiment on another arm (the experiments table's row names it)."""
    row = replace(
        experiment.row, platform=arm.platform, country=arm.country, channel=arm.channel, user_type=arm.user_type
    )
    return replace(experiment, arm=arm, row=row)


register_incident_kind(ExperimentBreakage())
