"""The abyss tier, the rung after deep: deep's world with all-day incidents drawn near the noise, a published
noise model and incident shape, and benign blips confined to one leaf.

First the leaf blip (a benign kind): it moves one leaf's conversion of one step on one date and nothing else. Then
the tier: listed after deep, its brief states what the generator does (the noise model's numbers are the
code's, "deep" names no rule of it), its all-day incidents are drawn at its own z and its root causes two fields
deep, deep keeps its own. Then the expert's leaf check and its search for a date's second incident, and (slow) a
few of the tier's calibration episodes: the expert holds its floor (lab/tests/test_abyss_agents.py: the scan analyst
stays under its ceiling, the expert's episodes fit the message budget)."""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import statistics
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metric_tracker_rl.adapters.transcript import cut_results, unseen_submitted_rows
from metric_tracker_rl.agents import make_agent
from metric_tracker_rl.agents.expert_core import concurrency
from metric_tracker_rl.agents.expert_core.cuboid_queries import (
    SCAN_GROUPS,
    STEP_NAMES,
    dated_runs,
    run_sql,
    scan_sql,
    series_sql,
    unlabelled,
)
from metric_tracker_rl.agents.expert_core.leaf_check import is_blip, leaves_queries
from metric_tracker_rl.agents.expert_core.localisation import localise
from metric_tracker_rl.agents.expert_core.reports import SQL_CHARS, Report
from metric_tracker_rl.agents.expert_core.rollouts import rollout_sql
from metric_tracker_rl.agents.recording import record_episode
from metric_tracker_rl.catalog.published import DIFFICULTIES, RESET_DIFFICULTIES, SEGMENTED_TIERS
from metric_tracker_rl.catalog.seeding import derive_rng
from metric_tracker_rl.catalog.task_splits import calibration_reset_kwargs
from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.catalog.tiers import CLEAR_OWN_Z, TIERS
from metric_tracker_rl.generation.kinds import BENIGN_KIND_REGISTRY
from metric_tracker_rl.generation.kinds.cuboid import ALL_TRAFFIC, draw_depth, scale_factor
from metric_tracker_rl.generation.segment_plan import Calendar, CuboidDial, SegmentWorld, segmented_plan
from metric_tracker_rl.generation.segmented import build_world
from metric_tracker_rl.models import MetricTrackerRlAction
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.view.prompt import first_prompt
from metric_tracker_rl.world import traffic_split
from metric_tracker_rl.world.funnel import DAY_NOISE_SIGMA, HOUR_NOISE_SIGMA, RATE_NOISE_SIGMA
from metric_tracker_rl.world.segments import SEGMENT_FIELDS, world_of

ABYSS = "abyss"
MIX = TIERS[ABYSS].segmented
assert MIX is not None


def abyss_world(seed: int) -> SegmentWorld:
    key = resolve_episode_config(difficulty=ABYSS, seed=seed).key
    plan = segmented_plan(key, TIERS[ABYSS].window_days, world_of(TIERS[ABYSS].dimensions))
    return SegmentWorld(
        plan, Calendar(plan.num_days, TIERS[ABYSS].perturbed_per_weekday), key, ABYSS, 1.0, own_z=MIX.own_z
    )


_WORLDS = {seed: abyss_world(seed) for seed in (0, 1)}


# --- the leaf blip ------------------------------------------------------------------------------------------


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.sampled_from(sorted(_WORLDS)), draw=st.integers(0, 10**6))
def test_a_leaf_blip_moves_one_leafs_step_on_one_date_and_nothing_else(seed: int, draw: int) -> None:
    world = copy.deepcopy(_WORLDS[seed])
    before = world.plan.leaf_reach()
    blip = BENIGN_KIND_REGISTRY["leaf_blip"].place(world, derive_rng(world.key, "test-blip", draw))
    assert blip is not None and not blip.keeps_conversion
    assert set(blip.segment.named()) >= set(SEGMENT_FIELDS) - {"app_version"}  # one value of every dimension
    after = world.plan.leaf_reach()
    moved = ~np.isclose(after, before, rtol=1e-9, atol=1e-9)
    cells, leaves, days, events = np.nonzero(moved)
    assert set(days) == {blip.day} and len(set(zip(cells, leaves, strict=True))) == 1
    cell, leaf = int(cells[0]), int(leaves[0])
    ratio = after[cell, leaf, blip.day] / before[cell, leaf, blip.day]
    first = int(events.min())  # the event after the step that fell: every later one falls by the same share
    assert np.allclose(ratio[:first], 1.0) and np.allclose(ratio[first:], ratio[first])
    assert 1.0 - BENIGN_KIND_REGISTRY["leaf_blip"].magnitude_range[1] - 1e-9 <= ratio[first] <= 0.5 + 1e-9
    assert blip.day in range(world.plan.num_days - 1) and blip.day not in world.calendar.taken


