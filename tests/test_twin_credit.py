"""Two fields or three, at abyss: where a row's segment and its incident's are one field apart and the traffic
between them could not show the incident's fall on the row's date (an expected z under the tier's twin_z by the
sizing the brief publishes), the row is graded as if it named the incident's segment, its values read from its own
segment. The generator's twins are the published rule recomputed from the plan's expected counts; the grader only
ever adds such a truth, so no grade falls and rewards still sum to the score; seed 868080's report on MX x referral
(its incident on MX x referral x returning) is credited on the date whose data cannot tell them apart; every other
tier has no twin; the published sentence is the tier's."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from text_reader import read_observation

from metric_tracker_rl.analysis_tools.tools.task_overview import grading_rule
from metric_tracker_rl.catalog.published import SEVERITIES
from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.catalog.tiers import TIERS, TWIN_Z
from metric_tracker_rl.generation.anomalies.base import step_index
from metric_tracker_rl.generation.kinds import SegmentIncident
from metric_tracker_rl.generation.kinds.cuboid import leaf_mask
from metric_tracker_rl.generation.segmented import PlacedWorld, build_world, place_world
from metric_tracker_rl.generation.twins import one_field_apart, twin_segments
from metric_tracker_rl.grading.grader import assess_row, grade_submission, row_segment, truths_of
from metric_tracker_rl.grading.overlap_examples import EXAMPLE_DATE, example_traffic
from metric_tracker_rl.models import MetricSubmissionRow, MetricTrackerRlAction
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.view.prompt import first_prompt
from metric_tracker_rl.world.segments import Segment

ABYSS = "abyss"
SEED_868080 = 868_080
FIELDS = ("platform", "country", "app_version", "channel", "user_type")
PROPERTIES = settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@cache
def _brief(difficulty: str) -> dict[str, Any]:
    return read_observation(first_prompt(MetricTrackerRlEnvironment().reset(difficulty=difficulty, seed=1))).brief


@cache
def _placed(seed: int) -> PlacedWorld:
    return place_world(TIERS[ABYSS], resolve_episode_config(difficulty=ABYSS, seed=seed))


# --- the rule as a reader computes it from the brief -------------------------------------------------------------


def _published_sd() -> tuple[float, float]:
    """The leaf and shared terms of the brief's sd = sqrt((1 - p) / (p * n) + a / L + b)."""
    shape = _brief(ABYSS)["segments"]["incident_shape"]
    found = re.search(r"sqrt\(\(1 - p\) / \(p \* n\) \+ ([\d.]+) / L \+ ([\d.]+)\)", shape)
    assert found is not None, shape
    return float(found[1]), float(found[2])


def _reader_z(placed: PlacedWorld, incident: SegmentIncident, between: np.ndarray, undo: bool) -> float:
    """The incident's fall on its date in the traffic `between` two segments, sized as the brief sizes an all-day
    incident: f / sd, sd from that traffic's expected n, p (without the fall) and L that date."""
    leaf, shared = _published_sd()
    step = step_index(incident.record.entity_name)
    day, fall = incident.record.day, incident.record.magnitude
    reach = placed.plan.leaf_reach([day])[:, :, day]
    n = reach[between][:, step].sum()
    if n <= 0:
        return 0.0
    p = min(reach[between][:, step + 1].sum() / n / ((1 - fall) if undo else 1.0), 1.0)
    units = (reach[between][:, step] > 0).sum()
    return float(fall / np.sqrt((1 - p) / (p * n) + leaf / units + shared))


def test_twins_are_the_neighbours_whose_traffic_between_could_not_show_that_dates_fall() -> None:
    """Every segment one field from an all-day rate incident's that shares its traffic on a date is a twin of that
    date exactly when the brief's sizing puts that date's fall under twin_z in the traffic between them; an
    incident of hours has none."""
    checked = {"twins": 0, "others": 0, "of hours": 0}
    for seed in range(65_000, 65_012):
        placed = _placed(seed)
        for incident in placed.incidents:
            twins = set(twin_segments(placed.world, incident, FIELDS, TWIN_Z))
            if incident.record.hours != (0, 24):
                assert not twins
                checked["of hours"] += 1
                continue
            day, step = incident.record.day, step_index(incident.record.entity_name)
            own = leaf_mask(placed.world, incident.segment)
            for other in set(one_field_apart(incident.segment.normalised(), FIELDS, placed.world)):
                theirs = leaf_mask(placed.world, other)
                shared = placed.plan.leaf_reach([day])[:, :, day, step][own & theirs].sum()
                if other == incident.segment.normalised() or shared <= 0:
                    assert other not in twins
                    continue
                inside = bool((theirs <= own).all())
                z = _reader_z(placed, incident, own & ~theirs if inside else theirs & ~own, inside)
                assert (other in twins) == (z < TWIN_Z), (seed, incident.segment.label(), other.label(), z)
                checked["twins" if other in twins else "others"] += 1
    assert min(checked.values()) > 0, checked


