"""Grader properties (score = recall quality x precision, tolerances, side effects), checked on rows built from
real episodes' ground truth."""

from __future__ import annotations

import pytest
from core_helpers import episode, key_of
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from metric_tracker_rl.analysis_tools import GENERATOR_NAMES, TOOL_REGISTRY, run_tool
from metric_tracker_rl.catalog.published import (
    ACCEPTED_DETECTION_METHODS,
    ANOMALY_TYPES,
    ENTITY_NAMES,
    ENTITY_TYPES,
    FAMILY_ENTITY_TYPE,
    SEVERITIES,
)
from metric_tracker_rl.generation.episode import Episode
from metric_tracker_rl.grading.grader import QUALITY_WEIGHTS, grade_submission
from metric_tracker_rl.models import MetricSubmissionRow

PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SEEDS = st.integers(min_value=0, max_value=5_000)
DIFFICULTIES = st.sampled_from(["easy", "medium", "hard"])
VALUES = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


def grade(ep: Episode, rows: list[MetricSubmissionRow]):
    truth = ep.truth
    return grade_submission(rows, truth.expected_rows, truth.neutral_keys, ep.public.dates).breakdown


def score(ep: Episode, rows: list[MetricSubmissionRow]) -> float:
    return grade(ep, rows).score


@st.composite
def episodes(draw, difficulty: st.SearchStrategy[str] = DIFFICULTIES, scenario_family: str = "mixed") -> Episode:
    return episode(draw(SEEDS), scenario_family, draw(difficulty))


@st.composite
def arbitrary_rows(draw, ep: Episode) -> MetricSubmissionRow:
    """Any row at all: valid or invalid keys, any labels, any numbers."""
    entity_type = draw(st.sampled_from(ENTITY_TYPES))
    return MetricSubmissionRow(
        date=draw(st.sampled_from(ep.public.dates) | st.sampled_from(["2026-02-01", "not-a-date"])),
        entity_type=entity_type,
        entity_name=draw(st.sampled_from(ENTITY_NAMES[entity_type])),  # the row model refuses other names
        anomaly_type=draw(st.sampled_from(ANOMALY_TYPES)),
        detection_method=draw(st.sampled_from(sorted(TOOL_REGISTRY))),
        baseline_value=draw(VALUES),
        observed_value=draw(VALUES),
        delta_value=draw(VALUES),
        severity=draw(st.sampled_from(SEVERITIES)),
    )


@st.composite
def variants(draw, row: MetricSubmissionRow) -> MetricSubmissionRow:
    """The same key as `row` with any subset of its other fields changed."""
    changes = {}
    if draw(st.booleans()):
        changes["anomaly_type"] = draw(st.sampled_from(ANOMALY_TYPES))
    if draw(st.booleans()):
        changes["detection_method"] = draw(st.sampled_from(sorted(TOOL_REGISTRY)))
    for field in ("baseline_value", "observed_value", "delta_value"):
        if draw(st.booleans()):
            changes[field] = getattr(row, field) * draw(st.floats(min_value=0.5, max_value=1.5))
    if draw(st.booleans()):
        changes["severity"] = draw(st.sampled_from(SEVERITIES))
    return row.model_copy(update=changes)


@st.composite
def wrong_rows(draw, ep: Episode) -> MetricSubmissionRow:
    """A valid key that is neither expected nor neutral."""
    row = draw(
        arbitrary_rows(ep).filter(lambda r: r.date in ep.public.dates and r.entity_name in ENTITY_NAMES[r.entity_type])
    )
    assume(key_of(row) not in ep.truth.expected_keys | ep.truth.neutral_keys)
    return row


@st.composite
def neutral_rows(draw, ep: Episode) -> MetricSubmissionRow:
    date, entity_type, entity_name = draw(st.sampled_from(sorted(ep.truth.neutral_keys))).split("|")
    row = draw(arbitrary_rows(ep))
    return row.model_copy(update={"date": date, "entity_type": entity_type, "entity_name": entity_name})


@st.composite
def submissions(draw, ep: Episode) -> list[MetricSubmissionRow]:
    """A plausible agent report: some expected rows (exact or not), wrong rows, neutral rows, junk."""
    rows = [draw(variants(r)) if draw(st.booleans()) else r for r in ep.truth.expected_rows if draw(st.booleans())]
    rows += draw(st.lists(wrong_rows(ep), max_size=3))
    if ep.truth.neutral_keys:
        rows += draw(st.lists(neutral_rows(ep), max_size=2))
    rows += draw(st.lists(arbitrary_rows(ep), max_size=2))
    return draw(st.permutations(rows))


