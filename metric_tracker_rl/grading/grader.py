"""Pure scoring functions: a submission and the hidden truth meet only here.

score = recall_quality * precision
  recall_quality = sum over expected rows of row quality / number of expected rows (1 when none expected)
  row quality    = 0.35 key found + 0.25 anomaly_type + 0.10 accepted detection method
                   + 0.20 values (baseline, observed, delta each within tolerance, 1/3 each) + 0.10 severity
An accepted detection method is one of the family's ACCEPTED_DETECTION_METHODS, or one of
METHODS_ACCEPTED_WHEN_USED (`query`) that the episode ran successfully (keyword `methods_used`, which the
environment fills from the episode's own calls; empty by default, so nothing is accepted for free).
  precision      = (matched + 1) / (matched + false positives + 1)
A false positive is any row not on an expected key: a row on a side-effect key of an injected incident (a
"neutral" key: the incident moved it mechanically) costs as much as any other, so a root-cause report always
beats the same report padded with side effects or hedged with a second family. Duplicate and invalid rows count
as false positives too, and a key reported more than once is graded by its worst row, so neither row order nor
repetition can raise a score.

Segments (difficulty frontier, and deep). An expected row there names the segment its incident is confined to
(platform, country, app_version, and at deep channel and user_type; None = every value). The key still matches by
date, entity type and entity name, and the row's quality is multiplied by its segment credit (keyword
`segment_credit`, defaults in SEGMENT_CREDIT):
  exact          1.0   the same cells (platform=web and platform=web, app_version=web are the same cells)
  parent         0.5   every field named is right, one the truth names is left out (android for android 6.31)
  wrong_version  0.25  the right platform (and every other field named right) with a wrong version: a false claim
  over_specific  0.25  every field of the truth is right and one more is named (web, US for a bug on all of web):
                       the incident is mostly missed
  aggregate      0.0   no segment at all: an incident reported only on the aggregate earns nothing
  wrong          0.0   any other segment (a wrong platform or country)
That table is frontier's (its published figures stay reproducible). A tier whose config says
`segment_credit="overlap"` (deep) credits any cuboid of its dimensions continuously instead (keyword
`leaf_traffic`, which the environment builds from the episode's public counts):
  segment credit = coverage x purity, coverage = T(R and I) / T(I), purity = T(R and I) / T(R)
where R and I are the reported and the incident's cuboids as sets of leaves (an omitted field means all its
values; R and I is empty when they disagree on a field) and T is the leaves' app opens on the incident's date, as
observed (daily_by_segment). Observed rather than a same-weekday baseline: a release's first days have traffic but
a zero baseline, which would leave its incident without weight; and an incident's own move of its cuboid's opens
(an outage, bots) changes only the purity of a report coarser than the incident. The exact cuboid earns 1, a
cuboid that shares no traffic with the incident 0, the aggregate T(I) / T(all).
At a tier whose config sets `twin_z` (abyss) the truth also keeps twin rows (keyword `twin_rows`): the same key on
a segment one field from the incident's whose traffic between the two could not show that date's fall, its values
read from its own data. A row on a twin's segment is graded against that twin too, and keeps the better grade
(truths_of), so a twin never lowers a grade.
A matched row keeps its key (it is no false positive), so a wrong segment costs the incident, not more. Below
frontier no row may name a segment (validation refuses it) and every expected row is the whole funnel, so the
credit is 1 and scores are exactly as before; the breakdown's segment_accuracy is then None.

Repaired values (the audit from its version 2: keyword `repaired_values`). A data defect's row (entity type
data_quality) has four values, not three: baseline, observed, delta and repaired_value, a quarter of the values
weight each. The repaired value is right within REPAIRED_TOLERANCE of the expected one; where the recorded events
cannot tell it the expected row holds none, and any value (or none) is right. Every other row keeps its three.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from metric_tracker_rl.catalog.families import PUBLISHED_FAMILIES, FamilyCatalog
from metric_tracker_rl.catalog.plain_types import MetricSubmissionRow, RewardBreakdown
from metric_tracker_rl.catalog.published import (
    COUNT_COLUMNS,
    METHODS_ACCEPTED_WHEN_USED,
    QUALITY_WEIGHTS,
    RELATIVE_TOLERANCE,
    REPAIRED_TOLERANCE,
    row_key,
)
from metric_tracker_rl.catalog.validation import validate_rows
from metric_tracker_rl.world.segments import SEGMENT_FIELDS, Segment, SegmentedData

DEFECT_ENTITY_TYPE = "data_quality"  # the entity type of a data defect's rows
SEGMENT_CREDIT = {
    "exact": 1.0,
    "parent": 0.5,
    "wrong_version": 0.25,
    "over_specific": 0.25,
    "aggregate": 0.0,
    "wrong": 0.0,
}


def row_segment(row: MetricSubmissionRow) -> Segment:
    return Segment(row.platform, row.country, row.app_version, row.channel, row.user_type)


def segment_match(submitted: Segment, expected: Segment) -> str:
    """How a reported segment relates to the incident's: a key of SEGMENT_CREDIT (see the module docstring)."""
    row, truth = submitted.normalised(), expected.normalised()
    if row == truth:
        return "exact"
    if row.is_aggregate:
        return "aggregate"
    pairs = list(zip(row.values(), truth.values(), strict=True))
    if all(named is None or named == true for named, true in pairs):
        return "parent"
    if all(true is None or named == true for named, true in pairs):
        return "over_specific"
    others = [
        (named, true)
        for name, named, true in zip(SEGMENT_FIELDS, row.values(), truth.values(), strict=True)
        if name not in ("platform", "app_version")
    ]
    if (
        row.platform is not None
        and row.platform == truth.platform
        and all(n in (None, t) for n, t in others)
        and row.app_version is not None
        and row.app_version != truth.app_version
    ):
        return "wrong_version"
    return "wrong"


