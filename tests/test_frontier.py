"""The frontier difficulty: a segmented world that is deterministic per seed, whose cells sum to the aggregate,
whose incidents show in their segment, whose benign look-alikes leave every segment's conversion alone, and whose
reports are graded by segment."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from core_helpers import reset_episode, reset_world
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metric_tracker_rl.catalog.dimensions import PLATFORMS
from metric_tracker_rl.catalog.published import ANOMALY_TYPES, CONVERSION_BY_NAME, COUNT_COLUMNS, FRONTIER_WINDOW_DAYS
from metric_tracker_rl.catalog.seeding import EpisodeKey, derive_rng
from metric_tracker_rl.catalog.tasks import incident_count, resolve_episode_config
from metric_tracker_rl.catalog.tiers import TIERS
from metric_tracker_rl.generation import build_episode
from metric_tracker_rl.generation.episode import Episode
from metric_tracker_rl.generation.kinds import BENIGN_KIND_REGISTRY
from metric_tracker_rl.generation.segment_plan import Calendar, SegmentWorld, segmented_plan
from metric_tracker_rl.generation.segmented import build_world, decoy_count
from metric_tracker_rl.grading.grader import SEGMENT_CREDIT, grade_submission, segment_match
from metric_tracker_rl.models import MetricSubmissionRow
from metric_tracker_rl.world.daily_panel import same_weekday_peer_lists
from metric_tracker_rl.world.segments import WEB_VERSION, Segment, holiday_days, world_of

SWEEP = settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
SEEDS = st.integers(min_value=0, max_value=10**6)


@cache
def frontier(seed: int, scenario_family: str = "mixed") -> Episode:
    return reset_episode(seed=seed, difficulty="frontier", scenario_family=scenario_family)


def grade(ep: Episode, rows: list[MetricSubmissionRow]) -> float:
    truth = ep.truth
    return grade_submission(
        rows, truth.expected_rows, truth.neutral_keys, ep.public.dates, segment_values=ep.public.segment_values()
    ).score


# --- the world ------------------------------------------------------------------------------------------------


@SWEEP
@given(seed=SEEDS)
def test_the_same_seed_gives_the_same_data_and_truth(seed: int) -> None:
    config = resolve_episode_config(seed=seed, difficulty="frontier")
    first, second = build_episode(config), build_episode(config)
    assert np.array_equal(first.public.segments.hourly, second.public.segments.hourly)
    assert first.truth.expected_rows == second.truth.expected_rows
    assert first.truth.fluctuations == second.truth.fluctuations
    assert first.public.annotations == second.public.annotations
    other = reset_episode(seed=seed + 1, difficulty="frontier")
    assert not np.array_equal(first.public.segments.hourly, other.public.segments.hourly)


@SWEEP
@given(seed=SEEDS)
def test_the_aggregate_is_the_sum_of_the_segments(seed: int) -> None:
    ep = frontier(seed)
    segments = ep.public.segments
    assert segments.hourly.shape[1:] == (FRONTIER_WINDOW_DAYS, 24, len(COUNT_COLUMNS))
    assert np.array_equal(ep.public.data.hourly, segments.hourly.sum(axis=0))
    assert np.array_equal(ep.public.data.daily, segments.daily.sum(axis=0))
    assert len(ep.public.dates) == FRONTIER_WINDOW_DAYS
    tables = ep.public.segment_tables()
    assert set(tables) == {"daily_by_segment", "hourly_by_segment", "releases"}
    assert int(tables["hourly_by_segment"]["app_opens"].sum()) == int(ep.public.data.daily[:, 0].sum())
    assert int(tables["daily_by_segment"].groupby("date")["orders_placed"].sum().loc[ep.public.dates[9]]) == int(
        ep.public.data.daily[9, 3]
    )


def test_version_shares_follow_the_staged_rollouts() -> None:
    ep = frontier(7)
    segments = ep.public.segments
    dates = ep.public.dates
    for release in segments.releases:
        new = segments.segment_funnel(Segment(release.platform, None, release.version)).daily[:, 0]
        whole = segments.segment_funnel(Segment(release.platform)).daily[:, 0]
        assert new[: release.start_day].sum() == 0, release  # nobody runs it before its rollout
        share = new / whole
        assert 0 < share[release.start_day] < share[release.start_day + 3], release  # and it grows with the rollout
        assert any(
            a.kind == "release" and a.date == dates[release.start_day] and release.version in a.note
            for a in ep.public.annotations
        )
    web = segments.layout.platform_versions("web")
    assert web == (WEB_VERSION,)


def test_holidays_are_annotated_and_lower() -> None:
    ep = frontier(11, "null")
    holidays = holiday_days(FRONTIER_WINDOW_DAYS)
    assert holidays, "the eight-week window holds the calendar's holidays"
    annotated = {a.date for a in ep.public.annotations if a.kind == "public_holiday"}
    assert annotated == {ep.public.dates[day] for day in holidays}
    opens = ep.public.data.daily[:, 0].astype(float)
    for day in holidays:
        peers = [opens[p] for p in same_weekday_peer_lists(len(opens))[day]]
        assert opens[day] < 0.9 * np.median(peers)


def test_segments_differ_in_conversion_so_mix_moves_the_aggregate() -> None:
    ep = frontier(3, "null")
    rate = {platform: ep.public.segments.segment_funnel(Segment(platform)).daily.sum(axis=0) for platform in PLATFORMS}
    purchase = {platform: counts[4] / counts[0] for platform, counts in rate.items()}
    assert purchase["web"] < 0.8 * purchase["ios"]


# --- incidents ------------------------------------------------------------------------------------------------

MIN_EVENTS = 50  # a peer's value over the incident's hours rests on at least this many events (else it is noise)


def _hour_value(
    hourly: np.ndarray, entity_type: str, entity_name: str, hours: tuple[int, int], least: int = MIN_EVENTS
) -> float:
    """The incident's quantity over its hours: a count (an hourly mix's too: the opens that arrived in its hours), a
    step's conversion, or a count over its predecessor (NaN where the hours hold too few events to say)."""
    counts = hourly[hours[0] : hours[1]].sum(axis=0).astype(float)
    if entity_type in ("event_count", "hourly_mix"):
        column = COUNT_COLUMNS.index(entity_name)
        return counts[column] if counts[column] >= least else np.nan
    if entity_type == "data_quality":
        event = COUNT_COLUMNS.index(entity_name)
        numerator, denominator = counts[event], counts[event - 1]
    else:
        metric = CONVERSION_BY_NAME[entity_name]
        numerator = counts[COUNT_COLUMNS.index(metric.numerator)]
        denominator = counts[COUNT_COLUMNS.index(metric.denominator)]
    return numerator / denominator if denominator >= max(least, 1) else np.nan