def test_an_abyss_episode_draws_leaf_blips_on_top_of_its_look_alikes() -> None:
    config = resolve_episode_config(difficulty=ABYSS, seed=60_000)
    drawn = build_world(TIERS[ABYSS], config)
    blips = [f for f in drawn.fluctuations if f.kind == "leaf_blip"]
    others = [f for f in drawn.fluctuations if f.kind != "leaf_blip"]
    assert len(blips) >= 2 and others
    assert {f.kind for f in others} <= set(MIX.benign_kinds)


# --- the tier -------------------------------------------------------------------------------------------------


def test_abyss_is_listed_right_after_deep() -> None:
    """Appended after deep (a tier listed later goes after it), so the eval split's earlier indices keep naming
    their episodes."""
    assert DIFFICULTIES.index(ABYSS) == DIFFICULTIES.index("deep") + 1
    assert ABYSS in RESET_DIFFICULTIES and ABYSS in SEGMENTED_TIERS
    assert TIERS[ABYSS].listed and TIERS[ABYSS].calibration_seed_base == 60_000
    deep = TIERS["deep"].segmented
    assert deep is not None and deep.own_z == CLEAR_OWN_Z and not deep.leaf_blips and not deep.noise_model


def _brief(difficulty: str) -> tuple[str, dict]:
    env = MetricTrackerRlEnvironment()
    observation = env.reset(difficulty=difficulty, seed=60_000)
    text = first_prompt(observation)
    return text, observation.segments or {}


def test_the_abyss_brief_publishes_its_noise_model_incident_shape_and_blips_in_its_own_name() -> None:
    text, segments = _brief(ABYSS)
    noise = segments["noise_model"]
    for sigma in (
        DAY_NOISE_SIGMA,
        HOUR_NOISE_SIGMA,
        RATE_NOISE_SIGMA,
        traffic_split.SEGMENT_DAY_SIGMA,
        traffic_split.SEGMENT_RATE_SIGMA,
        traffic_split.LEAF_SHARE_SIGMA,
        traffic_split.LEAF_RATE_SIGMA,
    ):
        assert f"sd {sigma:g}" in noise
    assert "binomial" in noise and "Poisson" in noise
    low, high = MIX.own_z
    assert f"It is drawn at {low:g} to {high:g}, taking" in segments["incident_shape"]
    assert "same share" in segments["incident_shape"]
    assert "leaf_blip" in text and "no incident is confined to a single leaf" in text
    assert "at deep" not in text and "(deep)" not in text and "at abyss" in text
    deep_text, deep_segments = _brief("deep")
    assert "noise_model" not in deep_segments and "leaf_blip" not in deep_text and "at deep" in deep_text


def test_all_day_incidents_are_drawn_at_the_tiers_own_z_and_incidents_of_hours_stay_clear() -> None:
    world = _WORLDS[0]
    low, high = MIX.own_z
    assert scale_factor(low / 2, world, 0.0) == pytest.approx(2.0)
    assert scale_factor(high * 2, world, 0.0) == pytest.approx(0.5)
    assert scale_factor((low + high) / 2, world, 0.0) == 1.0
    assert scale_factor(low, world, 0.0, hourly=True) == pytest.approx(CLEAR_OWN_Z[0] / low)


@settings(max_examples=30, deadline=None)
@given(draw=st.integers(0, 10**6))
def test_abyss_draws_a_root_causes_depth_from_two_fields_and_deep_from_one(draw: int) -> None:
    world = copy.copy(_WORLDS[0])
    world.cuboids = CuboidDial(MIX.dimensions, 3, MIX.min_cuboid_depth)
    assert draw_depth(world, np.random.default_rng(draw), ALL_TRAFFIC) in (2, 3)
    world.cuboids = CuboidDial(MIX.dimensions, 1, MIX.min_cuboid_depth)  # a reset's shallower dial wins
    assert draw_depth(world, np.random.default_rng(draw), ALL_TRAFFIC) == 1
    deep = TIERS["deep"].segmented
    assert deep is not None and deep.min_cuboid_depth == 1 and MIX.min_cuboid_depth == 2


def test_abyss_leaves_the_one_dimension_kinds_to_deep_and_its_brief_says_how_deep_it_draws() -> None:
    assert set(MIX.incident_kinds) == set(TIERS["deep"].incident_kinds) - {"web_tracking_bug", "country_bots"}
    _, segments = _brief(ABYSS)
    assert f"at least {MIX.min_cuboid_depth} fields" in segments["incident_shape"]