@dataclass(frozen=True)
class LeafTraffic:
    """T of the overlap credit: each leaf's app opens on each date (`opens`, (L, D), from daily_by_segment) and
    `leaves_of`, the (L,) bool mask of the leaves inside a segment. Plain arrays and a function, so the grader needs
    nothing of the environment; the environment builds it from the episode's public counts."""

    dates: tuple[str, ...]
    opens: np.ndarray
    leaves_of: Callable[[Segment], np.ndarray]

    def on(self, date: str) -> np.ndarray:
        """(L,) each leaf's weight on a date of the window."""
        return self.opens[:, self.dates.index(date)]


def leaf_traffic_of(segments: SegmentedData, dates: Sequence[str]) -> LeafTraffic:
    """T from an episode's public counts: each leaf's observed app opens per date (daily_by_segment)."""
    return LeafTraffic(tuple(dates), segments.leaves[..., COUNT_COLUMNS.index("app_opens")], segments.leaf_mask)


@dataclass(frozen=True)
class SegmentOverlap:
    """How a reported cuboid R overlaps an incident's I in traffic: coverage = T(R and I) / T(I), the share of the
    incident's traffic the report covers; purity = T(R and I) / T(R), the share of the reported traffic the incident
    affected. Their product is the segment credit."""

    coverage: float
    purity: float

    @property
    def credit(self) -> float:
        return self.coverage * self.purity


def segment_overlap(
    reported: Segment, incident: Segment, weights: np.ndarray, leaves_of: Callable[[Segment], np.ndarray]
) -> SegmentOverlap:
    """The traffic overlap of two cuboids under `weights` ((L,) per leaf, >= 0). Sums are exactly rounded
    (math.fsum), so two cuboids that hold the same leaves with traffic meet at exactly 1, whatever else they name.
    An incident without traffic (never drawn) is matched only by a report without traffic."""
    mine, theirs = leaves_of(reported), leaves_of(incident)
    both = math.fsum(weights[mine & theirs])
    reported_total, incident_total = math.fsum(weights[mine]), math.fsum(weights[theirs])
    if incident_total == 0.0:
        same = float(reported_total == 0.0)
        return SegmentOverlap(same, same)
    return SegmentOverlap(both / incident_total, both / reported_total if reported_total > 0.0 else 0.0)


