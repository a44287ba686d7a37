"""The vectorised helpers and the per-episode tables give the same answers as the straightforward definitions
they replace."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest
from core_helpers import reset_episode
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from metric_tracker_rl.analysis_tools import comparisons, run_tool
from metric_tracker_rl.catalog.published import (
    ANOMALY_TYPES,
    CONVERSION_METRIC_NAMES,
    COUNT_COLUMNS,
    ENTITY_TYPES,
    SEVERITIES,
    severity_for,
    severity_indices,
)
from metric_tracker_rl.catalog.seeding import EpisodeKey, derive_rng
from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.generation import aggregate as aggregate_module
from metric_tracker_rl.generation import build_episode
from metric_tracker_rl.world import daily_panel
from metric_tracker_rl.world.funnel import (
    HOURS,
    N_EVENTS,
    N_STEPS,
    NUM_DAYS,
    FunnelData,
    FunnelPlan,
    baseline_plan,
    is_weekend,
    stage_means,
)


def reference_leave_one_out_median(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    result = np.empty_like(values, dtype=float)
    for group in np.unique(groups):
        members = np.flatnonzero(groups == group)
        block = values[members]
        for position, day in enumerate(members):
            result[day] = np.median(np.delete(block, position, axis=0), axis=0) if len(members) > 1 else block[0]
    return result


def reference_nanmedian(values: np.ndarray) -> np.ndarray:
    """np.nanmedian of each 1-D slice, one slice at a time. (Over a whole n-D batch numpy averages a lone middle
    value with itself when the slice holds a NaN, which overflows to inf above half the largest float; over one
    slice it returns the value, so the reference gives one answer whatever the batch's shape.)"""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices
        rows = values.reshape(-1, values.shape[-1])
        return np.array([np.nanmedian(row) for row in rows], dtype=float).reshape(values.shape[:-1])


def reference_peer_median(values: np.ndarray, peers: np.ndarray) -> np.ndarray:
    return reference_nanmedian(np.where(peers >= 0, values[..., np.maximum(peers, 0)], np.nan))


def reference_stage_means(traffic: np.ndarray, step_rates: np.ndarray) -> np.ndarray:
    """Per date and hour, the expected opens that reach each event and go no further, one value at a time."""
    means = np.empty((*traffic.shape, N_EVENTS))
    for day, hour in np.ndindex(traffic.shape):
        reach = [float(traffic[day, hour])]
        for step in range(N_STEPS):
            reach.append(reach[-1] * float(step_rates[day, hour, step]))
        for event in range(N_EVENTS):
            means[day, hour, event] = reach[event] - (reach[event + 1] if event < N_STEPS else 0.0)
    return means


def reference_draw_counts(plan: FunnelPlan, key: EpisodeKey) -> FunnelData:
    """Counts date by date: a date keeps its stops from the draw over the plan as it was made unless its own
    expectations changed, and a touched date draws from its own stream; an event's count is the sum of the
    stops at it and after it."""
    shared = derive_rng(key, "funnel-noise").poisson(plan.initial_stage_means)
    final = reference_stage_means(plan.traffic, plan.step_rates)
    hourly = np.empty((plan.num_days, HOURS, N_EVENTS), dtype=np.int64)
    for day in range(plan.num_days):
        rng = derive_rng(key, "funnel-draw", day)
        stops = shared[day]
        if not np.array_equal(final[day], plan.initial_stage_means[day]):
            stops = rng.poisson(final[day])
        counts = hourly[day]
        for event in range(N_EVENTS):
            counts[:, event] = stops[:, event:].sum(axis=1)
        if plan.extra_opens[day].any():
            counts[:, 0] += rng.poisson(plan.extra_opens[day])
        surplus = plan.duplicate_factor[day] - 1.0
        if surplus.any():
            counts += rng.poisson(counts * surplus)
        if plan.hour_shift[day]:
            counts[:] = np.roll(counts, int(plan.hour_shift[day]), axis=0)
        fraction = plan.ingested_fraction[day]
        if (fraction < 1.0).any():
            counts[:] = rng.binomial(counts, fraction[:, None])
    return FunnelData(
        dates=tuple(d.isoformat() for d in plan.dates),
        weekdays=tuple(d.strftime("%A") for d in plan.dates),
        weekend=is_weekend(plan.dates),
        hourly=hourly,
    )


def reference_broken_step_hours(hourly: np.ndarray) -> np.ndarray:
    denominators = hourly[..., :-1].astype(float)
    rates = daily_panel.safe_ratio(hourly[..., 1:].astype(float), denominators)
    judged = denominators >= comparisons.MIN_HOURLY_DENOMINATOR
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        typical = np.nanmedian(np.where(judged, rates, np.nan), axis=-2, keepdims=True)
        return judged & (rates < comparisons.BROKEN_HOUR_RATIO * typical)


def assert_same(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(actual, expected)  # NaN matches NaN; every other value exactly


# Values on a coarse grid make ties (and ties at the median) common; NaN and infinities are included.
values_strategy = st.one_of(
    st.integers(-5, 5).map(float),
    st.floats(allow_nan=True, allow_infinity=True, min_value=None, max_value=None, width=64),
)
finite_strategy = st.one_of(st.integers(-5, 5).map(float), st.floats(-1e12, 1e12))


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(data=st.data(), days=st.integers(1, 30), columns=st.integers(1, 4))
def test_leave_one_out_median_matches_np_median_over_np_delete(data: st.DataObject, days: int, columns: int) -> None:
    values = data.draw(hnp.arrays(np.float64, (days, columns), elements=values_strategy))
    groups = data.draw(hnp.arrays(np.int64, days, elements=st.integers(0, 2)))
    with np.errstate(all="ignore"):
        assert_same(daily_panel.leave_one_out_median(values, groups), reference_leave_one_out_median(values, groups))


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(data=st.data(), rows=st.integers(1, 5), days=st.integers(8, 30))
def test_peer_median_matches_np_nanmedian(data: st.DataObject, rows: int, days: int) -> None:
    values = data.draw(hnp.arrays(np.float64, (rows, days), elements=finite_strategy | st.just(np.nan)))
    peers = daily_panel.same_weekday_peers(days)
    with np.errstate(all="ignore"):
        assert_same(daily_panel.peer_median(values, peers), reference_peer_median(values, peers))


@pytest.mark.slow
@settings(max_examples=100, deadline=None)
@given(values=hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.just(28)), elements=finite_strategy))
@example(values=np.zeros((2, 28)))  # every peer tied
@example(values=np.tile(np.array([-0.0, 0.0, 1.0, 1.0]), (1, 7)))
def test_peer_median_of_whole_weeks_matches_np_nanmedian(values: np.ndarray) -> None:
    """Four whole weeks without NaN take the middle-of-three path."""
    peers = daily_panel.same_weekday_peers(28)
    assert_same(daily_panel.peer_median(values, peers), reference_peer_median(values, peers))


