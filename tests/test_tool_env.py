"""The TRL environment class: the schemas TRL extracts, and episodes over a live server on a loopback port."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from transformers.utils import get_json_schema

from metric_tracker_rl import MetricTrackerRlEnv
from metric_tracker_rl.tool_calls import SUBMIT_REPORT, model_tools, render_observation, tool_action
from metric_tracker_rl.tool_env import RESET_VAR, URL_VAR, MetricTrackerToolEnv

ToolCall = Callable[..., str]


def trl_tools(env: object) -> dict[str, Callable[..., Any]]:
    """The methods TRL's GRPOTrainer offers as tools: public bound methods except reset and get_reward."""
    return {name: member for name, member in inspect.getmembers(env, predicate=inspect.ismethod)
            if name not in ("reset", "get_reward") and not name.startswith("_")}


def json_types(schema: dict[str, Any]) -> set[str]:
    """The JSON types a property allows, null left out (pydantic writes anyOf, transformers nullable)."""
    options = schema.get("anyOf", [schema])
    return {option["type"] for option in options if option.get("type") not in (None, "null")}


@pytest.fixture
def tool_env(server_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[MetricTrackerToolEnv]:
    monkeypatch.setenv(URL_VAR, server_url)
    with MetricTrackerToolEnv() as env:
        yield env


def test_every_tool_method_passes_trl_schema_extraction() -> None:
    env = MetricTrackerToolEnv()  # built without a server: the client connects on the first reset
    tools = trl_tools(env)
    assert sorted(tools) == sorted(tool.name for tool in model_tools())
    for tool in model_tools():
        function = get_json_schema(tools[tool.name])["function"]
        assert function["name"] == tool.name and function["description"] == " ".join(tool.description.split())
        parameters, expected = function["parameters"], tool.parameters
        assert list(parameters["properties"]) == list(tool.args_model.model_fields)
        assert set(parameters.get("required", [])) == set(expected.get("required", []))
        for name, prop in parameters["properties"].items():
            assert json_types(prop) == json_types(expected["properties"][name]), (tool.name, name)
            assert prop["description"].startswith(" ".join(tool.args_model.model_fields[name].description.split()))


def scripted_policy(call: ToolCall) -> None:
    """overview, annotations, a merged generator preview, then the preview's rows off annotated dates."""
    json.loads(call("task_overview"))
    notes = json.loads(call("get_annotations"))["result"]["annotations"]
    annotated = {note["date"] for note in notes}
    generators = [{"method_name": name, "threshold_multiplier": 4.0}
                  for name in ("get_funnel_break_rows", "get_instrumentation_data_quality_issue_rows",
                               "get_hourly_traffic_mix_shift_rows", "get_median_filter_rows")]
    rows = json.loads(call("payload_generator", generator_methods=generators))["result"]["rows"]
    call(SUBMIT_REPORT, rows=[row for row in rows if row["date"] not in annotated])


@pytest.mark.parametrize("row", [{"task_id": "hard_mixed_multi"}, {"seed": 11, "difficulty": "medium"}])
def test_scripted_policy_scores_the_same_as_over_the_plain_client(tool_env: MetricTrackerToolEnv,
                                                                   server_url: str, row: dict[str, Any]) -> None:
    seen_by_class: list[str] = []

    def call_method(name: str, **arguments: Any) -> str:
        seen_by_class.append(getattr(tool_env, name)(**arguments))
        return seen_by_class[-1]

    prompt = tool_env.reset(prompt=[{"role": "user", "content": "Investigate."}], **row)
    assert "steps_remaining" in prompt
    scripted_policy(call_method)

    seen_by_client: list[str] = []
    rewards: list[float] = []
    with MetricTrackerRlEnv(base_url=server_url).sync() as client:
        client.reset(**row)

        def call_client(name: str, **arguments: Any) -> str:
            result = client.step(tool_action(name, arguments))
            rewards.append(float(result.reward or 0.0))
            seen_by_client.append(render_observation(result.observation))
            return seen_by_client[-1]

        scripted_policy(call_client)
    graded = json.loads(seen_by_client[-1])
    assert seen_by_class == seen_by_client
    assert graded["status"] == "graded" and graded["reward_breakdown"]["score"] > 0
    assert tool_env.get_reward() == pytest.approx(sum(rewards)) == pytest.approx(graded["reward_breakdown"]["score"])


def test_tool_mistakes_come_back_as_text(tool_env: MetricTrackerToolEnv) -> None:
    tool_env.reset(task_id="easy_single_spike")
    assert "valid dates" in json.loads(tool_env.rows_for_date(date="1999-01-01"))["message"]
    assert "missing required argument 'date'" in tool_env.rows_for_date()
    assert "unexpected argument 'day'" in tool_env.rows_for_date(date="2026-03-10", day="monday")
    assert "Nothing was submitted" in tool_env.submit_report(rows=[{"date": "2026-03-10"}])
    assert "invalid generators" in tool_env.submit_generators(generators="all of them")
    assert tool_env.get_reward() == 0.0
    graded = json.loads(tool_env.submit_report(rows=[]))
    assert graded["status"] == "graded" and graded["done"] is True  # one graded submission ends the episode
    assert "episode is over" in tool_env.list_dates()


def test_reset_takes_defaults_from_the_environment_and_survives_a_closed_session(
        server_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(URL_VAR, server_url)
    monkeypatch.setenv(RESET_VAR, json.dumps({"max_steps": 3, "difficulty": "easy"}))
    with MetricTrackerToolEnv() as env:
        for seed in (1, 2):
            brief = env.reset(seed=seed)
            assert '"steps_remaining": 3' in brief and '"difficulty": "easy"' in brief
            assert json.loads(env.list_dates())["steps_remaining"] == 2
            client = env._client
            client._run(client.async_client._ws.close())  # as when the server reaps an idle session
        with pytest.raises(ValueError, match="difficulty"):
            env.reset(difficulty="impossible")


def test_a_tool_before_reset_is_a_programming_error() -> None:
    with pytest.raises(RuntimeError, match="reset"):
        MetricTrackerToolEnv().list_dates()