@dataclass(frozen=True)
class RowAssessment:
    anomaly_type: bool
    detection_method: bool
    values_in_tolerance: int  # 0..values_asked
    severity: bool
    segment: float = 1.0  # the segment credit (1 below frontier)
    overlap: SegmentOverlap | None = None  # where the credit is the overlap: its coverage and purity
    values_asked: int = 3  # baseline, observed, delta; and the repaired value on a defect row that asks it
    repaired: bool | None = None  # whether the repaired value is right, where it is asked (None: not asked)

    @property
    def values_share(self) -> Fraction:
        """The share of the row's values within tolerance, exactly (a sum of them rounds once)."""
        return Fraction(self.values_in_tolerance, self.values_asked)

    @property
    def quality(self) -> float:
        w = QUALITY_WEIGHTS
        return self.segment * min(
            1.0,
            w["key"]
            + w["anomaly_type"] * self.anomaly_type
            + w["detection_method"] * self.detection_method
            + w["values"] * self.values_in_tolerance / self.values_asked
            + w["severity"] * self.severity,
        )


@dataclass(frozen=True)
class GradeResult:
    breakdown: RewardBreakdown

    @property
    def score(self) -> float:
        return self.breakdown.score


def within_tolerance(
    submitted: float, expected: float, scale: float, *, relative_tolerance: float = RELATIVE_TOLERANCE
) -> bool:
    return abs(submitted - expected) <= relative_tolerance * max(abs(scale), 1e-9)


def asks_repaired_value(expected: MetricSubmissionRow, repaired_values: bool) -> bool:
    """Whether a row on `expected`'s key is graded on its repaired value: a data defect's row at a tier that asks
    them (`repaired_values`)."""
    return repaired_values and expected.entity_type == DEFECT_ENTITY_TYPE


def repaired_in_tolerance(submitted: float | None, expected: float | None) -> bool:
    """A repaired value's verdict: within REPAIRED_TOLERANCE of the expected one; where the recorded events cannot
    tell it (the expected row holds none) nothing is asked, so any value, or none, is right."""
    if expected is None:
        return True
    return submitted is not None and within_tolerance(
        submitted, expected, expected, relative_tolerance=REPAIRED_TOLERANCE
    )


def accepted_methods(
    anomaly_type: str, methods_used: frozenset[str] = frozenset(), families: FamilyCatalog = PUBLISHED_FAMILIES
) -> frozenset[str]:
    """The detection methods that earn a family's method credit in an episode that ran `methods_used`."""
    return families[anomaly_type].accepted_methods | (METHODS_ACCEPTED_WHEN_USED & methods_used)


def assess_row(
    row: MetricSubmissionRow,
    expected: MetricSubmissionRow,
    *,
    segment_credit: Mapping[str, float] = SEGMENT_CREDIT,
    leaf_traffic: LeafTraffic | None = None,
    families: FamilyCatalog = PUBLISHED_FAMILIES,
    methods_used: frozenset[str] = frozenset(),
    repaired_values: bool = False,
) -> RowAssessment:
    """How far a row on an expected key is right; `families` tells which detection methods each family accepts,
    `methods_used` which methods the episode ran (see accepted_methods). With `leaf_traffic` the segment credit is
    the overlap on the expected row's date, else the `segment_credit` table's verdict. With `repaired_values` a
    defect row's values are four, its repaired value the fourth (asks_repaired_value)."""
    overlap = None
    if leaf_traffic is None:
        segment = segment_credit[segment_match(row_segment(row), row_segment(expected))]
    else:
        overlap = segment_overlap(
            row_segment(row), row_segment(expected), leaf_traffic.on(expected.date), leaf_traffic.leaves_of
        )
        segment = overlap.credit
    values = (
        within_tolerance(row.baseline_value, expected.baseline_value, expected.baseline_value)
        + within_tolerance(row.observed_value, expected.observed_value, expected.observed_value)
        + within_tolerance(row.delta_value, expected.delta_value, expected.baseline_value)
    )
    asked = asks_repaired_value(expected, repaired_values)
    repaired = repaired_in_tolerance(row.repaired_value, expected.repaired_value) if asked else None
    return RowAssessment(
        anomaly_type=row.anomaly_type == expected.anomaly_type,
        detection_method=row.detection_method in accepted_methods(expected.anomaly_type, methods_used, families),
        values_in_tolerance=int(values) + bool(repaired),
        severity=row.severity == expected.severity,
        segment=segment,
        overlap=overlap,
        values_asked=4 if asked else 3,
        repaired=repaired,
    )


@dataclass(frozen=True)
class RowVerdict:
    """One submitted row against the truth: its key, its verdict (`matched`, `side_effect`, `not_expected`, or the
    validation issue that makes it a false positive) and, on an expected key, how far it is right."""

    row_index: int
    key: str
    verdict: str
    assessment: RowAssessment | None  # set for a row on an expected key (even a duplicate: its worst row counts)


