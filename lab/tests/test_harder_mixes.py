"""The harder mixes a tier may turn on (weeks-long incidents, dense confounding, concurrency inside one cuboid):
off at every listed tier (tests/test_harder_kinds.py); where a scratch tier (deep with a mix on, never registered)
turns them on, every row is what the data shows under the published rule, every episode is its seed's,
and no context item placed beside an incident explains any incident on its dates under the published scope rules."""

from __future__ import annotations

from dataclasses import replace
from functools import cache

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab.agents.registry import make_agent
from lab.calibration.harder_mixes import deep_with
from metric_tracker_rl.adapters.session import EpisodeSession
from metric_tracker_rl.agents import play
from metric_tracker_rl.agents.expert_core import change_points
from metric_tracker_rl.catalog.published import CONVERSION_BY_NAME
from metric_tracker_rl.catalog.task_splits import calibration_reset_kwargs
from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.catalog.tiers import TIERS, Tier
from metric_tracker_rl.generation import build_episode
from metric_tracker_rl.generation.anomalies import ChangePointRecord
from metric_tracker_rl.generation.episode import Episode
from metric_tracker_rl.generation.segmented import DrawnWorld, build_world
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.world.context import Campaign, Experiment, Holiday
from metric_tracker_rl.world.segments import Segment

HARDER_KINDS = ("persistent_regression", "gradual_decline")
HARDER_DIALS = ("confounder_share", "same_cuboid_concurrency", "effect_beside_incident", "falling_effect_share")
DEEP = TIERS["deep"]
assert DEEP.segmented is not None
# Scratch tiers: deep drawing only the weeks-long kinds (and level shifts, so some incidents come before them), and
# deep with every dial of the mixes on.
PERSISTENT = replace(DEEP, segmented=replace(DEEP.segmented, incident_kinds=("level_shift", *HARDER_KINDS)))
CROWDED = replace(
    DEEP,
    segmented=replace(
        DEEP.segmented,
        confounder_share=1.0,
        same_cuboid_concurrency=2,
        effect_beside_incident=2,
        falling_effect_share=1.0,
    ),
)
SEEDS = st.integers(0, 10**6)
FEW = settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@cache
def episode(tier: Tier, seed: int) -> Episode:
    return build_episode(replace(resolve_episode_config(seed=seed, difficulty="deep"), tier=tier))


@cache
def world(tier: Tier, seed: int) -> DrawnWorld:
    return build_world(tier, resolve_episode_config(seed=seed, difficulty="deep"))


def cuboid_rate(daily: pd.DataFrame, segment: Segment, metric: str) -> np.ndarray:
    """(D,) a step's conversion in a cuboid, by date, as a SQL query over daily_by_segment sums it."""
    rows = daily
    for field, value in segment.named().items():
        rows = rows[rows[field] == value]
    conversion = CONVERSION_BY_NAME[metric]
    sums = rows.groupby("date")[[conversion.numerator, conversion.denominator]].sum()
    return (sums[conversion.numerator] / sums[conversion.denominator]).to_numpy()


