"""The overlap credit of a tier whose config says `segment_credit="overlap"` (deep): coverage x purity of the
reported cuboid against the incident's, weighted by the leaves' app opens on the incident's date. Its properties
hold for any cuboid and any traffic; the docs' near-miss table is what the code computes; through the environment
the credit is what a model computes from the public daily_by_segment; padding or hedging a report cannot raise a
score; frontier keeps its table."""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from core_helpers import reset_episode
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from metric_tracker_rl.analysis_tools import run_tool
from metric_tracker_rl.catalog.published import OVERLAP_CREDIT_RULE
from metric_tracker_rl.catalog.tiers import TIERS
from metric_tracker_rl.catalog.validation import validate_rows
from metric_tracker_rl.generation.episode import Episode
from metric_tracker_rl.grading.grader import (
    SEGMENT_CREDIT,
    LeafTraffic,
    grade_submission,
    graded_comparison,
    row_segment,
    segment_overlap,
)
from metric_tracker_rl.grading.overlap_examples import (
    EXAMPLE_DATE,
    NEAR_MISSES,
    example_statement,
    example_traffic,
    near_miss_overlaps,
    near_miss_table,
)
from metric_tracker_rl.models import MetricSubmissionRow, MetricTrackerRlAction
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.serving.report_step import overlap_traffic
from metric_tracker_rl.world.segment_brief import segmented_brief
from metric_tracker_rl.world.segments import SEGMENT_FIELDS, Segment

DOCS = Path(__file__).resolve().parents[1] / "docs" / "grading.md"
PROPERTIES = settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
TRAFFIC = example_traffic()
VALUES = {
    "platform": ("ios", "android", "web"),
    "country": ("US", "GB", "DE", "FR", "BR", "IN", "JP", "MX"),
    "app_version": ("6.31.0", "6.32.0", "6.33.0", "web"),
    "channel": ("organic", "paid_search", "paid_social", "referral"),
    "user_type": ("new", "returning"),
}


def cuboids(max_fields: int = 5) -> st.SearchStrategy[Segment]:
    """Any cuboid of deep's five dimensions: each field left out or one of its values."""
    return (
        st.fixed_dictionaries({name: st.none() | st.sampled_from(values) for name, values in VALUES.items()})
        .filter(lambda named: sum(v is not None for v in named.values()) <= max_fields)
        .map(lambda named: Segment(**named))
    )


@st.composite
def leaf_weights(draw: st.DrawFn) -> np.ndarray:
    """The example's traffic, or random opens with some leaves empty (a version before its rollout, a quiet leaf)."""
    seed = draw(st.none() | st.integers(0, 2**32 - 1))
    base = TRAFFIC.on(EXAMPLE_DATE)
    if seed is None:
        return base
    rng = np.random.default_rng(seed)
    weights = rng.gamma(0.7, 100.0, size=base.shape).round()
    weights[rng.random(base.shape) < draw(st.sampled_from([0.0, 0.3, 0.8]))] = 0.0
    return weights


def _traffic_leaves(segment: Segment, weights: np.ndarray) -> frozenset[int]:
    return frozenset(np.flatnonzero(TRAFFIC.leaves_of(segment) & (weights > 0)).tolist())


ANDROID_IN_NEW = Segment("android", "IN", user_type="new")


# --- the properties -------------------------------------------------------------------------------------------


@PROPERTIES
@given(reported=cuboids(), incident=cuboids(3), weights=leaf_weights())
@example(reported=ANDROID_IN_NEW, incident=ANDROID_IN_NEW, weights=TRAFFIC.on(EXAMPLE_DATE))
@example(reported=Segment("web", app_version="web"), incident=Segment("web"), weights=TRAFFIC.on(EXAMPLE_DATE))
@example(
    reported=Segment("ios", app_version="6.32.0"),
    incident=Segment(app_version="6.32.0", platform="ios"),
    weights=TRAFFIC.on(EXAMPLE_DATE),
)
@example(reported=Segment("ios", app_version="web"), incident=Segment("ios"), weights=TRAFFIC.on(EXAMPLE_DATE))
def test_the_credit_is_a_share_and_exactly_one_only_for_the_same_traffic(
    reported: Segment, incident: Segment, weights: np.ndarray
) -> None:
    overlap = segment_overlap(reported, incident, weights, TRAFFIC.leaves_of)
    assert 0.0 <= overlap.coverage <= 1.0 and 0.0 <= overlap.purity <= 1.0 and 0.0 <= overlap.credit <= 1.0
    same = _traffic_leaves(reported, weights) == _traffic_leaves(incident, weights)
    assert (overlap.credit == 1.0) == same
    if not _traffic_leaves(reported, weights) & _traffic_leaves(incident, weights) and _traffic_leaves(
        incident, weights
    ):
        assert overlap.credit == 0.0