@settings(max_examples=100, deadline=None)
@given(
    values=hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=1, max_dims=3, max_side=9),
        elements=st.one_of(values_strategy, st.just(np.inf), st.just(-np.inf)),
    )
)
@example(values=np.array([np.nan, np.inf, -np.inf, -0.0]))
def test_nan_to_zero_matches_np_nan_to_num(values: np.ndarray) -> None:
    result = daily_panel.nan_to_zero(values)
    assert result.tobytes() == np.nan_to_num(values, nan=0.0).tobytes()
    assert result is not values and not np.shares_memory(result, values)


@settings(max_examples=100, deadline=None)
@given(
    values=hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 30), st.just(HOURS), st.just(N_EVENTS)),
        elements=st.floats(0, 1e9) | st.floats(-1e300, 1e300),
    )
)
def test_sum_over_hours_is_bit_identical_to_sum(values: np.ndarray) -> None:
    assert daily_panel.sum_over_hours(values).tobytes() == values.sum(axis=1).tobytes()


@settings(max_examples=100, deadline=None)
@given(data=st.data(), length=st.integers(1, 40))
def test_count_ratio_matches_safe_ratio_on_counts(data: st.DataObject, length: int) -> None:
    numerator, denominator = (
        data.draw(hnp.arrays(np.int64, length, elements=st.integers(0, 10**9))).astype(float) for _ in range(2)
    )
    assert_same(daily_panel.count_ratio(numerator, denominator), daily_panel.safe_ratio(numerator, denominator))