@SWEEP
@given(seed=SEEDS)
def test_every_incident_is_visible_in_its_segment(seed: int) -> None:
    """Over the incident's hours, its segment's value is a tenth and two robust sigmas away from the median of its
    clean same-weekday peers, whatever the aggregate shows."""
    ep = frontier(seed)
    truth = ep.truth
    perturbed = {r.day for r in truth.injections} | {f.day for f in truth.fluctuations}
    assert len(truth.expected_rows) == len(truth.injections) > 0
    for row, record in zip(truth.expected_rows, truth.injections, strict=True):
        hourly = ep.public.segments.segment_funnel(Segment(row.platform, row.country, row.app_version)).hourly
        value = _hour_value(hourly[record.day], row.entity_type, row.entity_name, record.hours, least=0)
        peers = [
            _hour_value(hourly[p], row.entity_type, row.entity_name, record.hours)
            for p in same_weekday_peer_lists(FRONTIER_WINDOW_DAYS)[record.day]
            if p not in perturbed
        ]
        peers = [p for p in peers if np.isfinite(p) and p > 0]
        assert peers, row  # a clean same-weekday peer with enough events
        middle = float(np.median(peers))
        spread = 1.4826 * float(np.median(np.abs(np.array(peers) - middle)))
        assert abs(value - middle) >= max(0.1 * middle, 2 * spread), (row, record.description, value, peers)


