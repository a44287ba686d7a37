"""Root causes at the deep tier: cuboids of one to three of its five dimensions.

First the leaf-aware primitive (SegmentWorld.scale_step and scale_traffic): on a deep episode's plan, the leaves of
the edited segment move by the factor (exactly in expectation, within sampling noise in the drawn counts), their
sibling leaves and every other cell do not, and the leaves still sum to their cells.

Then the episodes (seed sweeps at deep's defaults): the ground truth names cuboids of one to three dimensions,
each row is read back from its cuboid's own data, one date carries two overlapping incidents, level shifts grow
and recover, episodes are deterministic, and the dial's knobs narrow what they say and refuse bad values."""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
from core_helpers import CUBOID_DIAL_TIERS, reset_episode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metric_tracker_rl.catalog.tasks import CUBOID_KNOBS, EpisodeConfig, resolve_episode_config
from metric_tracker_rl.catalog.tiers import TIERS
from metric_tracker_rl.generation.dilution import (
    STANDS_OUT,
    cuboid_incidents,
    dilution_by_depth,
    largest_one_dimension_z,
)
from metric_tracker_rl.generation.episode import Episode, daily_series
from metric_tracker_rl.generation.segment_counts import draw_segmented_counts
from metric_tracker_rl.generation.segment_plan import Calendar, SegmentedPlan, SegmentWorld, segmented_plan
from metric_tracker_rl.world.funnel import N_STEPS
from metric_tracker_rl.world.segments import SEGMENT_FIELDS, Segment, world_of

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


@pytest.mark.parametrize("days", [[0], [5, 6, 7], [54]])
def test_leaf_reach_on_some_dates_is_the_whole_reach_there_and_zero_elsewhere(days: list[int]) -> None:
    plan = deep_world(PLAN_SEEDS[0]).plan
    whole, some = plan.leaf_reach(), plan.leaf_reach(days)
    others = [day for day in range(plan.num_days) if day not in days]
    assert np.array_equal(some[:, :, days], whole[:, :, days])  # the same sums, to the last bit
    assert not some[:, :, others].any() and whole[:, :, days].any()


hour_windows = st.tuples(st.integers(0, 20), st.integers(2, 10)).map(lambda h: (h[0], min(24, h[0] + h[1])))
edits = st.tuples(st.sampled_from(PLAN_SEEDS), st.integers(0, 54), st.floats(0.2, 1.5), st.none() | hour_windows)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), edit=edits, step=st.integers(0, N_STEPS - 1))
def test_scale_step_moves_the_segments_leaves_only(data: st.DataObject, edit: tuple, step: int) -> None:
    seed, day, factor, hours = edit
    world = fresh_world(seed)
    segment = data.draw(cuboids(world))
    before = world.plan.leaf_reach()
    cells = world.plan.cells(replace(segment, channel=None, user_type=None))
    hourly = world.hourly_reach(cells, day)[..., step + 1]  # (n, 24): each cell's conversions by hour, before
    world.scale_step(segment, day, step, factor, hours)
    after = world.plan.leaf_reach()
    inside, siblings = leaf_masks(world.plan, segment)
    # the segment's leaves: the step converts by the hour-weighted factor (the factor itself all day), so their
    # conversions fall by 1 - (1 - factor) x each cell's share of its conversions in the hours
    window = slice(None) if hours is None else slice(*hours)
    in_hours = np.divide(
        hourly[:, window].sum(axis=1), hourly.sum(axis=1), out=np.zeros(len(cells)), where=hourly.sum(axis=1) > 0
    )
    leaves_of = inside[cells]  # (n, K)
    held = before[cells][..., day, step + 1] * leaves_of
    if held.sum() > 0:
        expected = (held * (1.0 - (1.0 - factor) * in_hours)[:, None]).sum() / held.sum()
        moved = conversion(after, inside, day, step) / conversion(before, inside, day, step)
        assert np.isclose(moved, expected, rtol=1e-9)
        if hours is None:
            assert np.isclose(moved, factor, rtol=1e-9)
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
    """How many standard deviations the hits lie from the chance's expectation; a count is read no finer than one
    hit (a step converting nearly always has almost no variance, and one miss is no evidence against it)."""
    return abs(observed_hits - trials * chance) / max(np.sqrt(trials * chance * (1.0 - chance)), 1.0)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    seed=st.sampled_from(PLAN_SEEDS),
    day=st.integers(0, 54),
    factor=st.floats(0.2, 0.9),
    step=st.integers(0, N_STEPS - 1),
)
def test_drawn_counts_show_the_drop_in_the_segments_leaves_only(
    data: st.DataObject, seed: int, day: int, factor: float, step: int
) -> None:
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