# --- the expert's leaf check ----------------------------------------------------------------------------------


def _leaves(
    rest_change: float,
    top_change: float,
    top_e: float = 400.0,
    rest_e: float = 1600.0,
    rate: float = 0.5,
    second_change: float | None = None,
    second_e: float = 400.0,
) -> dict:
    """A leaves_sql row: a cuboid whose top leaf and rest changed by those shares; with `second_change`, its second
    most fallen leaf (of `second_e` expected conversions, part of the rest) changed by that share."""

    def variance(expected: float) -> float:
        return expected / rate * rate * (1 - rate)

    second_change = rest_change if second_change is None else second_change
    others_e = rest_e - second_e
    r = top_change * top_e + second_change * second_e + rest_change * others_e
    return {
        "k": 0,
        "leaves": 8,
        "r": r,
        "e": top_e + rest_e,
        "w": variance(top_e) + variance(rest_e),
        "top_r": top_change * top_e,
        "top_e": top_e,
        "top_w": variance(top_e),
        "two_r": top_change * top_e + second_change * second_e,
        "two_e": top_e + second_e,
        "two_w": variance(top_e) + variance(second_e),
    }


def test_the_leaf_check_tells_a_blip_from_an_incident() -> None:
    assert is_blip(_leaves(rest_change=0.0, top_change=-0.7))  # one leaf fell, the rest did not
    assert not is_blip(_leaves(rest_change=-0.3, top_change=-0.32))  # the rest fell by the same share
    assert is_blip({**_leaves(0.0, -0.7), "leaves": 1})  # a cuboid of one leaf


def test_the_leaf_check_tells_two_blips_in_one_cuboid_from_an_incident() -> None:
    two_blips = _leaves(rest_change=0.0, top_change=-0.7, second_change=-0.6, second_e=800.0)
    assert not is_blip(two_blips, pair_odds=None)  # one leaf does not carry it
    assert is_blip(two_blips)  # two leaves do, and the rest did not fall
    assert not is_blip(_leaves(rest_change=-0.25, top_change=-0.3, second_change=-0.28, second_e=800.0))  # all alike
    # A rest of a few conversions cannot tell two leaves' fall from an incident's: the fall is kept.
    assert not is_blip(_leaves(rest_change=0.0, top_change=-0.7, second_change=-0.6, second_e=800.0, rest_e=802.0))


def test_the_leaf_check_fits_the_query_tools_limit() -> None:
    falls = [
        {
            "date": "2026-03-10",
            "entity_name": "app_open_to_menu_open",
            "platform": "ios",
            "country": "US",
            "channel": "organic",
        }
    ] * 120
    statements = leaves_queries(falls, SQL_CHARS)
    assert len(statements) > 1 and all(len(sql) <= SQL_CHARS for sql in statements)
    listed = "".join(statements)  # each fall by its dates after the statement's first fall's
    assert all(f"({k},0,1,'ios/US/*/organic/*')" in listed for k in range(120))


# --- what the expert's statements return at abyss -------------------------------------------------------------


def _rows(env: MetricTrackerRlEnvironment, **action: object) -> list[dict]:
    observation = env.step(MetricTrackerRlAction(**action))
    assert observation.status == "ok", observation.message
    return (observation.analysis_result or {}).get("rows", [])


def _query(env: MetricTrackerRlEnvironment, sql: str) -> list[dict]:
    return _rows(env, analysis_method="query", analysis_args={"sql": sql, "limit": 100})


def _by_date_and_step(rows: list[dict]) -> dict[tuple[str, int], list[dict]]:
    grouped: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for row in rows:
        grouped[(str(row["date"]), int(row["step"]))].append(row)
    return grouped


@pytest.mark.parametrize("offset", [120, 121])
def test_the_narrowed_scan_returns_what_the_ripple_and_arm_checks_read_and_nothing_they_do_not(offset: int) -> None:
    env = MetricTrackerRlEnvironment()
    env.reset(**calibration_reset_kwargs(ABYSS, offset), max_steps=40)
    experiments = _rows(env, analysis_method="get_context", analysis_args={"table": "experiments"})
    for steps in ((0, 1), (2, 3)):  # two steps at a time: a page holds the full scan's rows
        full = _by_date_and_step(_query(env, scan_sql(steps)))
        narrowed = _by_date_and_step(list(map(unlabelled, _query(env, scan_sql(steps, arms=experiments)))))
        assert set(narrowed) == set(full) and sum(map(len, narrowed.values())) < sum(map(len, full.values()))
        for key, rows in full.items():
            assert all(row in rows for row in narrowed[key])
            assert localise(narrowed[key]) == localise(rows)
    env.close()


