"""Compatibility: the reference inference script's imports, models and client calls keep working against a live
server."""

from __future__ import annotations

import asyncio

import pytest
from core_helpers import REFERENCE_TOOL_NAMES, reset_episode

from metric_tracker_rl import (
    DEFAULT_TASK_ORDER,
    NAMED_TASK_ORDER,
    MetricTrackerRlAction,
    MetricTrackerRlEnv,
    get_task_spec,
)
from metric_tracker_rl.analysis_tools import available_analysis_methods
from metric_tracker_rl.models import (
    MetricSubmissionRow,
    MetricTrackerRlObservation,
    MetricTrackerRlState,
    PayloadGeneratorMethod,
)

pytestmark = pytest.mark.slow  # starts server processes or a browser

# Fields the reference script and the reference README read from an observation.
OBSERVATION_FIELDS = (
    "status",
    "message",
    "generated_rows",
    "submission_issues",
    "reward_breakdown",
    "correct_row_count",
    "expected_row_count",
    "analysis_result",
    "debug",
    "task_id",
    "instruction",
    "config",
    "available_methods",
    "available_synthetic_generator_methods",
    "available_tasks",
    "conversion_metric_definitions",
    "submitted_rows",
    "submission_preview",
)
ACTION_FIELDS = ("classifications", "analysis_method", "analysis_args", "payload_generators")
ROW_FIELDS = (
    "date",
    "entity_type",
    "entity_name",
    "anomaly_type",
    "detection_method",
    "baseline_value",
    "observed_value",
    "delta_value",
    "severity",
)


def test_models_have_the_fields_the_reference_script_reads() -> None:
    assert set(OBSERVATION_FIELDS) <= set(MetricTrackerRlObservation.model_fields)
    assert set(ACTION_FIELDS) <= set(MetricTrackerRlAction.model_fields)
    assert set(ROW_FIELDS) <= set(MetricSubmissionRow.model_fields)
    assert {"method_name", "metric_name", "metric_names", "threshold_multiplier"} <= set(
        PayloadGeneratorMethod.model_fields
    )


def test_task_specs_hold_the_values_the_reference_script_reports() -> None:
    """The reference script plays DEFAULT_TASK_ORDER and reports each task's difficulty, objective and
    grader_name beside its score: they must be the task's own, not just strings. The difficulty is the one its
    episode is played at, the objective the one the episode states, and grader_name imports to the function the
    environment's report step grades with. An unknown id is a ValueError naming the valid ones."""
    import importlib

    from metric_tracker_rl.serving import environment, report_step

    assert [get_task_spec(task_id).difficulty for task_id in DEFAULT_TASK_ORDER[:3]] == ["easy", "medium", "hard"]
    for task_id in DEFAULT_TASK_ORDER:
        spec = get_task_spec(task_id)
        assert spec.task_id == task_id and get_task_spec(task_id.upper()) is spec
        observation = environment.MetricTrackerRlEnvironment().reset(task_id=task_id)
        assert (observation.task_id, observation.config["difficulty"]) == (task_id, spec.difficulty)
        assert spec.objective and spec.objective in observation.message
        assert reset_episode(task_id=task_id).public.task["objective"] == spec.objective
        module, _, name = spec.grader_name.rpartition(".")
        assert getattr(importlib.import_module(module), name) is report_step.grade_submission
    with pytest.raises(ValueError, match=DEFAULT_TASK_ORDER[0]):
        get_task_spec("no_such_task")


# The arguments the reference script's hand-written schemas give each reference tool (seeds/000's tool_schemas),
# with values taken from the episode: a date, a conversion metric and an event count ({entity}).
REFERENCE_CALLS: dict[str, dict] = {
    "task_overview": {},
    "list_dates": {},
    "list_entities": {},
    "rows_for_date": {"date": "{date}"},
    "hourly_rows_for_date": {"date": "{date}"},
    "detect_funnel_break": {"date": "{date}"},
    "check_impossible_counts": {"date": "{date}"},
    "compare_rate_to_median": {"date": "{date}", "entity_name": "{metric}"},
    "compare_count_to_median": {"date": "{date}", "entity_name": "{entity}"},
    "list_suspicious_dates": {"limit": 10},
    "preview_submission": {"rows": []},
    "show_raw_data": {"limit": 5},
    "get_metric_median": {"metric_name": "{metric}"},
    "get_metric_std_dev_from_median": {"metric_names": ["{metric}"]},
    "get_rows_with_abs_diff_from_median_gt": {"metric_name": "{metric}", "threshold": 0.01},
    **{
        name: {"metric_names": ["{metric}"], "threshold_multiplier": 2.0}
        for name in ("get_median_filter_rows", "get_rate_drop_from_median_rows", "get_rate_spike_from_median_rows")
    },
    **{
        name: {"metric_names": ["{entity}"], "threshold_multiplier": 2.0}
        for name in ("get_absolute_drop_in_event_count_rows", "get_absolute_spike_in_event_count_rows")
    },
    **{
        name: {"threshold_multiplier": 2.0}
        for name in (
            "get_funnel_break_rows",
            "get_hourly_traffic_mix_shift_rows",
            "get_instrumentation_data_quality_issue_rows",
        )
    },
    "payload_generator": {
        "generator_methods": [{"method_name": "get_rate_spike_from_median_rows", "threshold_multiplier": 2.0}]
    },
}


