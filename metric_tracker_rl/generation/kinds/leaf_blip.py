"""Benign: one step's conversion falls on one date in a single leaf (one value of every dimension), however large
the fall: a glitch of one small audience, no incident. It shows in every segment that holds the leaf, diluted by
the leaf's share of it, so a breakdown ranked by z lights up its small parents as an incident's own cuboid would;
only the leaves tell them apart (an incident changes every leaf of its segment by the same share, the brief's
incident definition).

The leaf is drawn in proportion to the square of its expected arrivals at the step on the date, so the leaves that
move their parents most are drawn most. Its date is any date a perturbation may take (not the last, not a holiday,
not one an incident or another look-alike took), left free: a blip moves a single leaf, so a same-weekday median of
any segment stays as good as clean. Behind the truth wall: it reads the plan.
"""

from __future__ import annotations

import numpy as np

from metric_tracker_rl.catalog.published import FUNNEL_STEPS
from metric_tracker_rl.generation.kinds.base import BenignKind, SegmentFluctuation, register_benign_kind
from metric_tracker_rl.generation.segment_plan import SegmentWorld
from metric_tracker_rl.world.funnel import N_STEPS
from metric_tracker_rl.world.segments import WEB_VERSION, Segment


class LeafBlip(BenignKind):
    name = "leaf_blip"
    segment_meaning = "one leaf: one value of every dimension"
    magnitude_meaning = "relative fall of one step's conversion in the leaf, on one date"
    magnitude_range = (0.5, 0.9)
    description = (
        f"one step converts {100 * magnitude_range[0]:.0f}-{magnitude_range[1]:.0%} worse for one date "
        "in a single leaf; every segment holding the leaf shows it, diluted"
    )
    magnitude_bounds = (0.0, 0.95)
    keeps_conversion = False

    def place(self, world: SegmentWorld, rng: np.random.Generator) -> SegmentFluctuation | None:
        """A free date (left free), a step, and a leaf drawn by its arrivals at that step; None when no date is
        free."""
        days = [day for day in range(world.plan.num_days) if world.calendar.free(day)]
        if not days:
            return None
        day = days[int(rng.integers(len(days)))]
        step = int(rng.integers(N_STEPS))
        leaf = self._leaf(world, day, step, rng)
        fall = self.draw_magnitude(world, rng)
        world.scale_step(leaf, day, step, 1.0 - fall)
        return SegmentFluctuation(
            self.name,
            day,
            leaf,
            f"{FUNNEL_STEPS[step]} fell by {fall:.0%} for the day in this leaf only",
            keeps_conversion=False,
        )

    @staticmethod
    def _leaf(world: SegmentWorld, day: int, step: int, rng: np.random.Generator) -> Segment:
        """A leaf drawn in proportion to the square of its expected arrivals at `step` on `day`: the largest leaves,
        which move their parents most, are drawn most."""
        plan = world.plan
        assert plan.split is not None, "a leaf blip needs a world with leaves"
        assert plan.leaf_shares is not None and plan.leaf_reach_factors is not None
        cell_reach = world.hourly_reach(np.arange(plan.layout.size), day)[..., step].sum(axis=1)  # (S,)
        arrivals = (
            plan.leaf_shares[:, :, day] * plan.leaf_reach_factors[:, :, day, step] * cell_reach[:, None]
        ).ravel()  # (S x K,): as plan.leaf_reach reads them
        weights = arrivals**2
        chosen = int(rng.choice(arrivals.size, p=weights / weights.sum()))
        cell, leaf = divmod(chosen, plan.split.size)
        layout = plan.layout
        platform, version = layout.platforms[cell], layout.versions[cell]
        daily = dict(zip((d.field for d in plan.split.dimensions), plan.split.combinations[leaf], strict=True))
        return Segment(platform, layout.countries[cell], None if version == WEB_VERSION else version, **daily)


register_benign_kind(LeafBlip())
