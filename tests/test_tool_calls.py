"""The shared model-facing layer: tools from the registry, tool calls <-> actions, observations as text."""

from __future__ import annotations

import json

from hypothesis import example, given, settings
from hypothesis import strategies as st

from metric_tracker_rl import MetricSubmissionRow, MetricTrackerRlAction, PayloadGeneratorMethod
from metric_tracker_rl.analysis_tools import GENERATOR_NAMES, TOOL_REGISTRY
from metric_tracker_rl.tool_calls import (
    SUBMIT_GENERATORS,
    SUBMIT_REPORT,
    action_tool_call,
    first_prompt,
    model_tools,
    openai_tools,
    render_observation,
    tool_action,
)
from server.environment import MetricTrackerRlEnvironment

ROW = {"date": "2026-03-10", "entity_type": "conversion_rate", "entity_name": "app_open_to_menu_open",
       "anomaly_type": "rate_spike_from_median", "detection_method": "get_rate_spike_from_median_rows",
       "baseline_value": 0.5, "observed_value": 0.7, "delta_value": 0.2, "severity": "high"}


def test_one_tool_per_registry_tool_then_the_two_submissions() -> None:
    names = [tool.name for tool in model_tools()]
    assert names == [*TOOL_REGISTRY, SUBMIT_REPORT, SUBMIT_GENERATORS]
    for schema in openai_tools():
        parameters = schema["function"]["parameters"]
        assert parameters["type"] == "object" and parameters["additionalProperties"] is False
    report = openai_tools()[-2]["function"]["parameters"]
    assert report["required"] == ["rows"] and "$defs" not in report
    assert report["properties"]["rows"]["items"] == MetricSubmissionRow.model_json_schema()


def test_registry_examples_round_trip() -> None:
    for name, spec in TOOL_REGISTRY.items():
        action = tool_action(name, json.dumps(spec.example))
        assert action == MetricTrackerRlAction(analysis_method=name, analysis_args=spec.example)
        assert action_tool_call(action) == (name, spec.example)


@settings(deadline=None)
@given(rows=st.lists(st.builds(MetricSubmissionRow, date=st.just("2026-03-10"),
                               baseline_value=st.floats(allow_nan=False, allow_infinity=False),
                               observed_value=st.floats(allow_nan=False, allow_infinity=False),
                               delta_value=st.floats(allow_nan=False, allow_infinity=False)), max_size=3),
       generators=st.lists(st.builds(PayloadGeneratorMethod, method_name=st.sampled_from(sorted(GENERATOR_NAMES)),
                                     threshold_multiplier=st.none() | st.floats(0.5, 9.0)), min_size=1, max_size=3))
@example(rows=[], generators=[PayloadGeneratorMethod(method_name="get_funnel_break_rows")])
def test_submissions_round_trip_through_json(rows: list[MetricSubmissionRow],
                                             generators: list[PayloadGeneratorMethod]) -> None:
    for action in (MetricTrackerRlAction(classifications=rows), MetricTrackerRlAction(payload_generators=generators)):
        name, arguments = action_tool_call(action)
        assert tool_action(name, json.dumps(arguments)) == action
        assert tool_action(name, arguments) == action


@settings(deadline=None)
@given(name=st.sampled_from([SUBMIT_REPORT, SUBMIT_GENERATORS, "task_overview", "no_such_tool"]),
       text=st.text(max_size=40) | st.from_regex(r"\{\"(rows|generators)\": ?\[.{0,20}\]\}", fullmatch=True))
@example(name=SUBMIT_REPORT, text="{not json")
@example(name=SUBMIT_REPORT, text="[1, 2]")
@example(name=SUBMIT_REPORT, text='{"rows": [{"date": "2026-03-10"}]}')
@example(name=SUBMIT_GENERATORS, text='{"generators": []}')
def test_mistakes_come_back_as_readable_strings(name: str, text: str) -> None:
    outcome = tool_action(name, text)
    if isinstance(outcome, str):
        assert outcome.startswith("error: ")
        if name == "no_such_tool":
            assert "valid tools:" in outcome and SUBMIT_REPORT in outcome
    else:
        assert isinstance(outcome, MetricTrackerRlAction)


def test_known_mistakes_name_what_is_wrong() -> None:
    assert "not valid JSON" in tool_action(SUBMIT_REPORT, "{not json")
    assert "must be a JSON object" in tool_action("list_dates", "[]")
    invalid = tool_action(SUBMIT_REPORT, {"rows": [{"date": "2026-03-10"}]})
    assert "invalid rows" in invalid and "Nothing was submitted" in invalid and "entity_type" in invalid
    assert "extra" in tool_action(SUBMIT_REPORT, {"rows": [], "extra": 1})


def test_rendered_observations_are_compact_json_with_budgets() -> None:
    env = MetricTrackerRlEnvironment()
    prompt = first_prompt(env.reset(task_id="easy_single_spike"))
    assert "easy_single_spike" in prompt and "steps_remaining" in prompt
    ok = json.loads(render_observation(env.step(tool_action("list_dates", {}))))
    assert ok["status"] == "ok" and ok["result"]["method"] == "list_dates" and ok["steps_remaining"] == 39
    error = json.loads(render_observation(env.step(tool_action("rows_for_date", {"date": "1999-01-01"}))))
    assert error["status"] == "error" and "valid dates" in error["message"] and "result" not in error
    graded = json.loads(render_observation(env.step(tool_action(SUBMIT_REPORT, {"rows": [ROW]}))))
    assert graded["status"] == "graded" and graded["reward_breakdown"]["submitted_row_count"] == 1
    assert graded["expected_row_count"] == 2 and graded["submissions_remaining"] == 2
    clipped = render_observation(env.step(tool_action("task_overview", {})), max_chars=100)
    assert len(clipped) < 200 and "truncated" in clipped
    table = env.step(tool_action("get_rows_with_abs_diff_from_median_gt", {"threshold": 0}))
    full = json.loads(render_observation(table, max_chars=10**6))
    trimmed = json.loads(render_observation(table, max_chars=3000))  # fewer rows, still JSON
    assert 0 < trimmed["result"]["rows_shown"] < len(full["result"]["rows"])
    assert trimmed["result"]["rows"] == full["result"]["rows"][:trimmed["result"]["rows_shown"]]
    assert "narrow the call" in trimmed["message"] and "rows_shown" not in full["result"]