@pytest.mark.slow  # most drawn examples are assumed away
@PROPERTIES
@given(reported=cuboids(), incident=cuboids(3), weights=leaf_weights(), name=st.sampled_from(SEGMENT_FIELDS))
@example(reported=Segment("android"), incident=ANDROID_IN_NEW, weights=TRAFFIC.on(EXAMPLE_DATE), name="country")
@example(
    reported=Segment(), incident=Segment("web", channel="paid_social"), weights=TRAFFIC.on(EXAMPLE_DATE), name="channel"
)
def test_naming_one_more_of_the_incidents_fields_never_lowers_purity_nor_raises_coverage(
    reported: Segment, incident: Segment, weights: np.ndarray, name: str
) -> None:
    assume(getattr(incident, name) is not None and getattr(reported, name) is None)
    assume(math.fsum(weights[TRAFFIC.leaves_of(incident)]) > 0)
    narrower = Segment(**{**reported.named(), name: getattr(incident, name)})
    before = segment_overlap(reported, incident, weights, TRAFFIC.leaves_of)
    after = segment_overlap(narrower, incident, weights, TRAFFIC.leaves_of)
    assert after.purity >= before.purity and after.coverage <= before.coverage


@PROPERTIES
@given(incident=cuboids(3), weights=leaf_weights())
@example(incident=ANDROID_IN_NEW, weights=TRAFFIC.on(EXAMPLE_DATE))
def test_the_aggregate_earns_the_incidents_share_of_all_traffic(incident: Segment, weights: np.ndarray) -> None:
    incident_traffic = math.fsum(weights[TRAFFIC.leaves_of(incident)])
    if incident_traffic == 0:
        return
    overlap = segment_overlap(Segment(), incident, weights, TRAFFIC.leaves_of)
    assert overlap.coverage == 1.0
    assert overlap.credit == pytest.approx(incident_traffic / math.fsum(weights), rel=1e-12)


def test_the_pinned_near_misses() -> None:
    """A few of the table's figures, worked by hand from the example's shares."""
    credits = {(miss.incident, miss.reported): overlap.credit for miss, overlap in near_miss_overlaps()}
    assert credits[ANDROID_IN_NEW, Segment("android", "IN")] == pytest.approx(0.35)  # purity: the new users' share
    assert credits[ANDROID_IN_NEW, Segment(country="IN")] == pytest.approx(0.44 * 0.35)
    assert credits[ANDROID_IN_NEW, Segment()] == pytest.approx(0.44 * 0.15 * 0.35)
    assert credits[ANDROID_IN_NEW, Segment("android", "IN", "6.32.0", user_type="new")] == pytest.approx(0.6)
    assert credits[ANDROID_IN_NEW, Segment("android", channel="paid_social", user_type="new")] == pytest.approx(
        0.18 * 0.15
    )
    assert credits[ANDROID_IN_NEW, Segment("android", "IN", user_type="returning")] == 0.0
    assert credits[Segment("web", channel="paid_social"), Segment("web", None, "web", "paid_social")] == 1.0


def test_the_docs_near_miss_table_is_what_the_code_computes() -> None:
    text = DOCS.read_text()
    assert near_miss_table() in text and example_statement() in text
    cases = {miss.case for miss in NEAR_MISSES}
    for case in (
        "exact",
        "parent cuboid, 2 of its 3 dims",
        "parent cuboid, 1 of its 3 dims",
        "sibling (one value wrong)",
        "aggregate (no segment)",
        "disjoint",
        "child cuboid (one more dim)",
    ):
        assert case in cases


