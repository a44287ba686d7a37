"""Grading at the warehouse: the expected rows are the world's incidents and defects (from what was injected), a
data defect is a data_quality row on the metric it corrupts with the dashboard's observed value, calling a defect an
incident or an incident a defect costs the row (a miss and a false positive, as the brief's grading says), the
segment credit is the overlap in the metrics layer's sessions, and an episode's rewards sum to its score."""

from __future__ import annotations

from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sweep_helpers import first_fast

from metric_tracker_rl import MetricTrackerRlAction
from metric_tracker_rl.catalog.plain_types import MetricSubmissionRow
from metric_tracker_rl.catalog.published import RAW_EVENT_DATA_QUALITY_NAMES, row_key
from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.catalog.tiers import WAREHOUSE
from metric_tracker_rl.catalog.validation import entity_names_of, validate_rows
from metric_tracker_rl.generation.episode import Episode
from metric_tracker_rl.generation.warehouse.truth import COUNT_OF_DASHBOARD, expected_rows
from metric_tracker_rl.generation.warehouse.world import build_warehouse_world
from metric_tracker_rl.grading.grader import GradeResult, grade_submission, row_segment
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.serving.report_step import overlap_traffic
from metric_tracker_rl.world.warehouse_brief import DATA_DEFECTS, DEFECT_FAMILY, KIND_RULE

SEEDS = (4, 11, 23)
INCIDENT_TYPES = ("event_count", "conversion_rate", "funnel_step")


@cache
def played(seed: int) -> MetricTrackerRlEnvironment:
    env = MetricTrackerRlEnvironment()
    env.reset(difficulty="warehouse", seed=seed)
    return env


def episode_of(seed: int) -> Episode:
    episode = played(seed)._episode  # noqa: SLF001 (the truth, to grade against it)
    assert episode is not None
    return episode


def grade(seed: int, rows: list[MetricSubmissionRow]) -> GradeResult:
    episode = episode_of(seed)
    with entity_names_of("warehouse"):
        return grade_submission(
            rows,
            episode.truth.expected_rows,
            episode.truth.neutral_keys,
            episode.public.dates,
            segment_values=episode.public.segment_values(),
            leaf_traffic=overlap_traffic(episode),
            methods_used=frozenset({"query"}),
        )


def defects_and_incidents(seed: int) -> tuple[list[int], list[int]]:
    rows = episode_of(seed).truth.expected_rows
    defects = [i for i, row in enumerate(rows) if row.entity_type == "data_quality"]
    return defects, [i for i, row in enumerate(rows) if row.entity_type != "data_quality"]


@pytest.mark.parametrize("seed", first_fast(SEEDS))
def test_the_expected_rows_are_the_injected_incidents_and_defects(seed: int) -> None:
    """Keys from the records alone: each defect's dates on its metric (as a report names it) and segment, each
    incident's record; a defect's row names the data quality family; its observed value is the dashboard's."""
    world = build_warehouse_world(WAREHOUSE, resolve_episode_config(seed=seed, difficulty="warehouse"))
    episode = episode_of(seed)
    dates = episode.public.dates
    rows = episode.truth.expected_rows
    want = {
        row_key(dates[day], "data_quality", COUNT_OF_DASHBOARD.get(d.metric, d.metric))
        for d in world.defects
        for day in d.days
    }
    got = {row_key(r.date, r.entity_type, r.entity_name) for r in rows if r.entity_type == "data_quality"}
    assert got == want and all(r.anomaly_type == DEFECT_FAMILY for r in rows if r.entity_type == "data_quality")
    incidents = {row_key(dates[i.record.day], i.record.entity_type, i.record.entity_name) for i in world.incidents}
    assert {row_key(r.date, r.entity_type, r.entity_name) for r in rows if r.entity_type != "data_quality"} == incidents
    assert len(rows) == len(expected_rows(world))
    assert {d.kind for d in world.defects} <= set(DATA_DEFECTS)


def test_a_data_quality_row_names_what_the_warehouse_publishes_and_only_there() -> None:
    """app_opens on data_quality is a warehouse name: refused at abyss (with abyss's list), valid at the warehouse."""
    row = MetricSubmissionRow(
        date="2026-03-10",
        entity_type="data_quality",
        entity_name="app_opens",
        anomaly_type=DEFECT_FAMILY,
        detection_method="query",
        baseline_value=100.0,
        observed_value=10.0,
        delta_value=-90.0,
        severity="critical",
    )
    dates = episode_of(SEEDS[0]).public.dates
    [issue] = validate_rows([row], dates).values()
    assert "valid: menu_opens, orders_placed, payment_successful" in issue.message
    with entity_names_of("warehouse"):
        assert validate_rows([row], dates) == {}
        assert validate_rows([row.model_copy(update={"entity_name": "app_open_to_order_placed"})], dates)
    assert set(RAW_EVENT_DATA_QUALITY_NAMES) >= {"app_opens", "app_open_to_menu_open"}


@pytest.mark.parametrize("seed", first_fast(SEEDS))
def test_the_perfect_report_scores_one_and_its_reward_is_its_score(seed: int) -> None:
    env = MetricTrackerRlEnvironment()
    env.reset(difficulty="warehouse", seed=seed)
    env.step(MetricTrackerRlAction(analysis_method="query", analysis_args={"sql": "SELECT 1 AS one"}))
    rows = [row.model_copy(update={"detection_method": "query"}) for row in episode_of(seed).truth.expected_rows]
    graded = env.step(MetricTrackerRlAction(classifications=rows))
    assert graded.status == "graded" and graded.reward_breakdown is not None
    assert graded.reward_breakdown.score == 1.0 == graded.reward == env.state.episode_score


