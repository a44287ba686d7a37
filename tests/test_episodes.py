"""The episode state machine: budgets, done, errors after done, action modes and leak-free feedback."""

from __future__ import annotations

from core_helpers import key_of

from metric_tracker_rl import MetricTrackerRlAction
from metric_tracker_rl.catalog import ENTITY_NAMES
from metric_tracker_rl.models import MetricSubmissionRow, PayloadGeneratorMethod
from metric_tracker_rl.scenario import GroundTruth, build_episode
from metric_tracker_rl.tasks import resolve_episode_config
from server.environment import MAX_SUBMISSION_ROWS, MetricTrackerRlEnvironment

EMPTY_REPORT = MetricTrackerRlAction(classifications=[])
LOOK = MetricTrackerRlAction(analysis_method="list_dates")


def started(**reset_kwargs) -> tuple[MetricTrackerRlEnvironment, GroundTruth]:
    """A standard-mode environment after reset, and the truth of its episode (built separately)."""
    env = MetricTrackerRlEnvironment()
    obs = env.reset(**reset_kwargs)
    assert obs.status == "ready", obs.message
    return env, build_episode(resolve_episode_config(**reset_kwargs)).truth


def test_third_graded_submission_ends_the_episode() -> None:
    env, truth = started(task_id="medium_mixed_pair")
    assert truth.expected_rows
    for used in (1, 2):
        obs = env.step(EMPTY_REPORT)
        assert obs.status == "graded" and not obs.done and obs.submissions_remaining == 3 - used
    obs = env.step(EMPTY_REPORT)
    assert obs.status == "graded" and obs.done and obs.submissions_remaining == 0


def test_analysis_steps_use_no_submission_and_have_zero_reward() -> None:
    env, _ = started(task_id="easy_single_spike")
    for _ in range(5):
        obs = env.step(LOOK)
        assert obs.status == "ok" and obs.reward == 0.0 and not obs.done and obs.submissions_remaining == 3


def test_step_budget_ends_the_episode() -> None:
    env, _ = started(task_id="easy_single_spike", max_steps=3)
    assert not env.step(LOOK).done
    assert not env.step(LOOK).done
    obs = env.step(LOOK)
    assert obs.done and obs.steps_remaining == 0
    after = env.step(LOOK)
    assert after.status == "error" and after.reward == 0.0 and after.done


def test_perfect_score_ends_the_episode_and_later_steps_pay_nothing() -> None:
    env, truth = started(task_id="hard_mixed_multi")
    obs = env.step(MetricTrackerRlAction(classifications=list(truth.expected_rows)))
    assert obs.status == "graded" and obs.reward == 1.0 and obs.done and obs.submissions_remaining == 2
    for action in (MetricTrackerRlAction(classifications=list(truth.expected_rows)), LOOK, EMPTY_REPORT):
        after = env.step(action)
        assert after.status == "error" and after.reward == 0.0 and after.done
        assert after.reward_breakdown is None


def test_steps_after_budget_exhaustion_pay_nothing() -> None:
    env, truth = started(task_id="medium_mixed_pair", max_submissions=1)
    half = list(truth.expected_rows[:1])
    obs = env.step(MetricTrackerRlAction(classifications=half))
    assert obs.done and 0.0 < obs.reward < 1.0
    again = env.step(MetricTrackerRlAction(classifications=half))
    assert again.status == "error" and again.reward == 0.0


def test_an_action_needs_exactly_one_mode() -> None:
    env, _ = started(task_id="medium_mixed_pair")
    for action in (
        MetricTrackerRlAction(),
        MetricTrackerRlAction(analysis_method="list_dates", classifications=[]),
        MetricTrackerRlAction(classifications=[], payload_generators=[
            PayloadGeneratorMethod(method_name="get_funnel_break_rows", threshold_multiplier=3.0)]),
    ):
        obs = env.step(action)
        assert obs.status == "error" and obs.reward == 0.0 and not obs.done
        assert "exactly one" in obs.message
        assert obs.submissions_remaining == 3
    assert env.step(EMPTY_REPORT).status == "graded"


def test_oversized_submission_is_an_error_that_uses_no_submission() -> None:
    env, _ = started(task_id="medium_mixed_pair")
    dates = env.step(LOOK).analysis_result["dates"]
    rows = [MetricSubmissionRow(date=d["date"], entity_type=t, entity_name=n, anomaly_type="funnel_break",
                                detection_method="get_funnel_break_rows", baseline_value=1.0, observed_value=1.0,
                                delta_value=0.0, severity="low")
            for d in dates for t in ("event_count", "conversion_rate") for n in ENTITY_NAMES[t]]
    assert len(rows) > MAX_SUBMISSION_ROWS
    obs = env.step(MetricTrackerRlAction(classifications=rows))
    assert obs.status == "error" and obs.reward == 0.0 and obs.submissions_remaining == 3 and not obs.done
    assert str(MAX_SUBMISSION_ROWS) in obs.message
    assert env.step(MetricTrackerRlAction(classifications=rows[:MAX_SUBMISSION_ROWS])).status == "graded"


def test_payload_generator_submission_is_graded() -> None:
    env, truth = started(task_id="easy_single_spike")
    bad = env.step(MetricTrackerRlAction(payload_generators=[PayloadGeneratorMethod(method_name="list_dates")]))
    assert bad.status == "error" and bad.submissions_remaining == 3 and not bad.done
    assert "get_funnel_break_rows" in bad.message
    obs = env.step(MetricTrackerRlAction(payload_generators=[
        PayloadGeneratorMethod(method_name="get_rate_spike_from_median_rows", threshold_multiplier=3.0)]))
    assert obs.status == "graded" and obs.generated_rows and obs.submitted_rows == obs.generated_rows
    assert obs.expected_row_count == len(truth.expected_rows) and obs.submissions_remaining == 2


def _wrong_row(date: str) -> MetricSubmissionRow:
    return MetricSubmissionRow(date=date, entity_type="event_count", entity_name="menu_opens",
                               anomaly_type="absolute_drop_in_event_count", detection_method="compare_count_to_median",
                               baseline_value=100.0, observed_value=50.0, delta_value=-50.0, severity="high")


def _leaks(text: str, row: MetricSubmissionRow) -> bool:
    return key_of(row) in text or (row.date in text and row.entity_name in text)


def test_feedback_never_names_a_missed_or_wrong_expected_key() -> None:
    checked = 0
    for seed in range(12):
        difficulty = ("easy", "medium", "hard")[seed % 3]
        env, truth = started(seed=seed, scenario_family="mixed", difficulty=difficulty)
        expected = list(truth.expected_rows)
        submitted_keys = set()
        dates = env.step(LOOK).analysis_result["dates"]
        reports = [
            # half of the incidents, one with wrong numbers and labels, plus a false positive and a duplicate
            [*expected[::2], expected[0].model_copy(update={"anomaly_type": "funnel_break", "observed_value": 0.0}),
             _wrong_row(dates[seed % 27]["date"])],
            [_wrong_row(dates[(seed + 3) % 27]["date"])],
        ]
        for rows in reports:
            submitted_keys |= {key_of(r) for r in rows}
            obs = env.step(MetricTrackerRlAction(classifications=rows))
            assert obs.status == "graded"
            text = obs.model_dump_json(exclude={"submitted_rows", "generated_rows"})
            feedback = obs.message + " ".join(issue.message for issue in obs.submission_issues)
            for row in expected:
                if key_of(row) not in submitted_keys:
                    assert not _leaks(text, row), (seed, key_of(row))
                    checked += 1
                assert key_of(row) not in feedback
    assert checked > 10