def _twins_with_z() -> Iterator[tuple[PlacedWorld, SegmentIncident, Segment, float]]:
    """Every twin of the incidents of a few abyss episodes, with the z its traffic between would show."""
    for seed in range(65_000, 65_012):
        placed = _placed(seed)
        for incident in placed.incidents:
            own = leaf_mask(placed.world, incident.segment)
            for twin in twin_segments(placed.world, incident, FIELDS, TWIN_Z):
                theirs = leaf_mask(placed.world, twin)
                inside = bool((theirs <= own).all())
                yield (
                    placed,
                    incident,
                    twin,
                    _reader_z(placed, incident, own & ~theirs if inside else theirs & ~own, inside),
                )


def test_a_twin_stands_strictly_under_the_bar() -> None:
    """The bar is strict: with twin_z set to a twin's own z it is no twin, a hair above it is."""
    placed, incident, twin, z = next(found for found in _twins_with_z() if found[3] > 0)
    assert twin not in twin_segments(placed.world, incident, FIELDS, z * (1 - 1e-9))
    assert twin in twin_segments(placed.world, incident, FIELDS, z * (1 + 1e-9))


# --- the grader: a twin only adds a truth -------------------------------------------------------------------------

TRAFFIC = example_traffic()
VALUES = {
    "platform": ("ios", "android", "web"),
    "country": ("US", "IN", "MX"),
    "channel": ("organic", "referral"),
    "user_type": ("new", "returning"),
}
INCIDENT = Segment(country="MX", channel="referral", user_type="returning")
SEGMENT_VALUES = {
    "platform": ["ios", "android", "web"],
    "country": ["US", "GB", "DE", "FR", "BR", "IN", "JP", "MX"],
    "app_version": ["6.31.0", "6.32.0", "6.33.0", "web"],
    "channel": ["organic", "paid_search", "paid_social", "referral"],
    "user_type": ["new", "returning"],
}


def _segments() -> st.SearchStrategy[Segment]:
    return st.fixed_dictionaries({name: st.none() | st.sampled_from(values) for name, values in VALUES.items()}).map(
        lambda named: Segment(**named)
    )


def _row(segment: Segment, values: tuple[float, float], severity: str) -> MetricSubmissionRow:
    baseline, observed = values
    return MetricSubmissionRow(
        date=EXAMPLE_DATE,
        entity_type="conversion_rate",
        entity_name="order_placed_to_payment_successful",
        anomaly_type="rate_drop_from_median",
        detection_method="compare_rate_to_median",
        baseline_value=baseline,
        observed_value=observed,
        delta_value=observed - baseline,
        severity=severity,
        **segment.named(),
    )


VALUE_PAIRS = st.tuples(st.floats(0.5, 1.0), st.floats(0.0, 1.0))


@PROPERTIES
@given(
    reported=_segments(),
    twins=st.lists(_segments(), max_size=3),
    reported_values=VALUE_PAIRS,
    twin_values=VALUE_PAIRS,
    severity=st.sampled_from(SEVERITIES),
)
@example(
    reported=Segment(country="MX", channel="referral"),
    twins=[Segment(country="MX", channel="referral")],
    reported_values=(0.913, 0.6765),
    twin_values=(0.913, 0.6765),
    severity="medium",
)  # seed 868080's case
@example(
    reported=INCIDENT,
    twins=[Segment(country="MX", channel="referral")],
    reported_values=(0.9, 0.5),
    twin_values=(0.9, 0.5),
    severity="high",
)  # the incident's own segment: its twins change nothing
@example(
    reported=Segment(country="MX", channel="referral"),
    twins=[Segment(country="MX", channel="referral")],
    reported_values=(0.9167, 0.5926),
    twin_values=(0.913, 0.6765),
    severity="high",
)  # the incident's values
def test_a_row_is_graded_by_its_best_truth_and_a_twin_never_lowers_it(
    reported: Segment,
    twins: list[Segment],
    reported_values: tuple[float, float],
    twin_values: tuple[float, float],
    severity: str,
) -> None:
    expected = _row(INCIDENT, (0.9167, 0.5926), "high")
    twin_rows = [_row(twin, twin_values, "medium") for twin in twins]
    row = _row(reported, reported_values, severity)
    without = assess_row(row, expected, leaf_traffic=TRAFFIC).quality
    on_twin = [
        assess_row(row, twin, leaf_traffic=TRAFFIC)
        for twin in twin_rows
        if row_segment(twin).normalised() == reported.normalised()
    ]
    graded = max(assess_row(row, truth, leaf_traffic=TRAFFIC).quality for truth in truths_of(row, expected, twin_rows))
    assert graded == max([without, *(a.quality for a in on_twin)])
    assert all(a.segment == 1.0 for a in on_twin)  # a twin's own segment earns the full credit
    args = ([row], [expected], frozenset(), [EXAMPLE_DATE])
    kwargs: dict[str, Any] = {"segment_values": SEGMENT_VALUES, "leaf_traffic": TRAFFIC}
    plain = grade_submission(*args, **kwargs).breakdown
    credited = grade_submission(*args, **kwargs, twin_rows=twin_rows).breakdown
    assert credited.score >= plain.score and credited.precision == plain.precision
    assert (credited.score == plain.score) == (graded == without)