def judge_rows(
    rows: Sequence[MetricSubmissionRow],
    expected: Mapping[str, MetricSubmissionRow],
    neutral_keys: frozenset[str],
    valid_dates: Iterable[str],
    *,
    segment_values: Mapping[str, Sequence[str]] | None = None,
    segment_credit: Mapping[str, float] = SEGMENT_CREDIT,
    leaf_traffic: LeafTraffic | None = None,
    families: FamilyCatalog = PUBLISHED_FAMILIES,
    methods_used: frozenset[str] = frozenset(),
    twin_rows: Sequence[MetricSubmissionRow] = (),
    repaired_values: bool = False,
) -> list[RowVerdict]:
    """Every submitted row's verdict: the one pass that both the score and the row-by-row review read."""
    issues = validate_rows(rows, valid_dates, segment_values)
    verdicts = []
    for i, row in enumerate(rows):
        key = row_key(row.date, row.entity_type, row.entity_name)
        assessment = None
        if key in expected and not (i in issues and issues[i].code == "invalid_row"):  # e.g. an unknown segment
            assessment = max(
                (
                    assess_row(
                        row,
                        truth,
                        segment_credit=segment_credit,
                        leaf_traffic=leaf_traffic,
                        families=families,
                        methods_used=methods_used,
                        repaired_values=repaired_values,
                    )
                    for truth in truths_of(row, expected[key], twin_rows)
                ),
                key=lambda a: a.quality,
            )
        verdict = (
            issues[i].code
            if i in issues
            else "side_effect"
            if key in neutral_keys
            else "matched"
            if key in expected
            else "not_expected"
        )
        verdicts.append(RowVerdict(i, key, verdict, assessment))
    return verdicts


def truths_of(
    row: MetricSubmissionRow, expected: MetricSubmissionRow, twin_rows: Sequence[MetricSubmissionRow]
) -> list[MetricSubmissionRow]:
    """What a row on an expected key may be graded against (the best counts): the expected row, and the twin row
    of that key on the row's own segment where there is one (a segment the data cannot tell from the incident's,
    credited as its own). A twin only adds a truth, so it never lowers a grade."""
    reported = row_segment(row).normalised()
    key = row_key(expected.date, expected.entity_type, expected.entity_name)
    return [
        expected,
        *(
            twin
            for twin in twin_rows
            if row_key(twin.date, twin.entity_type, twin.entity_name) == key
            and row_segment(twin).normalised() == reported
        ),
    ]


def _expected_by_key(expected_rows: Sequence[MetricSubmissionRow]) -> dict[str, MetricSubmissionRow]:
    return {row_key(r.date, r.entity_type, r.entity_name): r for r in expected_rows}