# --- cuboid root causes, concurrency, persistence, the dial --------------------------------------------------------

CUBOID_SEEDS = range(12)


def _episode(seed: int, **settings: object) -> Episode:
    return reset_episode(difficulty=DEEP, seed=seed, **settings)


@pytest.fixture(scope="module")
def default_episodes() -> list[Episode]:
    return [_episode(seed) for seed in CUBOID_SEEDS]


def test_ground_truth_names_cuboids_of_one_to_three_dimensions(default_episodes: list[Episode]) -> None:
    depths = Counter(incident.depth for episode in default_episodes for incident in cuboid_incidents(episode))
    assert set(depths) <= {1, 2, 3} and depths[2] and depths[3], depths
    daily_fields = Counter(
        field
        for episode in default_episodes
        for row in episode.truth.expected_rows
        for field in ("channel", "user_type")
        if getattr(row, field) is not None
    )
    assert daily_fields["channel"] and daily_fields["user_type"], daily_fields


def test_each_expected_row_is_read_back_from_its_own_cuboid(default_episodes: list[Episode]) -> None:
    """The row's values are the cuboid's own daily data on its date and the published baseline (the same weekday's
    median); a rate incident's cuboid shows it far beyond its day-to-day spread."""
    checked = 0
    for episode in default_episodes:
        data = episode.public.segments
        assert data is not None
        dates = episode.public.dates
        for row in episode.truth.expected_rows:
            if row.entity_type not in ("conversion_rate", "funnel_step", "event_count"):
                continue
            segment = Segment(**{name: getattr(row, name) for name in SEGMENT_FIELDS})
            values, baseline = daily_series(data.segment_daily(segment), row.entity_type, row.entity_name)
            day = dates.index(row.date)
            assert (row.observed_value, row.baseline_value) == pytest.approx((values[day], baseline[day]))
            assert row.observed_value < row.baseline_value  # every kind drawn on a cuboid is a fall
            checked += 1
    assert checked > 3 * len(default_episodes)


def test_the_default_setting_has_a_date_with_two_overlapping_incidents(default_episodes: list[Episode]) -> None:
    for episode in default_episodes:
        rows = episode.truth.expected_rows
        keys = [(row.date, row.entity_type, row.entity_name) for row in rows]
        assert len(set(keys)) == len(keys)  # a report's keys stay unique
        by_date: dict[str, list[Segment]] = {}
        for row in rows:
            by_date.setdefault(row.date, []).append(Segment(**{f: getattr(row, f) for f in SEGMENT_FIELDS}))
        shared = [segments for segments in by_date.values() if len(segments) == 2]
        assert shared and all(_overlap(*pair) for pair in shared), by_date


def _overlap(first: Segment, second: Segment) -> bool:
    """Two cuboids overlap when they agree on every field both name (and share at least one value)."""
    a, b = first.named(), second.named()
    common = set(a) & set(b)
    return all(a[f] == b[f] for f in common) and bool(common)


def test_some_incidents_persist_grow_and_recover(default_episodes: list[Episode]) -> None:
    """A level shift's run at deep falls less on its first and last dates than in its middle (a rollout, then a
    fix), one expected row per date."""
    runs = 0
    for episode in default_episodes:
        for incident in cuboid_incidents(episode):
            magnitudes = [record.magnitude for record in incident.records]
            if len(incident.rows) >= 3 and len(set(magnitudes)) > 1:
                runs += 1
                assert magnitudes[0] < max(magnitudes) and magnitudes[-1] < max(magnitudes)
    assert runs >= 3


def test_deep_episodes_are_deterministic() -> None:
    first, second = _episode(5), _episode(5)
    assert first.truth == second.truth
    assert np.array_equal(first.public.segments.leaves, second.public.segments.leaves)


def test_the_dial_narrows_what_root_causes_name() -> None:
    for seed in range(6):
        episode = _episode(seed, max_cuboid_depth=1, dimensions=["platform", "channel"], concurrency=0)
        for incident in cuboid_incidents(episode):
            assert incident.depth == 1 and set(incident.segment.named()) <= {"platform", "channel"}, incident