@settings(max_examples=150, deadline=None)
@given(values=hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=9), elements=values_strategy))
@example(values=np.array([8.98846567431158e307]))  # one value above half the largest float: no averaging
# The same value beside a NaN in a batch: np.nanmedian over the batch says inf, the median of the slice is x.
@example(values=np.array([[1.3482698511467367e308, np.nan], [0.0, 0.0]]))
@example(values=np.array([[1.3482698511467367e308, 1.3482698511467367e308], [np.inf, -np.inf]]))  # inf, nan
def test_nanmedian_last_axis_matches_the_median_of_each_slice(values: np.ndarray) -> None:
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert_same(daily_panel.nanmedian_last_axis(values), reference_nanmedian(values))


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(
    values=hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=1, max_dims=3, max_side=9),
        elements=st.one_of(finite_strategy, st.just(np.nan), st.just(np.inf), st.just(-np.inf)),
    )
)
def test_nanmedian_last_axis_matches_np_nanmedian_below_the_overflow_range(values: np.ndarray) -> None:
    with np.errstate(all="ignore"):
        assert_same(daily_panel.nanmedian_last_axis(values), reference_nanmedian(values))


def test_same_weekday_peers_lists_the_other_weeks() -> None:
    peers = daily_panel.same_weekday_peers(NUM_DAYS)
    for day in range(NUM_DAYS):
        expected = [d for d in range(NUM_DAYS) if d % 7 == day % 7 and d != day]
        assert sorted(int(p) for p in peers[day] if p >= 0) == expected


@pytest.mark.parametrize("task_id", ["easy_two_spikes", "medium_mixed_three", "hard_mixed_multi"])
@pytest.mark.parametrize("seed", [0, 1234])
def test_panel_is_byte_identical_to_the_reference_computation(
    monkeypatch: pytest.MonkeyPatch, task_id: str, seed: int
) -> None:
    config = resolve_episode_config(task_id=task_id, seed=seed)
    fast = build_episode(config)
    monkeypatch.setattr(daily_panel, "leave_one_out_median", reference_leave_one_out_median)
    monkeypatch.setattr(daily_panel, "peer_median", reference_peer_median)
    monkeypatch.setattr(daily_panel, "nanmedian_last_axis", reference_nanmedian)
    slow = build_episode(config)
    for name in ("values", "baseline", "spread", "hourly_share", "hourly_baseline_share"):
        assert getattr(fast.public.panel, name).tobytes() == getattr(slow.public.panel, name).tobytes(), name
    with np.errstate(all="ignore"):
        expected_delta = slow.public.panel.values - slow.public.panel.baseline
        expected_z = expected_delta / slow.public.panel.spread[:, None]
    assert fast.public.panel.delta.tobytes() == expected_delta.tobytes()
    assert fast.public.panel.z.tobytes() == expected_z.tobytes()
    assert fast.truth.expected_rows == slow.truth.expected_rows


# Every family touches a different part of the plan (extra opens, duplicated events, shifted or lost hours).
SCENARIOS = [{"task_id": t} for t in ("easy_two_spikes", "medium_mixed_three", "hard_mixed_multi")] + [
    {"scenario_family": family, "difficulty": "hard", "anomaly_count": 2} for family in ANOMALY_TYPES
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.get("task_id") or s["scenario_family"])
def test_counts_and_hour_checks_match_the_reference(monkeypatch: pytest.MonkeyPatch, scenario: dict) -> None:
    config = resolve_episode_config(seed=7, **scenario)
    fast = build_episode(config)
    monkeypatch.setattr(aggregate_module, "draw_counts", reference_draw_counts)
    slow = build_episode(config)
    assert fast.public.data.hourly.tobytes() == slow.public.data.hourly.tobytes()
    assert fast.public.dates == slow.public.dates and fast.public.data.weekdays == slow.public.data.weekdays
    assert np.array_equal(fast.public.data.weekend, slow.public.data.weekend)
    hourly = fast.public.data.hourly
    assert np.array_equal(comparisons.broken_step_hours(hourly), reference_broken_step_hours(hourly))
    assert np.array_equal(comparisons.broken_step_hours(hourly[3:4]), reference_broken_step_hours(hourly[3:4]))


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_broken_step_hours_matches_the_reference_on_random_counts(data: st.DataObject) -> None:
    hourly = data.draw(hnp.arrays(np.int64, (2, HOURS, N_EVENTS), elements=st.integers(0, 60)))
    assert np.array_equal(comparisons.broken_step_hours(hourly), reference_broken_step_hours(hourly))