@PROPERTY
@given(ep=episodes(), data=st.data())
def test_perfect_report_scores_one(ep: Episode, data: st.DataObject) -> None:
    rows = data.draw(st.permutations(list(ep.truth.expected_rows)))
    breakdown = grade(ep, rows)
    assert breakdown.score == 1.0 and breakdown.recall == 1.0 and breakdown.precision == 1.0


@PROPERTY
@given(ep=episodes())
def test_empty_report_scores_zero_when_there_are_anomalies(ep: Episode) -> None:
    assert ep.truth.expected_rows
    assert score(ep, []) == 0.0


@PROPERTY
@given(ep=episodes(), data=st.data())
def test_score_is_recall_quality_times_precision_both_shares(ep: Episode, data: st.DataObject) -> None:
    """The score lies in [0, 1] because both its factors are shares, not because the grader clamps it."""
    rows = data.draw(submissions(ep))
    breakdown = grade(ep, rows)
    assert 0.0 <= breakdown.recall_quality <= breakdown.recall <= 1.0
    assert 0.0 < breakdown.precision <= 1.0
    assert breakdown.score == pytest.approx(breakdown.recall_quality * breakdown.precision, abs=2e-6)


@PROPERTY
@given(seed=SEEDS, difficulty=DIFFICULTIES, data=st.data())
def test_finding_one_of_three_scores_well_below_half(seed: int, difficulty: str, data: st.DataObject) -> None:
    ep = episode(seed, "mixed", difficulty, anomaly_count=3)
    rows = len(ep.truth.expected_rows)  # three incidents; one that lasts two dates adds a row
    assert ep.truth.incident_count == 3 and rows >= 3
    found = data.draw(st.sampled_from(ep.truth.expected_rows))
    assert score(ep, [found]) <= 1 / rows + 1e-6 < 0.5


@PROPERTY
@given(ep=episodes(), data=st.data())
def test_adding_a_wrong_row_never_raises_the_score(ep: Episode, data: st.DataObject) -> None:
    rows = data.draw(submissions(ep))
    wrong = data.draw(wrong_rows(ep))
    position = data.draw(st.integers(min_value=0, max_value=len(rows)))
    assert score(ep, [*rows[:position], wrong, *rows[position:]]) <= score(ep, rows)


@PROPERTY
@given(ep=episodes(), data=st.data())
def test_adding_a_correct_missing_row_never_lowers_the_score(ep: Episode, data: st.DataObject) -> None:
    missing = data.draw(st.sampled_from(ep.truth.expected_rows))
    rows = [r for r in data.draw(submissions(ep)) if key_of(r) != key_of(missing)]
    position = data.draw(st.integers(min_value=0, max_value=len(rows)))
    assert score(ep, [*rows[:position], missing, *rows[position:]]) >= score(ep, rows)


@PROPERTY
@given(ep=episodes(), data=st.data())
def test_row_order_is_irrelevant(ep: Episode, data: st.DataObject) -> None:
    rows = data.draw(submissions(ep))
    shuffled = data.draw(st.permutations(rows))
    assert grade(ep, shuffled) == grade(ep, rows)


@PROPERTY
@given(ep=episodes(), data=st.data())
def test_duplicates_never_help(ep: Episode, data: st.DataObject) -> None:
    rows = data.draw(submissions(ep))
    assume(rows)
    original = data.draw(st.sampled_from(rows))
    duplicate = data.draw(variants(original) | st.just(original))
    position = data.draw(st.integers(min_value=0, max_value=len(rows)))
    assert score(ep, [*rows[:position], duplicate, *rows[position:]]) <= score(ep, rows)


@PROPERTY
@given(ep=episodes(), data=st.data())
@example(ep=episode(7, "mixed", "hard"), data=None).via("a side-effect row next to a perfect report")
def test_any_row_off_the_expected_keys_strictly_lowers_a_positive_score(ep: Episode, data: st.DataObject) -> None:
    if data is None:  # the pinned case: the perfect report, padded with one side-effect row
        rows, extra = list(ep.truth.expected_rows), neutral_rows_of(ep)[0]
    else:
        rows = data.draw(submissions(ep))
        assume(score(ep, rows) > 0.0)
        extra = data.draw(neutral_rows(ep) | wrong_rows(ep) if ep.truth.neutral_keys else wrong_rows(ep))
    position = len(rows) // 2
    assert score(ep, [*rows[:position], extra, *rows[position:]]) < score(ep, rows)


def neutral_rows_of(ep: Episode) -> list[MetricSubmissionRow]:
    """Each side-effect key of the episode as a row with the published numbers and the expected row's labels."""
    template = ep.truth.expected_rows[0]
    rows = []
    for key in sorted(ep.truth.neutral_keys):
        date, entity_type, entity_name = key.split("|")
        rows.append(template.model_copy(update={"date": date, "entity_type": entity_type, "entity_name": entity_name}))
    return rows


