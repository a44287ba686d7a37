"""Edits of the leaves' plan (deep: each cell's days split by channel and user type) that the context kinds need:
a cuboid's traffic, or one step's conversion, on one date, at the daily grain. The other leaves keep their
expected counts; a cell's hourly counts follow its leaves' total (frontier._cell_stop_means)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from metric_tracker_rl.segment_plan import SegmentWorld
from metric_tracker_rl.segments import Segment


def _leaf_positions(world: SegmentWorld, segment: Segment) -> tuple[np.ndarray, np.ndarray]:
    """The cuboid's cells and, within each, its leaves (every leaf where the world has no split)."""
    plan = world.plan
    assert plan.split is not None, "a leaf edit needs a world with daily-only dimensions"
    cells = plan.cells(replace(segment, channel=None, user_type=None))
    return cells, np.flatnonzero(plan.split.mask(segment))


def scale_leaf_traffic(world: SegmentWorld, segment: Segment, day: int, factor: float) -> None:
    """The cuboid's expected traffic on `day` times `factor`, its conversion unchanged, its cells' other leaves'
    traffic unchanged (so each cell's traffic grows by its cuboid leaves' share times factor - 1)."""
    plan = world.plan
    assert plan.leaf_shares is not None
    cells, leaves = _leaf_positions(world, segment)
    shares = plan.leaf_shares[cells, :, day]  # (C, K)
    scaled = shares.copy()
    scaled[:, leaves] *= factor
    growth = scaled.sum(axis=1)  # (C,)
    plan.traffic[cells, day] *= growth[:, None]
    plan.leaf_shares[cells, :, day] = scaled / growth[:, None]


def scale_leaf_step(world: SegmentWorld, segment: Segment, day: int, step: int, factor: float) -> None:
    """The cuboid's conversion of funnel step `step` (0 = app open to menu open) on `day` times `factor`: every
    event after the step reaches `factor` times as many of the cuboid's users."""
    plan = world.plan
    assert plan.leaf_reach_factors is not None
    cells, leaves = _leaf_positions(world, segment)
    plan.leaf_reach_factors[cells[:, None], leaves[None, :], day, step + 1:] *= factor