@pytest.mark.parametrize("difficulty", ["frontier", "deep"])
def test_the_text_a_model_reads_states_the_rule_of_its_tier(difficulty: str) -> None:
    """The brief's segments and task_overview's grading entry carry the overlap rule, T included, exactly where
    the tier credits by overlap."""
    public = reset_episode(difficulty=difficulty, seed=0).public
    grading = run_tool("task_overview", public, {}).result["grading"]
    reporting = str(segmented_brief(difficulty)["reporting"])
    overlap = TIERS[difficulty].segment_credit == "overlap"
    for text in (grading, reporting):
        assert (OVERLAP_CREDIT_RULE in text) == overlap
    assert (
        "T(S) = the app_opens of S on the incident's date" in OVERLAP_CREDIT_RULE
        and "coverage x purity" in OVERLAP_CREDIT_RULE
    )


def test_each_tier_names_its_credit_rule() -> None:
    assert TIERS["frontier"].segment_credit == "table" and TIERS["deep"].segment_credit == "overlap"
    assert TIERS["hard"].segment_credit is None


# --- through a deep episode -------------------------------------------------------------------------------------


@cache
def deep(seed: int) -> Episode:
    return reset_episode(difficulty="deep", seed=seed)


def _traffic(episode: Episode) -> LeafTraffic:
    traffic = overlap_traffic(episode)
    assert traffic is not None
    return traffic


def _grade(episode: Episode, rows: list[MetricSubmissionRow]) -> float:
    truth = episode.truth
    return grade_submission(
        rows,
        truth.expected_rows,
        truth.neutral_keys,
        episode.public.dates,
        segment_values=episode.public.segment_values(),
        leaf_traffic=_traffic(episode),
    ).score


def _on(row: MetricSubmissionRow, segment: Segment) -> MetricSubmissionRow:
    return row.model_copy(update=dict(zip(SEGMENT_FIELDS, segment.values(), strict=True)))


def test_the_credit_a_model_computes_from_daily_by_segment_is_the_graders() -> None:
    """Each expected row reported on its parent of one field less: the comparison's coverage, purity and credit
    equal the app_opens sums of the public daily_by_segment table on the row's date."""
    env = MetricTrackerRlEnvironment()
    env.reset(seed=1, difficulty="deep")
    episode = env._episode
    assert episode is not None
    table = episode.public.segment_tables()["daily_by_segment"]
    rows = []
    for row in episode.truth.expected_rows:
        named = row_segment(row).named()
        rows.append(_on(row, Segment(**dict(list(named.items())[:-1]))) if named else row)
    observation = env.step(MetricTrackerRlAction(classifications=rows))
    comparison = observation.model_dump()["comparison"]["rows"]
    assert len(comparison) == len(rows)
    for row, verdict in zip(rows, comparison, strict=True):
        expected = next(
            r for r in episode.truth.expected_rows if (r.date, r.entity_name) == (row.date, row.entity_name)
        )
        on_date = table[table["date"] == row.date]

        def opens(segment: Segment, frame=on_date) -> float:
            for name, value in segment.normalised().named().items():
                frame = frame[frame[name] == value]
            return float(frame["app_opens"].sum())

        both = Segment(**{**row_segment(expected).named(), **row_segment(row).named()})
        coverage, purity = opens(both) / opens(row_segment(expected)), opens(both) / opens(row_segment(row))
        assert verdict["coverage"] == pytest.approx(coverage, abs=1e-6)
        assert verdict["purity"] == pytest.approx(purity, abs=1e-6)
        assert verdict["segment_credit"] == pytest.approx(coverage * purity, abs=1e-6)


HEDGES = st.sampled_from(["parent", "child", "aggregate", "sibling", "exact"])