def grade_submission(
    rows: Sequence[MetricSubmissionRow],
    expected_rows: Sequence[MetricSubmissionRow],
    neutral_keys: frozenset[str],
    valid_dates: Iterable[str],
    *,
    segment_values: Mapping[str, Sequence[str]] | None = None,
    segment_credit: Mapping[str, float] = SEGMENT_CREDIT,
    leaf_traffic: LeafTraffic | None = None,
    families: FamilyCatalog = PUBLISHED_FAMILIES,
    methods_used: frozenset[str] = frozenset(),
    twin_rows: Sequence[MetricSubmissionRow] = (),
    repaired_values: bool = False,
) -> GradeResult:
    """Score a report against the expected rows. `segment_values` lists each dimension's values of a segmented
    episode (None: no segments, and a row naming one is invalid); `leaf_traffic` makes the segment credit the
    overlap (a tier with segment_credit="overlap"; None: the `segment_credit` table); `families` publishes the
    expected rows' families (their accepted detection methods); `methods_used` the analysis methods the episode
    ran successfully (see accepted_methods); `twin_rows` the truth's rows on segments the data cannot tell from
    their incident's (see truths_of); `repaired_values` whether a defect row is graded on its repaired value (the
    audit from its version 2: asks_repaired_value)."""
    expected = _expected_by_key(expected_rows)
    verdicts = judge_rows(
        rows,
        expected,
        neutral_keys,
        valid_dates,
        segment_values=segment_values,
        segment_credit=segment_credit,
        leaf_traffic=leaf_traffic,
        families=families,
        methods_used=methods_used,
        twin_rows=twin_rows,
        repaired_values=repaired_values,
    )
    worst: dict[str, RowAssessment] = {}
    for judged in verdicts:
        if judged.assessment is not None:
            worst[judged.key] = min(
                worst.get(judged.key, judged.assessment), judged.assessment, key=lambda a: a.quality
            )
    neutral = sum(judged.verdict == "side_effect" for judged in verdicts)
    false_positives = sum(judged.verdict not in ("matched", "side_effect") for judged in verdicts)
    n_expected = len(expected)
    matched = len(worst)
    share = (lambda total: total / n_expected) if n_expected else (lambda total: 1.0)
    recall_quality = share(sum(a.quality for a in worst.values()))
    precision = (matched + 1) / (matched + false_positives + neutral + 1)  # a side-effect row is a false positive
    score = round(min(1.0, max(0.0, recall_quality * precision)), 6)
    breakdown = RewardBreakdown(
        score=score,
        recall_quality=round(recall_quality, 6),
        precision=round(precision, 6),
        recall=round(share(matched), 6),
        anomaly_type_accuracy=round(share(sum(a.anomaly_type for a in worst.values())), 6),
        detection_method_accuracy=round(share(sum(a.detection_method for a in worst.values())), 6),
        value_accuracy=round(share(float(sum(a.values_share for a in worst.values()))), 6),
        severity_accuracy=round(share(sum(a.severity for a in worst.values())), 6),
        segment_accuracy=round(share(sum(a.segment for a in worst.values())), 6)
        if segment_values is not None
        else None,
        submitted_row_count=len(rows),
        matched_row_count=matched,
        false_positive_count=false_positives + neutral,
        neutral_row_count=neutral,
        duplicate_row_count=sum(judged.verdict == "duplicate_row" for judged in verdicts),
        invalid_row_count=sum(judged.verdict == "invalid_row" for judged in verdicts),
    )
    return GradeResult(breakdown)


def graded_comparison(
    rows: Sequence[MetricSubmissionRow],
    expected_rows: Sequence[MetricSubmissionRow],
    neutral_keys: frozenset[str],
    valid_dates: Iterable[str],
    *,
    segment_values: Mapping[str, Sequence[str]] | None = None,
    leaf_traffic: LeafTraffic | None = None,
    methods_used: frozenset[str] = frozenset(),
    twin_rows: Sequence[MetricSubmissionRow] = (),
    repaired_values: bool = False,
) -> dict[str, Any]:
    """The grade row by row, for a person or a trainer reviewing a finished episode: each submitted row's verdict
    (`matched` with which fields were right and its quality, `side_effect` (a neutral row), `not_expected`, or the
    validation issue that made it a false positive) and the expected rows no row reported. It is the answer
    itself, so the environment shows it only after the episode is over and never in held-out mode. Where the
    credit is the overlap (`leaf_traffic`), a matched row also shows its coverage and purity."""
    expected = _expected_by_key(expected_rows)
    verdicts = judge_rows(
        rows,
        expected,
        neutral_keys,
        valid_dates,
        segment_values=segment_values,
        leaf_traffic=leaf_traffic,
        methods_used=methods_used,
        twin_rows=twin_rows,
        repaired_values=repaired_values,
    )
    entries: list[dict[str, Any]] = []
    for judged in verdicts:
        entry: dict[str, Any] = {"row_index": judged.row_index, "key": judged.key, "verdict": judged.verdict}
        assessment = judged.assessment
        if judged.verdict == "matched" and assessment is not None:
            entry.update(
                anomaly_type_ok=assessment.anomaly_type,
                detection_method_ok=assessment.detection_method,
                values_in_tolerance=assessment.values_in_tolerance,
                severity_ok=assessment.severity,
                quality=round(assessment.quality, 6),
            )
            if assessment.repaired is not None:
                entry["repaired_value_ok"] = assessment.repaired
            if segment_values is not None:
                entry["segment_credit"] = round(assessment.segment, 6)
            if assessment.overlap is not None:
                entry.update(coverage=round(assessment.overlap.coverage, 6), purity=round(assessment.overlap.purity, 6))
        entries.append(entry)
    reported = {judged.key for judged in verdicts if judged.verdict == "matched"}
    missed = [row.model_dump() for key, row in expected.items() if key not in reported]
    return {"rows": entries, "missed": missed}