@PROPERTY
@given(ep=episodes())
def test_a_root_cause_report_beats_it_padded_with_side_effects(ep: Episode) -> None:
    assume(ep.truth.neutral_keys)
    perfect = list(ep.truth.expected_rows)
    padded = perfect + neutral_rows_of(ep)
    assert score(ep, perfect) == 1.0
    assert score(ep, padded) < score(ep, perfect)
    assert grade(ep, padded).false_positive_count == len(ep.truth.neutral_keys) == grade(ep, padded).neutral_row_count


def _best_guess_row(ep: Episode, entity_type: str, entity_name: str, day: int) -> MetricSubmissionRow:
    """A row with the published numbers and the most plausible family for the entity and direction."""
    values = ep.public.panel.row(entity_type, entity_name, day)
    families = [f for f in ANOMALY_TYPES if FAMILY_ENTITY_TYPE[f] == entity_type]
    family = families[0] if len(families) == 1 or values["delta_value"] < 0 else families[1]
    return MetricSubmissionRow(
        date=ep.public.dates[day],
        entity_type=entity_type,
        entity_name=entity_name,
        anomaly_type=family,
        detection_method=sorted(ACCEPTED_DETECTION_METHODS[family])[0],
        baseline_value=values["baseline_value"],
        observed_value=values["observed_value"],
        delta_value=values["delta_value"],
        severity=values["severity"],
    )


@settings(max_examples=10, deadline=None)
@given(ep=episodes())
def test_mass_submission_of_every_date_and_entity_scores_near_the_floor(ep: Episode) -> None:
    rows = [
        _best_guess_row(ep, t, n, day)
        for t in ENTITY_TYPES
        for n in ENTITY_NAMES[t]
        for day in range(len(ep.public.dates))
    ]
    breakdown = grade(ep, rows)
    assert breakdown.recall == 1.0  # every incident is in there, with the right numbers
    assert breakdown.score <= 0.15


@settings(max_examples=10, deadline=None)
@given(ep=episodes())
def test_mass_submission_of_every_generator_at_a_low_threshold_scores_near_the_floor(ep: Episode) -> None:
    merged: dict[str, dict] = {}
    for name in GENERATOR_NAMES:
        args = {"threshold": 0.0} if name == "get_rows_with_abs_diff_from_median_gt" else {"threshold_multiplier": 1.0}
        outcome = run_tool(name, ep.public, args)
        assert outcome.ok, outcome.error
        for row in outcome.result["rows"]:
            merged.setdefault(key_of(row), row)
    rows = [MetricSubmissionRow(**row) for row in merged.values()]
    assert len(rows) > 50
    assert score(ep, rows) <= 0.15


@PROPERTY
@given(ep=episodes(scenario_family="null"), data=st.data())
def test_null_episode_scores_one_for_an_empty_report_and_less_for_any_row(ep: Episode, data: st.DataObject) -> None:
    assert score(ep, []) == 1.0
    rows = data.draw(st.lists(arbitrary_rows(ep), min_size=1, max_size=5))
    assert score(ep, rows) < 1.0


# --- near misses: each component loses exactly its documented weight ----------------------------------

DOCUMENTED_LOSS = {"severity": 0.10, "anomaly_type": 0.25, "detection_method": 0.10, "one_value": 0.20 / 3}
SINGLE_ROW_EPISODES = [(family, seed) for family in ANOMALY_TYPES for seed in (5, 6)]


def _single_row_episode(family: str, seed: int) -> Episode:
    ep = episode(seed, family, "easy", anomaly_count=1)
    assert len(ep.truth.expected_rows) == 1
    return ep


def _off_by(row: MetricSubmissionRow, field: str, share: float) -> MetricSubmissionRow:
    """Move one number by `share` of its documented tolerance scale (the baseline for delta)."""
    scale = row.baseline_value if field == "delta_value" else getattr(row, field)
    return row.model_copy(update={field: getattr(row, field) + share * abs(scale)})


@pytest.mark.parametrize(("family", "seed"), SINGLE_ROW_EPISODES)
@pytest.mark.parametrize("field", ["baseline_value", "observed_value", "delta_value"])
@pytest.mark.parametrize(
    ("share", "loss"),
    [(0.01, 0.0), (-0.01, 0.0), (0.03, DOCUMENTED_LOSS["one_value"]), (-0.03, DOCUMENTED_LOSS["one_value"])],
)
def test_value_tolerance(family: str, seed: int, field: str, share: float, loss: float) -> None:
    ep = _single_row_episode(family, seed)
    (row,) = ep.truth.expected_rows
    assert score(ep, [_off_by(row, field, share)]) == pytest.approx(1.0 - loss, abs=1e-6)