def test_the_run_around_a_fall_is_the_series_rows_next_to_its_date() -> None:
    env = MetricTrackerRlEnvironment()
    env.reset(**calibration_reset_kwargs(ABYSS, 121), max_steps=40)
    scan = [row for row in _query(env, scan_sql(SCAN_GROUPS[1])) if row["z"] <= -6][:6]
    falls = [{**row, "date": str(row["date"]), "entity_name": STEP_NAMES[int(row["step"])]} for row in scan]
    series = _query(env, series_sql(falls))
    runs = dated_runs(_query(env, run_sql(falls)), falls)
    for k, fall in enumerate(falls):
        dated = {str(row["date"]): row for row in series if row["k"] == k}
        around = [str(row["date"]) for row in runs if row["k"] == k and str(row["date"]) != fall["date"]]
        assert around and all(
            dated[date] == next(r for r in runs if r["k"] == k and str(r["date"]) == date) for date in around
        )
        days = sorted([dt.date.fromisoformat(fall["date"]), *map(dt.date.fromisoformat, around)])
        assert all((later - earlier).days == 1 for earlier, later in itertools.pairwise(days))
        for end, step in ((days[0], -1), (days[-1], 1)):
            assert str(end + dt.timedelta(days=step)) not in dated
    env.close()


# --- the expert's search for a date's second incident -------------------------------------------------------

VALUES = {
    "platform": ["ios", "android", "web"],
    "country": ["US", "GB"],
    "channel": ["organic", "referral"],
    "user_type": ["new", "returning"],
}


def test_the_second_incident_search_tests_only_cuboids_overlapping_a_reported_segment() -> None:
    everything = concurrency.tested([("2026-03-10", 0, (None, None, None, None))], VALUES)
    one_cell = concurrency.tested([("2026-03-10", 2, ("ios", "US", "organic", "new"))], VALUES)
    # Every cuboid of one to three fields on all four steps (9 of one field, 30 of two, 44 of three); with a
    # host of one value per field, the 14 field sets' cuboids of its own values, on the three other steps.
    assert everything == 4 * (9 + 30 + 44)
    assert one_cell == 3 * (4 + 6 + 4)
    assert concurrency.bar(one_cell) < concurrency.bar(everything)


@given(tests=st.integers(1, 10**6), more=st.integers(1, 10**6))
def test_the_bar_rises_with_the_cells_tested(tests: int, more: int) -> None:
    assert concurrency.bar(tests + more) >= concurrency.bar(tests) > 0


def test_the_second_incident_is_the_strongest_fall_the_leaf_check_kept_and_none_where_a_date_has_two() -> None:
    def fall(date: str, z: float) -> dict:
        return {
            "date": date,
            "entity_name": "app_open_to_menu_open",
            "platform": "ios",
            "country": "US",
            "app_version": None,
            "channel": None,
            "user_type": None,
            "z": z,
        }

    found = [fall("2026-03-10", -6.0), fall("2026-03-11", -5.0), fall("2026-03-12", -4.5)]
    reports = concurrency.concurrent_falls(found, blips={0}, most=1)
    assert [r.date for r in reports] == ["2026-03-11"]
    assert concurrency.concurrent_falls(found, blips=set(), most=0) == []
    one = Report("2026-03-10", "conversion_rate", "app_open_to_menu_open", "rate_drop_from_median", "ios")
    other = Report("2026-03-10", "event_count", "app_opens", "absolute_drop_in_event_count", "ios")
    assert not concurrency.already_found([one]) and concurrency.already_found([one, other])


def test_the_one_dimension_experts_rollout_test_reads_the_version_alone() -> None:
    releases = [{"platform": "ios", "app_version": "6.2.0", "rollout_start": "2026-03-10"}]
    assert "(h, u)" in rollout_sql(releases) and "(h, u)" not in rollout_sql(releases, inside_version=False)


# --- a few calibration episodes (slow) -----------------------------------------------------------------------

# Calibration offsets that tuned neither the tier nor its expert (lab/docs/calibration.md: 0-199 tuned or informed
# them).
EPISODES = range(200, 206)
EXPERT_FLOOR = 0.75


@pytest.mark.slow
def test_the_abyss_expert_holds_its_floor_and_shows_what_it_submits() -> None:
    env = MetricTrackerRlEnvironment()
    runs = [
        record_episode(make_agent("deep_expert"), env, calibration_reset_kwargs(ABYSS, offset)) for offset in EPISODES
    ]
    assert statistics.mean(run.score for run in runs) >= EXPERT_FLOOR, [run.score for run in runs]
    for run in runs:
        assert unseen_submitted_rows(run) == [] and cut_results(run) == 0