def test_rewards_sum_to_the_score_when_a_retry_moves_to_a_twin() -> None:
    """A first report of one twin row, then every incident's row on a twin where it has one: each reward is the gain
    over the best credited score so far (a retry costs its share), so the rewards sum to the episode's score."""
    env = MetricTrackerRlEnvironment()
    env.reset(difficulty=ABYSS, seed=SEED_868080, max_submissions=3)
    truth = build_world(TIERS[ABYSS], resolve_episode_config(difficulty=ABYSS, seed=SEED_868080))
    assert truth.twins
    episode = env._episode  # noqa: SLF001  (the test reads the truth it grades against)
    assert episode is not None
    twin_rows = episode.truth.twin_rows
    on_twins = [
        next((t for t in twin_rows if (t.date, t.entity_name) == (row.date, row.entity_name)), row)
        for row in episode.truth.expected_rows
    ]
    rewards = [
        env.step(MetricTrackerRlAction(classifications=[r.model_dump() for r in report])).reward
        for report in (on_twins[:1], on_twins)
    ]
    assert 0.0 < rewards[0] < 0.5 and rewards[1] > 0.0
    assert sum(rewards) == pytest.approx(env.state.episode_score)


# --- where it applies and what the brief says ---------------------------------------------------------------------


@pytest.mark.parametrize("difficulty", ["frontier", "deep"])
def test_no_other_tier_has_twins_or_says_so(difficulty: str) -> None:
    for seed in range(3):
        drawn = build_world(TIERS[difficulty], resolve_episode_config(difficulty=difficulty, seed=seed))
        assert drawn.twins == ()
    assert "cannot tell the two apart" not in grading_rule(difficulty) + json.dumps(_brief(difficulty))


def test_task_overview_states_the_tiers_bar_and_sizing_and_the_brief_points_there() -> None:
    grading = grading_rule(ABYSS)
    said = re.search(
        r"on a date when the incident's fall would stand under ([\d.]+) in the traffic one of the two "
        r"holds and the other does not, sized as the brief's incident_shape sizes an all-day incident",
        grading,
    )
    assert said is not None and float(said[1]) == TWIN_Z, grading
    assert "with one field more or less" in grading and "its values judged on its own segment's data" in grading
    assert "(see task_overview's grading)" in _brief(ABYSS)["segments"]["incident_shape"]


def test_seed_868080s_fall_is_hidden_from_the_two_field_parent_on_04_14_and_not_on_04_13() -> None:
    """The payment step fell in MX x referral x returning on 04-13 and 04-14: by the published sizing the new users'
    traffic of MX x referral could not show the fall on 04-14 (z about 2.2) and could on 04-13 (about 3.2), so the
    parent is a twin of the first incident only."""
    parent = Segment(country="MX", channel="referral")
    placed = place_world(TIERS[ABYSS], resolve_episode_config(difficulty=ABYSS, seed=SEED_868080))
    between = leaf_mask(placed.world, parent) & ~leaf_mask(placed.world, INCIDENT)
    z = {i.record.day: _reader_z(placed, i, between, False) for i in placed.incidents if i.segment == INCIDENT}
    assert sorted(round(value, 1) for value in z.values()) == [2.2, 3.2]
    assert all(
        (parent in twin_segments(placed.world, i, FIELDS, TWIN_Z)) == (z[i.record.day] < TWIN_Z)
        for i in placed.incidents
        if i.segment == INCIDENT
    )