@SWEEP
@given(seed=SEEDS)
def test_incidents_are_confined_to_a_segment_and_persist_with_one_row_per_date(seed: int) -> None:
    truth = frontier(seed).truth
    for row in truth.expected_rows:
        assert not Segment(row.platform, row.country, row.app_version).is_aggregate
    keys = [(r.date, r.entity_type, r.entity_name) for r in truth.expected_rows]
    assert len(keys) == len(set(keys))
    for record in truth.injections:
        if record.continues is not None:
            assert record.continues < record.day


def test_releases_sometimes_cause_an_incident_on_the_new_version_only() -> None:
    caused = quiet = 0
    for seed in range(40):
        ep = frontier(seed)
        versions = {(r.platform, r.app_version) for r in ep.truth.expected_rows if r.app_version is not None}
        for release in ep.public.segments.releases:
            regression = [
                r
                for r in ep.truth.expected_rows
                if (r.platform, r.app_version) == (release.platform, release.version)
                and r.date == ep.public.dates[release.start_day]
            ]
            caused += bool(regression)
            quiet += (release.platform, release.version) not in versions
    assert caused >= 5 and quiet > caused


# --- benign look-alikes -----------------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(seed=SEEDS, kind=st.sampled_from(TIERS["frontier"].benign_kinds))  # the context kinds: test_context_tables
def test_benign_fluctuations_leave_every_segments_conversion_unchanged(seed: int, kind: str) -> None:
    """A mix shift or a demand swing moves traffic only; a timing shift moves each cell's rates with its traffic
    (the same hours, later or earlier), so every cell's conversion over the day is unchanged."""
    key = EpisodeKey.of(seed)
    tier = TIERS["frontier"]
    plan = segmented_plan(key, tier.window_days, world_of(tier.dimensions))
    rates, traffic = plan.step_rates.copy(), plan.traffic.copy()
    world = SegmentWorld(plan, Calendar(plan.num_days, tier.perturbed_per_weekday), key, tier.name, magnitude_scale=1.0)
    fluctuation = BENIGN_KIND_REGISTRY[kind].place(world, derive_rng(key, "test-fluctuation"))
    assert fluctuation is not None and fluctuation.keeps_conversion
    day = fluctuation.day
    cells = plan.layout.mask(fluctuation.segment)
    others = np.ones(plan.num_days, dtype=bool)
    others[day] = False
    assert np.array_equal(plan.traffic[:, others], traffic[:, others])
    assert np.array_equal(plan.traffic[~cells], traffic[~cells])
    if kind == "segment_timing_shift":
        moved = plan.traffic[cells, day, :, None] * plan.step_rates[cells, day]
        before = traffic[cells, day, :, None] * rates[cells, day]
        assert np.allclose(moved.sum(axis=1), before.sum(axis=1))
    else:
        assert np.array_equal(plan.step_rates, rates)
        assert not np.array_equal(plan.traffic[cells, day], traffic[cells, day])


def test_decoys_appear_as_often_as_incidents() -> None:
    incidents = decoys = 0
    for seed in range(30):
        truth = frontier(seed).truth
        incidents += truth.incident_count
        decoys += len(truth.fluctuations)
    assert decoys >= incidents


# --- curriculum knobs ---------------------------------------------------------------------------------------------


@SWEEP
@given(
    seed=SEEDS,
    kinds=st.lists(st.sampled_from(TIERS["frontier"].incident_kinds), min_size=1, max_size=3, unique=True),
    ratio=st.sampled_from([0.0, 0.5, 1.0, 2.0]),
)
def test_incident_kinds_and_decoy_ratio_shape_the_episode(seed: int, kinds: list[str], ratio: float) -> None:
    config = resolve_episode_config(seed=seed, difficulty="frontier", incident_kinds=kinds, decoy_ratio=ratio)
    world = build_world(TIERS[config.difficulty], config)
    # a kind with no room on the calendar falls back to a single-date segment outage
    assert {incident.kind for incident in world.incidents} <= {*kinds, "segment_outage"}
    # a look-alike with no room is skipped, so at most the ratio's count
    assert len(world.fluctuations) <= decoy_count(ratio, incident_count(config))
    if ratio == 0:
        assert world.fluctuations == ()
    again = build_world(TIERS[config.difficulty], config)  # deterministic
    assert (again.incidents, again.fluctuations, again.annotations) == (
        world.incidents,
        world.fluctuations,
        world.annotations,
    )
    assert not config.standard  # never a published episode


