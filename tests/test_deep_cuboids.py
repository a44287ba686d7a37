"""Root causes at the deep tier: cuboids of one to three of its five dimensions.

First the leaf-aware primitive (SegmentWorld.scale_step and scale_traffic): on a deep episode's plan, the leaves of
the edited segment move by the factor (exactly in expectation, within sampling noise in the drawn counts), their
sibling leaves and every other cell do not, and the leaves still sum to their cells."""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metric_tracker_rl.frontier import draw_segmented_counts, segmented_plan
from metric_tracker_rl.funnel import N_STEPS
from metric_tracker_rl.segment_plan import Calendar, SegmentedPlan, SegmentWorld
from metric_tracker_rl.segments import SEGMENT_FIELDS, Segment, world_of
from metric_tracker_rl.tasks import resolve_episode_config
from metric_tracker_rl.tiers import TIERS

DEEP = "deep"
WORLD = world_of(TIERS[DEEP].dimensions)
PLAN_SEEDS = (0, 1, 2)
Z_LIMIT = 5.0  # sampling noise: a binomial z-score beyond this fails


def deep_world(seed: int) -> SegmentWorld:
    key = resolve_episode_config(difficulty=DEEP, seed=seed).key
    plan = segmented_plan(key, TIERS[DEEP].window_days, WORLD)
    return SegmentWorld(plan, Calendar(plan.num_days, TIERS[DEEP].perturbed_per_weekday), key, DEEP, 1.0)


_PLANS = {seed: deep_world(seed) for seed in PLAN_SEEDS}


def fresh_world(seed: int) -> SegmentWorld:
    """A copy of a seed's unedited world (building one per example would dominate the test's time)."""
    return copy.deepcopy(_PLANS[seed])


@st.composite
def cuboids(draw: st.DrawFn, world: SegmentWorld) -> Segment:
    """A segment naming one or two daily-only fields and zero to two cell fields."""
    layout, split = world.plan.layout, world.plan.split
    assert split is not None
    named: dict[str, str] = {}
    for dimension in draw(st.lists(st.sampled_from(split.dimensions), min_size=1, max_size=2, unique_by=id)):
        named[dimension.field] = draw(st.sampled_from(dimension.values))
    for field in draw(st.lists(st.sampled_from(("platform", "country")), max_size=2, unique=True)):
        named[field] = draw(st.sampled_from(layout.values_of(field)))
    return Segment(**named)


def leaf_masks(plan: SegmentedPlan, segment: Segment) -> tuple[np.ndarray, np.ndarray]:
    """(S, K) the segment's leaves, and (S, K) its cells' other leaves."""
    assert plan.split is not None
    cells = plan.layout.mask(replace(segment, channel=None, user_type=None))
    leaves = plan.split.mask(segment)
    return np.outer(cells, leaves), np.outer(cells, ~leaves)


def conversion(reach: np.ndarray, mask: np.ndarray, day: int, step: int) -> float:
    return float(reach[mask][:, day, step + 1].sum() / reach[mask][:, day, step].sum())


hour_windows = st.tuples(st.integers(0, 20), st.integers(2, 10)).map(lambda h: (h[0], min(24, h[0] + h[1])))
edits = st.tuples(st.sampled_from(PLAN_SEEDS), st.integers(0, 54), st.floats(0.2, 1.5), st.none() | hour_windows)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), edit=edits, step=st.integers(0, N_STEPS - 1))
def test_scale_step_moves_the_segments_leaves_only(data: st.DataObject, edit: tuple, step: int) -> None:
    seed, day, factor, hours = edit
    world = fresh_world(seed)
    segment = data.draw(cuboids(world))
    before = world.plan.leaf_reach()
    before_traffic = world.plan.traffic.copy()
    world.scale_step(segment, day, step, factor, hours)
    after = world.plan.leaf_reach()
    inside, siblings = leaf_masks(world.plan, segment)
    # the segment's leaves: the step converts by the hour-weighted factor (the factor itself all day)
    cells = world.plan.cells(replace(segment, channel=None, user_type=None))
    window = slice(None) if hours is None else slice(*hours)
    arrivals = before_traffic[cells, day] * np.prod(world.plan.step_rates[cells, day, :, :step], axis=-1)
    if arrivals.sum() > 0:
        moved = conversion(after, inside, day, step) / conversion(before, inside, day, step)
        if hours is None:
            assert np.isclose(moved, factor, rtol=1e-9)
        else:
            low, high = sorted((factor, 1.0))
            assert low - 1e-9 <= moved <= high + 1e-9
            if arrivals[:, window].sum() > 0 and factor != 1.0:
                assert not np.isclose(moved, 1.0, rtol=1e-6)
    # their siblings, every other cell, other dates and the steps before it: unchanged
    assert np.allclose(after[siblings], before[siblings], rtol=1e-9)
    assert np.array_equal(after[~(inside | siblings)], before[~(inside | siblings)])
    others = np.arange(world.plan.num_days) != day
    assert np.allclose(after[:, :, others], before[:, :, others], rtol=1e-12)
    assert np.allclose(after[..., : step + 1], before[..., : step + 1], rtol=1e-9)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), edit=edits)
