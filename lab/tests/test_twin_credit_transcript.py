"""Seed 868080's abyss report, as a model submitted it (a kept transcript): credited on the two-field parent where
the date cannot tell the twins apart, and lab.calibration.twin_credit grades it with and without the credit."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, settings

from lab.calibration.twin_credit import episode_scores
from lab.tests.helpers import ROOT
from metric_tracker_rl.grading.grader import row_segment
from metric_tracker_rl.models import MetricSubmissionRow, MetricTrackerRlAction
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.world.segments import Segment

ABYSS = "abyss"
TRANSCRIPTS = ROOT / "lab" / "artifacts" / "model_transcripts"
SEED_868080 = 868_080
FIELDS = ("platform", "country", "app_version", "channel", "user_type")
PROPERTIES = settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def _transcript_report() -> list[dict[str, Any]]:
    calls = json.loads((TRANSCRIPTS / f"abyss-{SEED_868080}.json").read_text())["calls"]
    return [call for call in calls if call["tool"] == "submit_report"][-1]["arguments"]["rows"]


def test_seed_868080s_report_on_the_two_field_parent_is_credited_where_that_date_cannot_tell() -> None:
    """The payment step fell in MX x referral x returning on 04-13 and 04-14, beside 7 and 6 new-user orders (7.4
    and 3.8 expected). On 04-14 the new users' traffic could not show the fall (z about 2.2 by the published
    sizing): the model's row on MX x referral, with that segment's own values, is graded as the incident's. On 04-13
    it could (z about 3.2; the 7 new-user orders all succeeded where the fall would have left about 4): that row
    keeps its overlap credit (tests/test_twin_credit.py shows why from the data). As recorded (before the credit)
    the report scored 0.74."""
    env = MetricTrackerRlEnvironment()
    env.reset(difficulty=ABYSS, seed=SEED_868080)
    result = env.step(MetricTrackerRlAction(classifications=_transcript_report()))
    assert result.comparison is not None and result.reward == result.episode_score
    assert result.reward > 0.85, result.message
    credit = {
        row["key"][:10]: row["segment_credit"]
        for row in result.comparison["rows"]
        if row["key"].endswith("order_placed_to_payment_successful") and row["key"].startswith("2026-04-1")
    }
    assert credit["2026-04-14"] == 1.0 and credit["2026-04-13"] < 0.7
    episode = env._episode  # noqa: SLF001  (the test reads the truth it graded against)
    assert episode is not None
    parent = Segment(country="MX", channel="referral")
    twin = next(
        t
        for t in episode.truth.twin_rows
        if row_segment(t) == parent and t.date == "2026-04-14" and t.entity_name == "order_placed_to_payment_successful"
    )
    reported = next(
        row
        for row in _transcript_report()
        if row["date"] == "2026-04-14"
        and row.get("channel")
        and row["entity_name"] == "order_placed_to_payment_successful"
    )
    assert abs(twin.observed_value - reported["observed_value"]) < 1e-4  # the model's own figure from the data


def test_the_benchmark_grades_a_report_with_and_without_the_credit() -> None:
    """lab.calibration.twin_credit on seed 868080's report: 0.74 under the overlap credit alone (as recorded), more with
    the twin credit, one row raised (04-14's on MX x referral)."""
    env = MetricTrackerRlEnvironment()
    env.reset(difficulty=ABYSS, seed=SEED_868080)
    report = [MetricSubmissionRow.model_validate(row) for row in _transcript_report()]
    without, with_twins, raised = episode_scores(env, [report])
    assert round(without, 4) == 0.7408 and with_twins > 0.85 and raised == 1