def _filled(arguments: object, values: dict[str, str]) -> object:
    if isinstance(arguments, dict):
        return {key: _filled(value, values) for key, value in arguments.items()}
    if isinstance(arguments, list):
        return [_filled(value, values) for value in arguments]
    return arguments.format(**values) if isinstance(arguments, str) else arguments


def test_every_reference_tool_runs_with_the_arguments_the_reference_script_sends() -> None:
    """The reference script builds its own schemas by tool name: each reference tool must still take those
    arguments and run, and each of its generators must return rows that name it as their detection method."""
    from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment

    assert set(REFERENCE_CALLS) == set(REFERENCE_TOOL_NAMES)
    task_id = DEFAULT_TASK_ORDER[0]
    env = MetricTrackerRlEnvironment()  # one episode: its step budget covers one call of each tool
    metric = env.reset(task_id=task_id).conversion_metric_definitions[0]
    values = {
        "date": reset_episode(task_id=task_id).public.dates[10],
        "metric": metric.name,
        "entity": metric.numerator,
    }
    for name, arguments in REFERENCE_CALLS.items():
        step = env.step(MetricTrackerRlAction(analysis_method=name, analysis_args=_filled(arguments, values)))
        assert step.status == "ok", (name, step.message)
        assert step.analysis_result["method"] == name
        if name.startswith("get_") and name.endswith("_rows"):
            assert all(row["detection_method"] == name for row in step.analysis_result["rows"]), name


def _first_expected_row(task_id: str) -> MetricSubmissionRow:
    return reset_episode(task_id=task_id).truth.expected_rows[0]


async def _drive_like_the_reference_script(url: str, task_id: str) -> None:
    """The reference script's call sequence: connect, reset by task id, analysis, both submission kinds, close."""
    client = MetricTrackerRlEnv(base_url=url, connect_timeout_s=30.0, message_timeout_s=60.0)
    env = await client.connect()
    assert env is client
    try:
        reset = await env.reset(task_id=get_task_spec(task_id).task_id)
        observation = reset.observation
        assert isinstance(observation, MetricTrackerRlObservation)
        assert observation.status == "ready"
        assert observation.task_id == task_id
        assert observation.debug is None
        difficulty = observation.config["difficulty"]
        assert {m.name for m in observation.available_methods} == {
            s.name for s in available_analysis_methods() if difficulty in s.answers_at
        }
        # Every named task; the reference README's three come first.
        assert [t.task_id for t in observation.available_tasks] == list(NAMED_TASK_ORDER)
        assert list(NAMED_TASK_ORDER[: len(DEFAULT_TASK_ORDER)]) == list(DEFAULT_TASK_ORDER)
        assert observation.conversion_metric_definitions and observation.available_synthetic_generator_methods

        analysis = await env.step(MetricTrackerRlAction(analysis_method="task_overview", analysis_args={}))
        assert analysis.observation.status == "ok"
        assert analysis.reward == 0.0 and not analysis.done
        assert analysis.observation.analysis_result["method"] == "task_overview"

        generated = await env.step(
            MetricTrackerRlAction(
                payload_generators=[
                    PayloadGeneratorMethod(method_name="get_rate_spike_from_median_rows", threshold_multiplier=3.0)
                ]
            )
        )
        graded = generated.observation
        assert graded.status == "graded", graded.message
        assert 0.0 <= generated.reward <= 1.0
        assert graded.reward_breakdown is not None and graded.reward_breakdown.score == generated.reward
        assert graded.generated_rows == graded.submitted_rows
        assert all(row.detection_method == "get_rate_spike_from_median_rows" for row in graded.generated_rows)
        assert graded.expected_row_count == len(reset_episode(task_id=task_id).truth.expected_rows)
        assert graded.correct_row_count == graded.reward_breakdown.matched_row_count

        if generated.done:  # a perfect generator run ends the episode; the direct submission needs a new one
            await env.reset(task_id=task_id)
        row = _first_expected_row(task_id)
        direct = await env.step(MetricTrackerRlAction(classifications=[MetricSubmissionRow(**row.model_dump())]))
        assert direct.observation.status == "graded", direct.observation.message
        assert direct.observation.submitted_rows == [row]
        assert direct.observation.correct_row_count == 1
        assert direct.observation.generated_rows == []
        assert direct.observation.submission_issues == []
        assert 0.0 < direct.reward <= 1.0
    finally:
        await env.close()


def test_async_client_drives_a_live_server_like_the_reference_script(server_url: str) -> None:
    asyncio.run(_drive_like_the_reference_script(server_url, DEFAULT_TASK_ORDER[0]))


def test_sync_wrapper_drives_a_live_server(server_url: str) -> None:
    task_id = DEFAULT_TASK_ORDER[1]
    with MetricTrackerRlEnv(base_url=server_url).sync() as env:
        reset = env.reset(task_id=task_id)
        assert reset.observation.status == "ready" and reset.observation.task_id == task_id
        result = env.step(MetricTrackerRlAction(analysis_method="list_dates"))
        assert result.observation.status == "ok"
        assert len(result.observation.analysis_result["dates"]) == 28
        empty = env.step(MetricTrackerRlAction(classifications=[]))
        assert empty.observation.status == "graded"
        assert empty.reward == 0.0  # the task has incidents, so an empty report scores nothing
        state = env.state()
        assert isinstance(state, MetricTrackerRlState)
        assert state.step_count == 2
        assert state.task_id == task_id
        assert (state.submissions_used, state.done, state.last_score) == (1, empty.done, 0.0)