def _variant(episode: Episode, expected: MetricSubmissionRow, how: str) -> Segment:
    """A cuboid near the expected row's: its parent (one field fewer), a child (one more), the aggregate, a
    sibling (one value changed) or itself."""
    truth = row_segment(expected).normalised()
    named = truth.named()
    values = episode.public.segment_values() or {}
    if how == "parent" and named:
        return Segment(**dict(list(named.items())[:-1]))
    if how == "child":
        free = [name for name in ("channel", "user_type", "country") if name not in named]
        if free:
            return Segment(**named, **{free[0]: values[free[0]][0]})
    if how == "sibling" and named:
        name, value = next(iter(named.items()))
        if name != "app_version":
            return Segment(**{**named, name: next(v for v in values[name] if v != value)})
    if how == "aggregate":
        return Segment()
    return truth


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 5), base=HEDGES, extra=HEDGES, position=st.integers(0, 99))
@example(seed=0, base="exact", extra="parent", position=0)
@example(seed=1, base="parent", extra="exact", position=0)
def test_padding_a_key_with_another_cuboid_never_raises_the_score(
    seed: int, base: str, extra: str, position: int
) -> None:
    """A report whose rows name cuboids near the truth, then the same report with one more row on one of its
    keys: the key is graded by its worse row and the extra row is a duplicate, so the score never rises."""
    episode = deep(seed)
    expected = list(episode.truth.expected_rows)
    report = [_on(row, _variant(episode, row, base)) for row in expected]
    which = position % len(expected)
    padded = [*report, _on(expected[which], _variant(episode, expected[which], extra))]
    assert _grade(episode, padded) <= _grade(episode, report)


@pytest.mark.parametrize("seed", range(4))
def test_reporting_the_parent_and_the_child_never_beats_the_exact_cuboid(seed: int) -> None:
    episode = deep(seed)
    expected = list(episode.truth.expected_rows)
    exact = _grade(episode, expected)
    assert exact == 1.0
    hedged = [
        row
        for expected_row in expected
        for row in (
            _on(expected_row, _variant(episode, expected_row, "parent")),
            _on(expected_row, _variant(episode, expected_row, "child")),
        )
    ]
    assert _grade(episode, hedged) < exact
    parents = [_on(row, _variant(episode, row, "parent")) for row in expected]
    assert _grade(episode, hedged) <= _grade(episode, parents)


def test_a_wrong_cuboid_costs_the_incident_not_a_false_positive() -> None:
    episode = deep(0)
    expected = list(episode.truth.expected_rows)
    rows = [_on(expected[0], _variant(episode, expected[0], "sibling")), *expected[1:]]
    truth = episode.truth
    breakdown = grade_submission(
        rows,
        truth.expected_rows,
        truth.neutral_keys,
        episode.public.dates,
        segment_values=episode.public.segment_values(),
        leaf_traffic=_traffic(episode),
    ).breakdown
    assert breakdown.false_positive_count == 0 and breakdown.matched_row_count == len(expected)
    assert breakdown.score == pytest.approx(1 - 1 / len(expected), abs=1e-6)


def test_frontier_keeps_its_table() -> None:
    episode = reset_episode(difficulty="frontier", seed=0)
    assert overlap_traffic(episode) is None
    expected = list(episode.truth.expected_rows)
    rows = [_on(row, Segment()) for row in expected]
    truth = episode.truth
    comparison = graded_comparison(
        rows,
        truth.expected_rows,
        truth.neutral_keys,
        episode.public.dates,
        segment_values=episode.public.segment_values(),
    )
    assert {entry["segment_credit"] for entry in comparison["rows"]} == {SEGMENT_CREDIT["aggregate"]}
    assert all("coverage" not in entry for entry in comparison["rows"])


# --- validation -------------------------------------------------------------------------------------------------


def _row(segment: Segment) -> MetricSubmissionRow:
    return _on(
        MetricSubmissionRow(
            date="2026-03-10",
            entity_type="event_count",
            entity_name="app_opens",
            anomaly_type="absolute_drop_in_event_count",
            detection_method="query",
            baseline_value=1.0,
            observed_value=0.5,
            delta_value=-0.5,
            severity="high",
        ),
        segment,
    )


@settings(max_examples=60, deadline=None, derandomize=True)
@given(subset=st.sets(st.sampled_from(SEGMENT_FIELDS)), data=st.data())
def test_a_deep_row_may_name_any_subset_of_the_five_dimensions(subset: set[str], data: st.DataObject) -> None:
    values = deep(0).public.segment_values()
    assert values is not None
    named = {name: data.draw(st.sampled_from(values[name])) for name in sorted(subset)}
    assert validate_rows([_row(Segment(**named))], ["2026-03-10"], values) == {}
    if subset:
        wrong = sorted(subset)[0]
        issue = validate_rows([_row(Segment(**{**named, wrong: "nowhere"}))], ["2026-03-10"], values)[0]
        assert issue.code == "invalid_row" and f"valid: {', '.join(values[wrong])}" in issue.message
