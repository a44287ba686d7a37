"""A segmented plan's counts: every cell's hourly counts in one Poisson draw, then the post-draw effects (extra
opens, duplicates, clock shifts, lost events) per touched cell and date, then, where the tier has daily-only
dimensions, each cell's daily counts split among its leaves. Behind the truth wall: it reads the plan."""

from __future__ import annotations

import numpy as np

from metric_tracker_rl.catalog.seeding import EpisodeKey, derive_rng
from metric_tracker_rl.generation.segment_plan import SegmentedPlan
from metric_tracker_rl.world.funnel import N_EVENTS, N_STEPS, stage_means
from metric_tracker_rl.world.segments import SegmentedData, day_sums


def _cell_stop_means(plan: SegmentedPlan) -> tuple[np.ndarray, np.ndarray | None]:
    """(S, D, 24, 5) expected stops per event of every cell (its leaves' together where it has leaves), and with
    leaves (S, D, 5) each cell's expected reach of every event per date before its leaves' factors."""
    if plan.split is None:
        return stage_means(plan.traffic, plan.step_rates), None
    assert plan.leaf_shares is not None and plan.leaf_reach_factors is not None
    reach = np.empty((N_EVENTS, *plan.traffic.shape))  # expected opens that reach each event, event axis first
    reach[0] = plan.traffic
    for step in range(N_STEPS):
        np.multiply(reach[step], plan.step_rates[..., step], out=reach[step + 1])
    daily_reach = np.moveaxis(reach.sum(axis=-1), 0, -1)  # (S, D, 5)
    mix = np.einsum("skd,skde->esd", plan.leaf_shares, plan.leaf_reach_factors)  # the leaves' mean factor
    reach *= mix[..., None]
    reach[:N_STEPS] -= reach[1:]
    np.maximum(reach, 0.0, out=reach)
    return np.moveaxis(reach, 0, -1), daily_reach


def draw_segmented_counts(plan: SegmentedPlan, key: EpisodeKey) -> SegmentedData:
    """Integer counts of every cell: one Poisson draw over all cells (stops per event, as funnel.stage_means
    explains), then, for each cell and date whose plan holds extra opens, duplicates, a clock shift or lost
    events, those from the stream "segment-draw" of that cell and date. With leaves, each cell's daily counts are
    then split among them (split_leaves)."""
    means, daily_reach = _cell_stop_means(plan)
    stops = derive_rng(key, "segment-noise").poisson(means)
    hourly = stops
    for event in range(N_STEPS - 1, -1, -1):
        hourly[..., event] += hourly[..., event + 1]
    drawn = day_sums(hourly) if daily_reach is not None else None  # before the post-draw effects
    extra = np.asarray(plan.extra_opens.any(axis=2))
    surplus = np.asarray((plan.duplicate_factor != 1.0).any(axis=(2, 3)))
    loss = np.asarray((plan.ingested_fraction < 1.0).any(axis=2))
    shifted = np.asarray(plan.hour_shift != 0)
    for cell, day in zip(*np.nonzero(extra | surplus | loss | shifted), strict=True):
        rng = derive_rng(key, "segment-draw", int(cell) * plan.num_days + int(day))
        counts = hourly[cell, day]
        if extra[cell, day]:
            counts[:, 0] += rng.poisson(plan.extra_opens[cell, day])
        if surplus[cell, day]:
            counts += rng.poisson(counts * (plan.duplicate_factor[cell, day] - 1.0))
        if shifted[cell, day]:
            counts[:] = np.roll(counts, int(plan.hour_shift[cell, day]), axis=0)
        if loss[cell, day]:
            counts[:] = rng.binomial(counts, plan.ingested_fraction[cell, day][:, None])
    if drawn is None or daily_reach is None:
        return SegmentedData(layout=plan.layout, releases=plan.releases, hourly=hourly)
    assert plan.split is not None
    return SegmentedData(
        layout=plan.layout,
        releases=plan.releases,
        hourly=hourly,
        split=plan.split,
        leaf_daily=split_leaves(plan, daily_reach, drawn, day_sums(hourly), key),
    )


def split_leaves(
    plan: SegmentedPlan, cell_reach: np.ndarray, drawn: np.ndarray, final: np.ndarray, key: EpisodeKey
) -> np.ndarray:
    """(S x K, D, 5) daily counts of the leaves, summing to their cell's `final` daily counts.

    Independent Poisson counts, given their sum, are multinomial in proportion to their means: so each cell's
    drawn stops at each event (`drawn`, before the post-draw effects) are split among its leaves in one
    multinomial draw (one binomial call per leaf over every cell, date and event), in proportion to each leaf's
    expected stops that day. `cell_reach` (S, D, 5): each cell's expected reach of every event per date, before
    its leaves' factors. Where a post-draw effect then changed a cell's day (bots, duplicates, lost events), each
    event's change is spread over the leaves in proportion to their counts (added multinomially, removed without
    replacement)."""
    assert plan.leaf_shares is not None and plan.leaf_reach_factors is not None
    leaf_reach = plan.leaf_shares[..., None] * plan.leaf_reach_factors * cell_reach[:, None]  # (S, K, D, 5)
    weights = np.empty_like(leaf_reach)  # (S, K, D, 5): each leaf's expected stops at each event
    weights[..., -1] = leaf_reach[..., -1]
    np.subtract(leaf_reach[..., :-1], leaf_reach[..., 1:], out=weights[..., :-1])
    np.maximum(weights, 0.0, out=weights)
    stops = drawn.copy()
    stops[..., :-1] -= drawn[..., 1:]
    rng = derive_rng(key, "segment-split")
    leaves = np.empty(weights.shape, dtype=np.int64)
    left, weight_left = stops, weights.sum(axis=1)
    for leaf in range(weights.shape[1] - 1):  # a multinomial draw as a chain of binomials
        chance = np.divide(weights[:, leaf], weight_left, out=np.zeros_like(weight_left), where=weight_left > 0)
        leaves[:, leaf] = rng.binomial(left, np.minimum(chance, 1.0))
        left = left - leaves[:, leaf]
        weight_left = weight_left - weights[:, leaf]
    leaves[:, -1] = left  # the last leaf takes the rest (all of it where no leaf expects any)
    leaves = np.moveaxis(leaves, 1, -1)  # (S, D, 5, K)
    for event in range(N_STEPS - 1, -1, -1):  # counts per leaf: each event's stops and those past it
        leaves[..., event, :] += leaves[..., event + 1, :]
    uniform = np.full(weights.shape[1], 1.0 / weights.shape[1])
    for cell, day in zip(*np.nonzero((final != drawn).any(axis=-1)), strict=True):
        rng = derive_rng(key, "segment-resplit", int(cell) * plan.num_days + int(day))
        for event in range(N_EVENTS):
            counts, change = leaves[cell, day, event], int(final[cell, day, event] - drawn[cell, day, event])
            if change > 0:
                held = counts.sum()
                counts += rng.multinomial(change, counts / held if held else uniform)
            elif change < 0:
                counts[:] = rng.multivariate_hypergeometric(counts, int(counts.sum()) + change)
    cells, days, _, k = leaves.shape
    return np.ascontiguousarray(np.moveaxis(leaves, -1, 1)).reshape(cells * k, days, N_EVENTS)
