"""Compatibility: the reference inference script's imports, models and client calls keep working against a live
server."""

from __future__ import annotations

import asyncio

import pytest
from core_helpers import REFERENCE_TOOL_NAMES

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
from metric_tracker_rl.scenario import build_episode
from metric_tracker_rl.tasks import resolve_episode_config

pytestmark = pytest.mark.slow  # starts server processes or a browser

# Fields the reference script and the reference README read from an observation.
OBSERVATION_FIELDS = (
    "status", "message", "generated_rows", "submission_issues", "reward_breakdown", "correct_row_count",
    "expected_row_count", "analysis_result", "debug", "task_id", "instruction", "config", "available_methods",
    "available_synthetic_generator_methods", "available_tasks", "conversion_metric_definitions", "submitted_rows",
    "submission_preview",
)
ACTION_FIELDS = ("classifications", "analysis_method", "analysis_args", "payload_generators")
ROW_FIELDS = ("date", "entity_type", "entity_name", "anomaly_type", "detection_method", "baseline_value",
              "observed_value", "delta_value", "severity")


def test_models_have_the_fields_the_reference_script_reads() -> None:
    assert set(OBSERVATION_FIELDS) <= set(MetricTrackerRlObservation.model_fields)
    assert set(ACTION_FIELDS) <= set(MetricTrackerRlAction.model_fields)
    assert set(ROW_FIELDS) <= set(MetricSubmissionRow.model_fields)
    assert {"method_name", "metric_name", "metric_names", "threshold_multiplier"} <= set(
        PayloadGeneratorMethod.model_fields)


def test_task_specs_have_the_reference_attributes() -> None:
    assert len(DEFAULT_TASK_ORDER) >= 3
    for task_id in DEFAULT_TASK_ORDER:
        spec = get_task_spec(task_id)
        assert spec.task_id == task_id
        assert spec.difficulty in {"easy", "medium", "hard"}
        assert isinstance(spec.objective, str) and spec.objective
        assert isinstance(spec.grader_name, str) and spec.grader_name


def test_available_analysis_methods_cover_the_reference_tools_with_schemas() -> None:
    specs = available_analysis_methods()
    names = [spec.name for spec in specs]
    assert set(REFERENCE_TOOL_NAMES) <= set(names)
    assert len(names) == len(set(names))
    for spec in specs:
        assert isinstance(spec.description, str) and spec.description
        schema = spec.openai_schema()
        assert schema["type"] == "function"
        assert schema["function"]["name"] == spec.name
        assert schema["function"]["description"] == spec.description
        assert schema["function"]["parameters"]["type"] == "object"


def _first_expected_row(task_id: str) -> MetricSubmissionRow:
    return build_episode(resolve_episode_config(task_id=task_id)).truth.expected_rows[0]


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
        assert {m.name for m in observation.available_methods} == {s.name for s in available_analysis_methods()}
        # Every named task; the reference README's three come first.
        assert [t.task_id for t in observation.available_tasks] == list(NAMED_TASK_ORDER)
        assert list(NAMED_TASK_ORDER[:len(DEFAULT_TASK_ORDER)]) == list(DEFAULT_TASK_ORDER)
        assert observation.conversion_metric_definitions and observation.available_synthetic_generator_methods

        analysis = await env.step(MetricTrackerRlAction(analysis_method="task_overview", analysis_args={}))
        assert analysis.observation.status == "ok"
        assert analysis.reward == 0.0 and not analysis.done
        assert analysis.observation.analysis_result["method"] == "task_overview"

        generated = await env.step(MetricTrackerRlAction(payload_generators=[
            PayloadGeneratorMethod(method_name="get_rate_spike_from_median_rows", threshold_multiplier=3.0)]))
        graded = generated.observation
        assert graded.status == "graded", graded.message
        assert 0.0 <= generated.reward <= 1.0
        assert graded.reward_breakdown is not None and graded.reward_breakdown.score == generated.reward
        assert graded.generated_rows == graded.submitted_rows
        assert all(row.detection_method == "get_rate_spike_from_median_rows" for row in graded.generated_rows)
        assert graded.expected_row_count == len(build_episode(resolve_episode_config(task_id=task_id))
                                                 .truth.expected_rows)
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