def test_one_kind_makes_every_incident_of_that_kind() -> None:
    for seed in range(6):
        world = reset_world(seed=seed, difficulty="frontier", incident_kinds=["country_bots"])
        assert world.incidents and {incident.kind for incident in world.incidents} == {"country_bots"}


def test_decoy_count_keeps_the_default_and_reaches_zero() -> None:
    assert [decoy_count(1.0, n) for n in range(5)] == [2, 2, 2, 3, 4]  # as many as incidents, at least two
    assert decoy_count(0.0, 6) == 0 and decoy_count(2.0, 3) == 6 and decoy_count(0.5, 6) == 3


def test_the_default_knobs_are_the_standard_episode() -> None:
    plain = resolve_episode_config(seed=9, difficulty="frontier")
    spelled = resolve_episode_config(
        seed=9, difficulty="frontier", incident_kinds=list(TIERS["frontier"].incident_kinds), decoy_ratio=1.0
    )
    assert plain == spelled and plain.standard
    assert plain.public_dict() == spelled.public_dict()
    assert build_episode(plain).truth.expected_rows == build_episode(spelled).truth.expected_rows


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"difficulty": "hard", "decoy_ratio": 0.5}, "decoy_ratio applies at difficulty 'frontier'.* only, not 'hard'"),
        ({"difficulty": "easy", "incident_kinds": ["country_bots"]}, "incident_kinds applies at difficulty"),
        ({"difficulty": "frontier", "incident_kinds": ["bots"]}, "unknown incident kind.*valid: release_regression"),
        ({"difficulty": "frontier", "incident_kinds": []}, "non-empty list"),
        ({"difficulty": "frontier", "incident_kinds": "country_bots"}, "non-empty list"),
        ({"difficulty": "frontier", "decoy_ratio": 2.5}, "between 0 and 2"),
        ({"difficulty": "frontier", "decoy_ratio": True}, "between 0 and 2"),
        ({"difficulty": "frontier", "decoy_ratio": float("nan")}, "between 0 and 2"),
        (
            {"difficulty": "frontier", "scenario_family": "funnel_break", "incident_kinds": ["country_bots"]},
            "use scenario_family 'mixed'",
        ),
    ],
)
def test_the_knobs_refuse_bad_values_with_the_valid_ones(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_episode_config(seed=1, **overrides)


# --- grading by segment -------------------------------------------------------------------------------------------


@SWEEP
@given(seed=SEEDS)
def test_the_oracle_report_scores_one_and_the_aggregate_report_nothing(seed: int) -> None:
    ep = frontier(seed)
    rows = list(ep.truth.expected_rows)
    assert grade(ep, rows) == 1.0
    aggregate = [r.model_copy(update={"platform": None, "country": None, "app_version": None}) for r in rows]
    assert grade(ep, aggregate) == 0.0


@pytest.mark.parametrize("family", ANOMALY_TYPES)
def test_every_published_family_makes_a_frontier_scenario_of_its_own(family: str) -> None:
    """A family no frontier incident kind reports is injected on one segment's cells (its segment range)."""
    ep = frontier(11, family)
    assert family in {row.anomaly_type for row in ep.truth.expected_rows}
    assert grade(ep, list(ep.truth.expected_rows)) == 1.0


def test_a_null_episode_is_solved_by_an_empty_report() -> None:
    ep = frontier(5, "null")
    assert ep.truth.expected_rows == () and grade(ep, []) == 1.0


NEAR_MISSES = [
    # (reported, truth, verdict)
    (Segment("android", None, "6.31"), Segment("android", None, "6.31"), "exact"),
    (Segment("web", None, "web"), Segment("web"), "exact"),
    (Segment(None, None, "web"), Segment("web"), "exact"),
    (Segment("android"), Segment("android", None, "6.31"), "parent"),
    (Segment(None, None, "6.31"), Segment("android", None, "6.31"), "parent"),
    (Segment("android", None, "6.30"), Segment("android", None, "6.31"), "wrong_version"),
    (Segment("android", "US", "6.30"), Segment("android", None, "6.31"), "wrong"),
    (Segment("web", "US"), Segment("web"), "over_specific"),
    (Segment("android", "BR"), Segment(None, "BR"), "over_specific"),
    (Segment(), Segment(None, "BR"), "aggregate"),
    (Segment("ios", None, "6.31"), Segment("android", None, "6.31"), "wrong"),
    (Segment(None, "IN"), Segment(None, "BR"), "wrong"),
    (Segment("android"), Segment(None, "BR"), "wrong"),
]


@pytest.mark.parametrize(("reported", "truth", "verdict"), NEAR_MISSES)
def test_segment_near_misses(reported: Segment, truth: Segment, verdict: str) -> None:
    assert segment_match(reported, truth) == verdict


def test_segment_credit_orders_the_verdicts() -> None:
    credit = SEGMENT_CREDIT
    assert credit["exact"] == 1.0 > credit["parent"] > credit["wrong_version"] > credit["aggregate"] == 0.0
    assert credit["over_specific"] < credit["parent"] and credit["wrong"] == 0.0


SEGMENT_VALUES = st.builds(
    Segment,
    st.sampled_from([None, "ios", "android", "web"]),
    st.sampled_from([None, "US", "BR", "IN"]),
    st.sampled_from([None, "6.30", "6.31", "web"]),
)


@settings(max_examples=200, deadline=None)
@given(reported=SEGMENT_VALUES, truth=SEGMENT_VALUES)
def test_segment_credit_properties(reported: Segment, truth: Segment) -> None:
    verdict = segment_match(reported, truth)
    assert verdict in SEGMENT_CREDIT
    assert (verdict == "exact") == (reported.normalised() == truth.normalised())
    if reported.is_aggregate and not truth.is_aggregate:
        assert SEGMENT_CREDIT[verdict] == 0.0
    if verdict == "parent":  # a parent holds every cell of the truth and more
        assert segment_match(truth, reported) == "over_specific"


@SWEEP
@given(seed=SEEDS, data=st.data())
def test_a_partly_right_segment_scales_a_row_by_its_credit(seed: int, data: st.DataObject) -> None:
    ep = frontier(seed)
    rows = list(ep.truth.expected_rows)
    index = data.draw(st.integers(0, len(rows) - 1))
    row = rows[index]
    parent = Segment(row.platform) if row.app_version is not None and row.platform is not None else Segment()
    changed = row.model_copy(update={"platform": parent.platform, "country": parent.country, "app_version": None})
    verdict = segment_match(parent, Segment(row.platform, row.country, row.app_version))
    expected = 1.0 - (1.0 - SEGMENT_CREDIT[verdict]) / len(rows)
    assert grade(ep, [*rows[:index], changed, *rows[index + 1 :]]) == pytest.approx(expected, abs=1e-6)


def test_rows_naming_unknown_segments_are_refused() -> None:
    ep = frontier(2)
    row = ep.truth.expected_rows[0]
    truth = ep.truth
    bad = row.model_copy(update={"country": "ZZ"})
    result = grade_submission(
        [bad], truth.expected_rows, truth.neutral_keys, ep.public.dates, segment_values=ep.public.segment_values()
    ).breakdown
    assert result.invalid_row_count == 1 and result.matched_row_count == 0


def test_below_frontier_a_row_naming_a_segment_is_refused_and_scores_are_unchanged() -> None:
    ep = reset_episode(seed=17, difficulty="medium")
    truth = ep.truth
    rows = list(truth.expected_rows)
    plain = grade_submission(rows, truth.expected_rows, truth.neutral_keys, ep.public.dates).breakdown
    assert plain.score == 1.0 and plain.segment_accuracy is None
    tagged = [rows[0].model_copy(update={"platform": "web"}), *rows[1:]]
    result = grade_submission(tagged, truth.expected_rows, truth.neutral_keys, ep.public.dates).breakdown
    assert result.invalid_row_count == 1 and result.score < 1.0