def _wrong_severity(row: MetricSubmissionRow) -> MetricSubmissionRow:
    return row.model_copy(update={"severity": next(s for s in SEVERITIES if s != row.severity)})


def _wrong_type(row: MetricSubmissionRow) -> MetricSubmissionRow:
    return row.model_copy(update={"anomaly_type": next(t for t in ANOMALY_TYPES if t != row.anomaly_type)})


def _unaccepted_method(row: MetricSubmissionRow) -> MetricSubmissionRow:
    unaccepted = sorted(set(TOOL_REGISTRY) - ACCEPTED_DETECTION_METHODS[row.anomaly_type])
    return row.model_copy(update={"detection_method": unaccepted[0]})


@pytest.mark.parametrize(("family", "seed"), SINGLE_ROW_EPISODES)
@pytest.mark.parametrize(
    ("mistake", "loss"),
    [
        (_wrong_severity, DOCUMENTED_LOSS["severity"]),
        (_wrong_type, DOCUMENTED_LOSS["anomaly_type"]),
        (_unaccepted_method, DOCUMENTED_LOSS["detection_method"]),
    ],
    ids=["severity", "anomaly_type", "detection_method"],
)
def test_each_wrong_label_loses_its_documented_weight(family: str, seed: int, mistake, loss: float) -> None:
    ep = _single_row_episode(family, seed)
    (row,) = ep.truth.expected_rows
    assert score(ep, [mistake(row)]) == pytest.approx(1.0 - loss, abs=1e-6)


@pytest.mark.parametrize(("family", "seed"), SINGLE_ROW_EPISODES)
def test_every_accepted_method_earns_the_method_credit(family: str, seed: int) -> None:
    ep = _single_row_episode(family, seed)
    (row,) = ep.truth.expected_rows
    for method in ACCEPTED_DETECTION_METHODS[family]:
        assert score(ep, [row.model_copy(update={"detection_method": method})]) == 1.0


# --- `query` as a detection method: accepted for every family, only from an episode that ran a query ----------


def _graded_with(ep: Episode, rows: list[MetricSubmissionRow], methods_used: frozenset[str]):
    truth = ep.truth
    return grade_submission(
        rows, truth.expected_rows, truth.neutral_keys, ep.public.dates, methods_used=methods_used
    ).breakdown


@pytest.mark.parametrize(("family", "seed"), SINGLE_ROW_EPISODES)
def test_query_earns_the_method_credit_only_when_the_episode_queried(family: str, seed: int) -> None:
    ep = _single_row_episode(family, seed)
    (row,) = ep.truth.expected_rows
    by_query = [row.model_copy(update={"detection_method": "query"})]
    without = 1.0 - DOCUMENTED_LOSS["detection_method"]
    assert "query" not in ACCEPTED_DETECTION_METHODS[family]
    assert _graded_with(ep, by_query, frozenset()).score == pytest.approx(without, abs=1e-6)
    assert _graded_with(ep, by_query, frozenset(TOOL_REGISTRY) - {"query"}).score == pytest.approx(without, abs=1e-6)
    assert _graded_with(ep, by_query, frozenset({"query"})).score == 1.0
    # Using query accepts only query: another unaccepted method still loses its weight.
    other = sorted(set(TOOL_REGISTRY) - ACCEPTED_DETECTION_METHODS[family] - {"query"})[0]
    elsewhere = [row.model_copy(update={"detection_method": other})]
    assert _graded_with(ep, elsewhere, frozenset(TOOL_REGISTRY)).score == pytest.approx(without, abs=1e-6)


@PROPERTY
@given(data=st.data(), ep=episodes(), used=st.frozensets(st.sampled_from(sorted(TOOL_REGISTRY))))
def test_the_methods_used_move_nothing_but_the_method_credit(
    data: st.DataObject, ep: Episode, used: frozenset[str]
) -> None:
    rows = [data.draw(variants(row)) for row in ep.truth.expected_rows]
    rows += data.draw(st.lists(arbitrary_rows(ep), max_size=3))
    rows = [row.model_copy(update={"detection_method": "query"}) if data.draw(st.booleans()) else row for row in rows]
    plain, credited = _graded_with(ep, rows, frozenset()), _graded_with(ep, rows, used)
    moved = {"score", "recall_quality", "detection_method_accuracy"}
    assert credited.model_dump(exclude=moved) == plain.model_dump(exclude=moved)
    if "query" not in used or all(row.detection_method != "query" for row in rows):
        assert credited == plain
    else:
        assert credited.detection_method_accuracy >= plain.detection_method_accuracy
        assert credited.score >= plain.score
        assert credited.score <= plain.score + QUALITY_WEIGHTS["detection_method"] + 1e-9