def test_concurrency_zero_keeps_one_incident_per_date() -> None:
    for seed in range(6):
        dates = [row.date for row in _episode(seed, concurrency=0).truth.expected_rows]
        assert len(dates) == len(set(dates))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"max_cuboid_depth": 4}, "max_cuboid_depth must be between 1 and 3"),
        ({"max_cuboid_depth": 3, "dimensions": ["platform", "app_version", "channel"]}, "needs at least 3 dimensions"),
        ({"dimensions": ["country"]}, "includes platform"),
        ({"dimensions": ["platform", "planet"]}, "valid: platform, country, app_version, channel, user_type"),
        ({"magnitude_scale": 0}, "magnitude_scale must be a number between 0.25 and 3"),
        ({"concurrency": -1}, "concurrency must be between 0 and 3"),
        ({"note_share": 1.5}, "note_share must be a number between 0 and 1"),
    ],
)
def test_the_dial_refuses_bad_values_with_a_clear_error(settings: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_episode_config(difficulty=DEEP, **settings)


def test_the_dial_applies_at_deep_only_and_shows_there() -> None:
    refusal = f"max_cuboid_depth applies at difficulty {CUBOID_DIAL_TIERS} only, not 'frontier'"
    with pytest.raises(ValueError, match=refusal):
        resolve_episode_config(difficulty="frontier", max_cuboid_depth=2)
    frontier = resolve_episode_config(difficulty="frontier", seed=1).public_dict()
    assert not set(CUBOID_KNOBS) & set(frontier)
    deep = resolve_episode_config(difficulty=DEEP, seed=1)
    shown = deep.public_dict()
    mix = TIERS[DEEP].segmented
    assert mix is not None and deep.standard
    assert (shown["max_cuboid_depth"], shown["concurrency"], shown["note_share"], shown["magnitude_scale"]) == (
        mix.max_cuboid_depth,
        mix.concurrency,
        mix.note_share,
        mix.magnitude_scale,
    )
    assert shown["dimensions"] == ["platform", "country", "app_version", "channel", "user_type"]
    assert EpisodeConfig.from_public(shown) == replace(deep, secret="")
    assert not resolve_episode_config(difficulty=DEEP, seed=1, max_cuboid_depth=2).standard


def test_a_larger_magnitude_scale_deepens_the_falls() -> None:
    low = [
        r.magnitude
        for s in range(4)
        for r in _episode(s, magnitude_scale=0.5).truth.injections
        if r.family == "rate_drop_from_median"
    ]
    high = [
        r.magnitude
        for s in range(4)
        for r in _episode(s, magnitude_scale=1.5).truth.injections
        if r.family == "rate_drop_from_median"
    ]
    assert np.mean(high) > np.mean(low)


def test_most_deep_incidents_are_clear_in_their_own_cuboid_and_one_dimension_incidents_stand_out(
    default_episodes: list[Episode],
) -> None:
    """The dilution test sees one-dimension whole-day falls (nothing dilutes them), so what it calls diluted is the
    cuboid's doing, not a blind test. (An hourly kind's daily footprint is its hours' share of the day, so a
    one-dimension break or outage may stand out in its hours only.)"""
    found = dilution_by_depth(default_episodes)
    shallow = [diluted for depth, diluted, family in found if depth == 1 and family == "rate_drop_from_median"]
    assert shallow and sum(shallow) <= len(shallow) // 4
    deep = [diluted for depth, diluted, _ in found if depth >= 2]
    assert deep and sum(deep) >= 1


def test_whole_day_falls_are_clear_in_their_own_cuboid(default_episodes: list[Episode]) -> None:
    """Most step falls stand out in their own cuboid's daily data by the dilution module's test (hourly kinds show
    in their cells' hours instead)."""
    found = []
    for episode in default_episodes:
        data = episode.public.segments
        assert data is not None
        for incident in cuboid_incidents(episode):
            if incident.rows[0].anomaly_type == "rate_drop_from_median":
                found.append(max(largest_one_dimension_z(data, row, [incident.segment]) for row in incident.rows))
    assert len(found) >= len(default_episodes) and np.mean(np.array(found) >= STANDS_OUT) >= 0.75, found