@FEW
@given(seed=SEEDS)
def test_a_persistent_incidents_rows_are_its_cuboids_data_against_the_dates_before_its_change_point(seed: int) -> None:
    built = episode(PERSISTENT, seed)
    assert built.public.segments is not None
    daily = built.public.segments.tables()["daily_by_segment"]
    rows = {(r.date, r.entity_name): r for r in built.truth.expected_rows}
    assert len(rows) == len(built.truth.expected_rows)  # keys stay unique
    dates = built.public.dates
    persistent = [r for r in built.truth.injections if isinstance(r, ChangePointRecord)]
    assert persistent  # three to six incidents of three kinds: one at least is weeks long
    for change_point, step in {(r.change_point, r.entity_name) for r in persistent}:
        run = sorted(
            (r for r in persistent if (r.change_point, r.entity_name) == (change_point, step)), key=lambda r: r.day
        )
        assert [r.day for r in run] == list(range(change_point, change_point + len(run)))  # every date, one row
        assert len(run) >= 14 or run[-1].day == len(dates) - 1  # two weeks at least, unless the window ends
        assert change_point >= 21  # three weeks of peers before it
        first = rows[dates[change_point], run[0].entity_name]
        segment = Segment(first.platform, first.country, first.app_version, first.channel, first.user_type)
        rate = cuboid_rate(daily, segment, run[0].entity_name)
        falls = []
        for record in run:
            row = rows[dates[record.day], record.entity_name]
            baseline = np.nanmedian(rate[record.day % 7 : change_point : 7])
            assert row.observed_value == pytest.approx(rate[record.day], rel=1e-9)
            assert row.baseline_value == pytest.approx(baseline, rel=1e-9)
            assert row.delta_value == pytest.approx(rate[record.day] - baseline, rel=1e-9, abs=1e-12)
            falls.append((1.0 - rate[record.day] / baseline, record.magnitude))
        # Where its fall is full (the last dates of a gradual decline), the data shows it: over a few such dates, as
        # one date's noise in a thin cuboid (a run the window's end cuts to a date) can hide half of it.
        injected = max(m for _, m in falls)
        full = [f for f, m in falls if m == injected]
        assert len(full) < 3 or np.median(full) > 0.5 * injected, (full, injected)


@FEW
@given(seed=SEEDS)
def test_an_episode_with_a_harder_mix_is_its_seeds(seed: int) -> None:
    for tier in (PERSISTENT, CROWDED):
        again = build_episode(replace(resolve_episode_config(seed=seed, difficulty="deep"), tier=tier))
        assert again.truth == episode(tier, seed).truth
        assert np.array_equal(again.public.segments.leaves, episode(tier, seed).public.segments.leaves)


def overlaps(a: Segment, b: Segment) -> bool:
    """Whether two cuboids hold a leaf in common: they agree on every field both name."""
    return all(a.named()[f] == b.named()[f] for f in set(a.named()) & set(b.named()))


def explains(row: object, date: str, entities: set[str], segment: Segment) -> bool:
    """Whether a context row explains a change of `entities` in `segment` on `date` under the published scope
    rules (conservatively: any traffic in common counts)."""
    if isinstance(row, Experiment):
        arm = Segment(row.platform, row.country, None, row.channel, row.user_type)
        return row.start_date <= date <= row.end_date and row.target_step in entities and overlaps(arm, segment)
    if isinstance(row, Holiday):
        return row.date == date and overlaps(Segment(country=row.country), segment)
    if isinstance(row, Campaign):
        scope = Segment(country=row.country, channel=row.channel)
        return row.start_date <= date <= row.end_date and overlaps(scope, segment)
    return False


@FEW
@given(seed=SEEDS)
def test_no_context_item_beside_an_incident_explains_an_incident_on_its_dates(seed: int) -> None:
    drawn = world(CROWDED, seed)
    dates = episode(CROWDED, seed).public.dates
    rows = [row for fluctuation in drawn.fluctuations for row in fluctuation.context]
    for incident in drawn.incidents:
        record = incident.record
        entities = {record.entity_name} | {name for _, name in record.neutral}
        for row in rows:
            assert not explains(row, dates[record.day], entities, incident.segment.normalised()), (row, record)