def test_scale_traffic_moves_the_segments_leaves_only(data: st.DataObject, edit: tuple) -> None:
    seed, day, factor, hours = edit
    world = fresh_world(seed)
    segment = data.draw(cuboids(world))
    before = world.plan.leaf_reach()
    world.scale_traffic(segment, day, factor, hours)
    after = world.plan.leaf_reach()
    inside, siblings = leaf_masks(world.plan, segment)
    moved, held = after[inside][:, day], before[inside][:, day]  # (n, 5): every event of every leaf
    if hours is None:
        assert np.allclose(moved, held * factor, rtol=1e-9, atol=1e-12)
    else:
        low, high = sorted((factor, 1.0))
        assert (moved >= held * low - 1e-9).all() and (moved <= held * high + 1e-9).all()
    assert np.allclose(after[siblings], before[siblings], rtol=1e-9)
    assert np.array_equal(after[~(inside | siblings)], before[~(inside | siblings)])
    assert np.allclose(world.plan.leaf_shares.sum(axis=1), 1.0)


def test_a_segment_of_cell_fields_edits_the_cells_as_before() -> None:
    world, by_hand = fresh_world(0), fresh_world(0)
    segment = Segment(platform="android", country="IN")
    cells = by_hand.plan.cells(segment)
    world.scale_step(segment, 9, 3, 0.4, (10, 15))
    by_hand.plan.step_rates[cells, 9, 10:15, 3] *= 0.4
    world.scale_traffic(segment, 11, 1.3)
    by_hand.plan.traffic[cells, 11] *= 1.3
    for name in ("traffic", "step_rates", "leaf_shares", "leaf_reach_factors"):
        assert np.array_equal(getattr(world.plan, name), getattr(by_hand.plan, name)), name


def _z(observed_hits: int, trials: int, chance: float) -> float:
    return abs(observed_hits - trials * chance) / max(np.sqrt(trials * chance * (1.0 - chance)), 1e-9)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), seed=st.sampled_from(PLAN_SEEDS), day=st.integers(0, 54), factor=st.floats(0.2, 0.9),
       step=st.integers(0, N_STEPS - 1))
def test_drawn_counts_show_the_drop_in_the_segments_leaves_only(data: st.DataObject, seed: int, day: int,
                                                                  factor: float, step: int) -> None:
    world = fresh_world(seed)
    segment = data.draw(cuboids(world))
    expected_before = world.plan.leaf_reach()
    world.scale_step(segment, day, step, factor)
    counts = draw_segmented_counts(world.plan, world.key)
    assert counts.leaf_daily is not None and counts.split is not None
    cells, k = counts.layout.size, counts.split.size
    leaves = counts.leaf_daily.reshape(cells, k, counts.num_days, -1)
    assert np.array_equal(leaves.sum(axis=1), counts.daily)  # the leaves sum to their cells exactly
    inside, siblings = leaf_masks(world.plan, segment)
    for mask, moved in ((inside, factor), (siblings, 1.0)):
        trials = int(leaves[mask][:, day, step].sum())
        if trials == 0:
            continue
        chance = min(conversion(expected_before, mask, day, step) * moved, 1.0)
        assert _z(int(leaves[mask][:, day, step + 1].sum()), trials, chance) < Z_LIMIT


def test_a_segment_of_no_leaf_is_an_error() -> None:
    world = fresh_world(0)
    assert "user_type" in SEGMENT_FIELDS
    try:
        world.scale_step(Segment(user_type="robot"), 3, 1, 0.5)
    except ValueError as error:
        assert "no leaf" in str(error)
    else:
        raise AssertionError("an unknown leaf value was accepted")