@settings(max_examples=40, deadline=None)
@given(seed=st.sampled_from(SEEDS), data=st.data())
def test_calling_a_defect_an_incident_costs_the_row(seed: int, data: st.DataObject) -> None:
    """A defect's row reported on an incident's entity type (its values right) is a miss and a false positive."""
    defects, _ = defects_and_incidents(seed)
    rows = list(episode_of(seed).truth.expected_rows)
    k = data.draw(st.sampled_from(defects))
    entity_type = data.draw(
        st.sampled_from(
            INCIDENT_TYPES
            if rows[k].entity_name.endswith(
                ("_to_menu_open", "_to_product_added_to_cart", "_to_order_placed", "_to_payment_successful")
            )
            else ("event_count",)
        )
    )
    family = {
        "event_count": "absolute_drop_in_event_count",
        "conversion_rate": "rate_drop_from_median",
        "funnel_step": "funnel_break",
    }[entity_type]
    rows[k] = rows[k].model_copy(update={"entity_type": entity_type, "anomaly_type": family})
    assert_one_row_missed_and_false(seed, rows)


def assert_one_row_missed_and_false(seed: int, rows: list[MetricSubmissionRow]) -> None:
    """The truth with one row relabelled grades as one miss plus one false positive, and nothing else."""
    breakdown = grade(seed, rows).breakdown
    n = len(rows)
    assert (breakdown.matched_row_count, breakdown.false_positive_count) == (n - 1, 1)
    assert breakdown.score == pytest.approx((n - 1) / (n + 1), abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(seed=st.sampled_from(SEEDS), data=st.data())
def test_calling_an_incident_a_defect_costs_the_row(seed: int, data: st.DataObject) -> None:
    _, incidents = defects_and_incidents(seed)
    rows = list(episode_of(seed).truth.expected_rows)
    eligible = [i for i in incidents if rows[i].entity_name in RAW_EVENT_DATA_QUALITY_NAMES]
    k = data.draw(st.sampled_from(eligible))
    rows[k] = rows[k].model_copy(update={"entity_type": "data_quality", "anomaly_type": DEFECT_FAMILY})
    assert_one_row_missed_and_false(seed, rows)


@settings(max_examples=40, deadline=None)
@given(seed=st.sampled_from(SEEDS), data=st.data())
def test_any_subset_of_the_truth_scores_its_share(seed: int, data: st.DataObject) -> None:
    """Perfect rows, some left out: recall is the share kept, precision 1, whichever kind each row is."""
    rows = episode_of(seed).truth.expected_rows
    kept = data.draw(st.lists(st.sampled_from(range(len(rows))), unique=True))
    breakdown = grade(seed, [rows[i] for i in sorted(kept)]).breakdown
    assert breakdown.score == pytest.approx(len(kept) / len(rows), abs=1e-6)
    assert breakdown.false_positive_count == 0


@pytest.mark.parametrize("seed", first_fast(SEEDS))
def test_a_defect_reported_without_its_segment_earns_its_share_of_the_sessions(seed: int) -> None:
    """The overlap credit at the warehouse: T is each leaf's counted sessions on the row's date; a row with no
    segment for a segment's defect earns T(I) / T(all), matched all the same (no false positive)."""
    episode = episode_of(seed)
    traffic = overlap_traffic(episode)
    assert traffic is not None
    rows = list(episode.truth.expected_rows)
    named = [i for i, row in enumerate(rows) if row.entity_type == "data_quality" and (row.platform or row.country)]
    if not named:
        pytest.skip("no defect of a segment in this episode")
    k = named[0]
    row = rows[k]
    bare = row.model_copy(
        update={"platform": None, "country": None, "app_version": None, "channel": None, "user_type": None}
    )
    weights = traffic.on(row.date)
    share = weights[traffic.leaves_of(row_segment(row))].sum() / weights.sum()
    breakdown = grade(seed, [*rows[:k], bare, *rows[k + 1 :]]).breakdown
    assert breakdown.false_positive_count == 0 and breakdown.matched_row_count == len(rows)
    assert breakdown.score == pytest.approx(1 - (1 - share) / len(rows), abs=1e-6)


def test_the_brief_publishes_the_kind_rule() -> None:
    brief = MetricTrackerRlEnvironment().reset(difficulty="warehouse", seed=4).segments
    assert brief is not None and KIND_RULE in str(brief["grading"])


def test_edge_cases_an_empty_report_a_repeated_key_and_a_name_valid_only_elsewhere() -> None:
    """Pinned edges: an empty report scores 0 (its reward too) where rows are expected; a repeated key is refused
    without using the submission; a data_quality row on an end-to-end rate (no defect's metric) is no row at all,
    and its error lists the names valid where the data are raw events."""
    rows = episode_of(SEEDS[0]).truth.expected_rows
    env = MetricTrackerRlEnvironment()
    env.reset(difficulty="warehouse", seed=SEEDS[0])
    observation = env.step(MetricTrackerRlAction(classifications=[rows[0], rows[0]]))
    assert observation.status == "error" and env.state.submissions_used == 0, observation.message
    with pytest.raises(ValidationError, match="where the data are raw events, also: app_opens"):
        MetricSubmissionRow.model_validate(
            {**rows[0].model_dump(), "entity_type": "data_quality", "entity_name": "app_open_to_order_placed"}
        )
    graded = env.step(MetricTrackerRlAction(classifications=[]))
    assert graded.status == "graded" and graded.reward == 0.0 == env.state.episode_score
    assert graded.reward_breakdown is not None and graded.reward_breakdown.score == 0.0