def test_the_crowded_mix_places_what_its_dials_ask() -> None:
    """Over a few seeds: confounders of every sort, second incidents in their host's very cuboid on another step,
    and experiments whose arm is an incident's cuboid on its date."""
    sorts: set[str] = set()
    for seed in range(6):
        drawn = world(CROWDED, seed)
        dates = episode(CROWDED, seed).public.dates
        incidents = drawn.incidents
        seconds = [i for i in incidents if "second incident in the same cuboid" in i.record.description]
        assert 1 <= len(seconds) <= 2
        for second in seconds:
            hosts = [
                i
                for i in incidents
                if i is not second and i.record.day == second.record.day and i.segment == second.segment
            ]
            assert hosts and all(h.record.entity_name != second.record.entity_name for h in hosts)
        beside = [f for f in drawn.fluctuations if "beside an incident" in f.description]
        sorts |= {type(row).__name__ for f in beside for row in f.context}
        arms = [f for f in beside if isinstance(f.context[0], Experiment)]
        assert any(
            any(
                {k: v for k, v in i.segment.named().items() if k != "app_version"} == f.segment.named()
                and f.context[0].start_date <= dates[i.record.day] <= f.context[0].end_date
                for i in incidents
            )
            for f in arms
        )
    assert sorts == {"Experiment", "Holiday", "Campaign"}


def test_a_falling_effect_share_of_one_makes_every_intended_effect_a_fall() -> None:
    falls = [f for seed in range(6) for f in world(CROWDED, seed).fluctuations if f.kind == "experiment_effect"]
    assert falls and all("by -" in f.description for f in falls)


# --- the deep expert on weeks-long incidents ----------------------------------------------------------------------


def test_a_run_is_the_stretch_that_fell_most_consistently() -> None:
    assert change_points._run("l....LLLL_LLLLLLLL_LLLl.L..L.l...ll") == (5, 22)  # it ends at the fix
    assert change_points._run(".......lLLLLLLLLLLLL.....l..l...l..") == (7, 19)  # a gradual decline's ramp
    assert change_points._run("..LLLLL...........") is None  # a week at most: a level shift's or an experiment's
    # The incident's cuboid, a child that fell as far (the ripple), and a parent that diluted it.
    dates = "....LLLLLLLLLLLL...."
    rows = [
        {"key": "android|GB|referral|*", "step": 4, "strength": -289, "fall": -0.5, "dates": dates},
        {"key": "android|GB|referral|new", "step": 4, "strength": -150, "fall": -0.52, "dates": dates},
        {"key": "*|GB|*|*", "step": 4, "strength": -90, "fall": -0.1, "dates": dates},
    ]
    (run,) = change_points.runs(rows)
    assert (run.segment, run.step, run.first, run.last) == (
        ("android", "GB", "referral", None),
        "order_placed_to_payment_successful",
        25,
        36,
    )


def test_only_a_brief_listing_a_change_point_kind_asks_for_the_change_point_scan() -> None:
    observation = EpisodeSession(MetricTrackerRlEnvironment()).reset(seed=0, difficulty="deep")
    assert not change_points.definitions_name_change_points(observation.brief)
    with deep_with({}, HARDER_KINDS, only_kinds=True):
        observation = EpisodeSession(MetricTrackerRlEnvironment()).reset(seed=0, difficulty="deep")
    assert change_points.definitions_name_change_points(observation.brief)


@pytest.mark.slow
def test_the_deep_expert_reports_a_weeks_long_fall_against_the_dates_before_its_change_point() -> None:
    """On episodes of level shifts and weeks-long falls, most weeks-long rows are reported on their cuboid with
    the values of the change-point rule."""
    found = graded = 0
    with deep_with({}, ("level_shift", *HARDER_KINDS), only_kinds=True):
        for offset in range(3):
            reset = calibration_reset_kwargs("deep", offset)
            truth = build_episode(resolve_episode_config(**reset)).truth
            session = play(make_agent("deep_expert"), EpisodeSession(MetricTrackerRlEnvironment()), **reset)
            submitted = {(row.date, row.entity_name): row for row in session.graded.submitted_rows}
            for record, row in zip(truth.injections, truth.expected_rows, strict=True):
                if not isinstance(record, ChangePointRecord):
                    continue
                graded += 1
                mine = submitted.get((row.date, row.entity_name))  # the injections and their rows, in order
                found += mine is not None and mine.baseline_value == pytest.approx(row.baseline_value, rel=0.02)
    assert graded and found >= 0.7 * graded, (found, graded)