def reference_hour_flags(check, hourly: np.ndarray) -> dict[tuple[int, int], list[int]]:
    """The flagged hours of every (date, step), checking one date at a time."""
    flagged = {}
    for day in range(hourly.shape[0]):
        flags = check(hourly[day : day + 1])[0]
        for step in range(flags.shape[1]):
            hours = [int(h) for h in np.flatnonzero(flags[:, step])]
            if hours:
                flagged[(day, step)] = hours
    return flagged


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.get("task_id") or s["scenario_family"])
def test_hour_flag_tables_match_a_scan_of_each_date(scenario: dict) -> None:
    public = reset_episode(seed=11, **scenario).public
    for table, check in (
        (comparisons.broken_hour_flags, comparisons.broken_step_hours),
        (comparisons.impossible_hour_flags, comparisons.impossible_hours),
    ):
        flags = table(public)
        expected = reference_hour_flags(check, public.data.hourly)
        assert flags.hours == expected
        counts = {(day, step): int(flags.counts[step, day]) for day in range(NUM_DAYS) for step in range(N_STEPS)}
        assert counts == {key: len(expected.get(key, [])) for key in counts}


def reference_suspicious_dates(public, limit: int) -> list[dict]:
    """Date by date and entity by entity: counts and rates by |z|, hourly mixes by their rise only; each kind
    names its strongest entity (for mixes the largest rise, none when no mix rose) and that entity's z."""
    panel = public.panel
    kinds = ("conversion_rate", "event_count", "hourly_mix")
    entries = []
    for day, date in enumerate(public.dates):
        entry = {"date": date, "max_abs_robust_z": 0.0}
        score = 0.0
        for kind in kinds:
            best_key, best_rank = None, -math.inf
            for k, (entity_type, _) in enumerate(panel.keys):
                if entity_type != kind:
                    continue
                z = float(panel.z[k, day]) if math.isfinite(panel.z[k, day]) else 0.0
                rank = z if kind == "hourly_mix" else abs(z)
                score = max(score, max(z, 0.0) if kind == "hourly_mix" else abs(z))
                if rank > best_rank:
                    best_key, best_rank = k, rank
            if kind == "hourly_mix" and best_rank <= 0:  # no mix rose: none is shown
                entry[kind], entry[f"{kind}_z"] = None, None
                continue
            z_value = float(panel.z[best_key, day])
            entry[kind], entry[f"{kind}_z"] = panel.keys[best_key][1], z_value if math.isfinite(z_value) else None
        entry["max_abs_robust_z"] = score
        entries.append(entry)
    order = sorted(range(len(entries)), key=lambda day: -entries[day]["max_abs_robust_z"])  # stable: date order
    return [entries[day] for day in order[:limit]]


def reference_deviation_rows(public, metrics_: list[str], direction: int, score: str, threshold: float) -> list:
    """(date, entity_type, entity_name, anomaly direction) of every flagged metric and date, metric by metric."""
    panel = public.panel
    found = []
    for metric in metrics_:
        entity_type = "event_count" if metric in COUNT_COLUMNS else "conversion_rate"
        k = panel.index(entity_type, metric)
        deviation = np.nan_to_num(panel.z[k] if score == "z" else panel.values[k] - panel.baseline[k], nan=0.0)
        signed = deviation * direction if direction else np.abs(deviation)
        for day in np.flatnonzero(signed > threshold):
            found.append((public.dates[day], entity_type, metric, 1 if deviation[day] > 0 else -1))
    return sorted(found)


@pytest.mark.parametrize("seed", [0, 5, 303])
def test_ranking_and_deviation_scans_match_the_straightforward_loops(seed: int) -> None:
    public = reset_episode(seed=seed, difficulty="hard").public
    for limit in (1, 7, 28):
        result = run_tool("list_suspicious_dates", public, {"limit": limit}).result
        assert result["dates"] == reference_suspicious_dates(public, limit)
    cases = [
        ("get_median_filter_rows", COUNT_COLUMNS + CONVERSION_METRIC_NAMES, 0, 1.5),
        ("get_rate_drop_from_median_rows", CONVERSION_METRIC_NAMES, -1, 1.0),
        ("get_rate_spike_from_median_rows", CONVERSION_METRIC_NAMES, 1, 2.0),
        ("get_absolute_drop_in_event_count_rows", COUNT_COLUMNS, -1, 0.5),
        ("get_absolute_spike_in_event_count_rows", COUNT_COLUMNS, 1, 3.0),
    ]
    for name, metrics_, direction, threshold in cases:
        found = every_page(public, name, {"threshold_multiplier": threshold})
        assert found == sorted(reference_deviation_rows(public, list(metrics_), direction, "z", threshold)), name
    # The same index answers every threshold and metric selection of the episode.
    for threshold in (0.3, 1.0, 2.5, 4.0, 10.0):
        for selection in (["app_opens"], ["app_open_to_order_placed", "menu_open_to_product_added_to_cart"]):
            found = every_page(
                public, "get_median_filter_rows", {"metric_names": selection, "threshold_multiplier": threshold}
            )
            assert found == sorted(reference_deviation_rows(public, selection, 0, "z", threshold))
    found = every_page(
        public,
        "get_rows_with_abs_diff_from_median_gt",
        {"metric_names": ["app_opens", "app_open_to_order_placed"], "threshold": 0.01},
    )
    assert found == sorted(
        reference_deviation_rows(public, ["app_opens", "app_open_to_order_placed"], 0, "delta", 0.01)
    )


def every_page(public: Any, name: str, arguments: dict[str, Any], limit: int = 7) -> list[tuple]:
    """Every row of a generator, read page by page; asserts the pages come strongest (largest |z|) first."""
    rows, offset = [], 0
    while offset is not None:
        result = run_tool(name, public, {**arguments, "limit": limit, "offset": offset}).result
        assert len(result["rows"]) <= limit
        rows += result["rows"]
        offset = result["next_offset"]
    assert len(rows) == result["row_count"]
    strengths = [
        abs(public.panel.row(r["entity_type"], r["entity_name"], public.data.date_index(r["date"]))["robust_z"] or 0.0)
        for r in rows
    ]
    assert strengths == sorted(strengths, reverse=True)
    return sorted(
        (r["date"], r["entity_type"], r["entity_name"], -1 if "drop" in r["anomaly_type"] else 1) for r in rows
    )


severity_values = st.one_of(st.floats(-1e6, 1e6), st.sampled_from([0.0, -0.0, 1e-13, 0.15, 0.3, 0.6, 0.05, 0.1, 0.2]))


@settings(max_examples=200, deadline=None)
@given(
    entity_type=st.sampled_from(ENTITY_TYPES),
    pairs=st.lists(st.tuples(severity_values, severity_values), min_size=1, max_size=20),
)
def test_severity_indices_apply_the_published_rule(entity_type: str, pairs: list[tuple[float, float]]) -> None:
    baseline, observed = (np.array(column) for column in zip(*pairs, strict=True))
    with np.errstate(all="ignore"):
        indices = severity_indices(entity_type, baseline, observed)
    assert [SEVERITIES[i] for i in indices] == [severity_for(entity_type, b, o) for b, o in pairs]


@pytest.mark.parametrize("seed", [0, 5, 303])
def test_panel_rows_match_the_published_rule_value_by_value(seed: int) -> None:
    panel = reset_episode(seed=seed, difficulty="hard").public.panel
    for k, (entity_type, entity_name) in enumerate(panel.keys):
        for day in range(panel.values.shape[1]):
            observed, baseline, z = float(panel.values[k, day]), float(panel.baseline[k, day]), float(panel.z[k, day])
            finite = math.isfinite(observed) and math.isfinite(baseline)
            expected = {
                "baseline_value": baseline if finite else None,
                "observed_value": observed if finite else None,
                "delta_value": observed - baseline if finite else None,
                "robust_z": z if finite and math.isfinite(z) else None,
                "severity": severity_for(entity_type, baseline, observed) if finite else None,
            }
            assert panel.row(entity_type, entity_name, day) == expected


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**63 - 1))
def test_stage_means_match_the_value_by_value_definition(seed: int) -> None:
    plan = baseline_plan(EpisodeKey.of(seed))
    expected = reference_stage_means(plan.traffic, plan.step_rates)
    assert_same(plan.initial_stage_means, expected)
    assert (plan.initial_stage_means >= 0).all()
    assert_same(stage_means(plan.traffic, plan.step_rates), expected)


@given(
    hours=st.integers(-(HOURS - 1), HOURS - 1).filter(bool),
    trailing=st.sampled_from([(), (N_STEPS,)]),
    seed=st.integers(0, 2**32 - 1),
)
@example(hours=1, trailing=(), seed=0)
@example(hours=-(HOURS - 1), trailing=(N_STEPS,), seed=1)
def test_rolling_a_days_hours_matches_np_roll(hours: int, trailing: tuple[int, ...], seed: int) -> None:
    values = np.random.default_rng(seed).random((HOURS, *trailing))
    assert np.array_equal(aggregate_module._roll_hours(values, hours), np.roll(values, hours, axis=0))
