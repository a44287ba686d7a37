"""The TRL environment class: the schemas TRL extracts, and episodes over a live server on a loopback port."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import HF_GROUP
from text_reader import read_observation

from metric_tracker_rl import MetricTrackerRlEnv
from metric_tracker_rl.adapters.session import EPISODE_OVER_TEXT, EpisodeSession
from metric_tracker_rl.adapters.trl import RESET_VAR, URL_VAR, MetricTrackerToolEnv
from metric_tracker_rl.catalog.task_splits import TRAIN_SEED_BASE
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.view.observation import render_observation
from metric_tracker_rl.view.tool_schemas import SUBMIT_REPORT, model_tools, tool_action

ToolCall = Callable[..., str]


def json_types(schema: dict[str, Any]) -> set[str]:
    """The JSON types a property allows, null left out (pydantic writes anyOf, transformers nullable)."""
    options = schema.get("anyOf", [schema])
    return {option["type"] for option in options if option.get("type") not in (None, "null")}


@pytest.fixture
def tool_env(server_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[MetricTrackerToolEnv]:
    monkeypatch.setenv(URL_VAR, server_url)
    with MetricTrackerToolEnv() as env:
        yield env


@pytest.mark.slow  # loads transformers' schema extraction
def test_every_tool_method_passes_trl_schema_extraction() -> None:
    """Each model tool's method gives TRL the tool's schema (which methods TRL offers as tools is asked of TRL's
    own trainer in test_trl_training.py)."""
    get_json_schema = pytest.importorskip("transformers.utils", reason=HF_GROUP).get_json_schema

    env = MetricTrackerToolEnv()  # built without a server: the client connects on the first reset
    for tool in model_tools():
        function = get_json_schema(getattr(env, tool.name))["function"]
        assert function["name"] == tool.name and function["description"] == " ".join(tool.description.split())
        parameters, expected = function["parameters"], tool.parameters
        # The arguments the model-facing schema offers (an argument kept only for the wire API is not a parameter).
        assert list(parameters["properties"]) == list(expected["properties"])
        assert set(parameters.get("required", [])) == set(expected.get("required", []))
        for name, prop in parameters["properties"].items():
            assert json_types(prop) == json_types(expected["properties"][name]), (tool.name, name)
            # A field without a description (a segment field: its name says it) is described by its name.
            described = tool.args_model.model_fields[name].description or name
            assert prop["description"].startswith(" ".join(described.split()))


def scripted_policy(call: ToolCall) -> None:
    """overview, annotations, two generators, then their rows off annotated dates (as the texts show them)."""
    call("task_overview")
    notes = read_observation(call("get_annotations")).analysis_result["annotations"]
    annotated = {note["date"] for note in notes}
    rows: dict[tuple, dict] = {}
    for name in ("get_funnel_break_rows", "get_median_filter_rows"):
        for row in read_observation(call(name, threshold_multiplier=4.0, limit=120)).analysis_result["rows"]:
            rows.setdefault((row["date"], row["entity_type"], row["entity_name"]), row)
    call(SUBMIT_REPORT, rows=[row for row in rows.values() if row["date"] not in annotated])


@pytest.mark.parametrize("row", [{"task_id": "hard_mixed_multi"}, {"seed": 11, "difficulty": "medium"}])
def test_scripted_policy_scores_the_same_as_over_the_plain_client(
    tool_env: MetricTrackerToolEnv, server_url: str, row: dict[str, Any]
) -> None:
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
    graded = read_observation(seen_by_client[-1])
    assert seen_by_class == seen_by_client
    assert graded.status == "graded" and graded.reward_breakdown.score > 0
    assert (
        tool_env.get_reward() == pytest.approx(sum(rewards)) == pytest.approx(graded.reward_breakdown.score, abs=5e-5)
    )


def test_tool_mistakes_come_back_as_text(tool_env: MetricTrackerToolEnv) -> None:
    tool_env.reset(task_id="easy_two_spikes")
    assert "valid dates" in tool_env.hourly_rows_for_date(date="1999-01-01")
    assert "missing required argument 'date'" in tool_env.hourly_rows_for_date()
    assert "unexpected argument 'day'" in tool_env.hourly_rows_for_date(date="2026-03-10", day="monday")
    assert "Nothing was submitted" in tool_env.submit_report(rows=[{"date": "2026-03-10"}])
    assert "invalid generators" in tool_env.submit_generators(generators="all of them")
    assert tool_env.get_reward() == 0.0
    graded = read_observation(tool_env.submit_report(rows=[]))
    assert graded.status == "graded" and graded.done  # one graded submission ends the episode
    assert "episode is over" in tool_env.task_overview()


def test_reset_takes_defaults_from_the_environment_and_survives_a_closed_session(
    server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(URL_VAR, server_url)
    monkeypatch.setenv(RESET_VAR, json.dumps({"max_steps": 3, "difficulty": "easy"}))
    with MetricTrackerToolEnv() as env:
        for seed in (1, 2):
            brief = read_observation(env.reset(seed=seed))
            assert brief.steps_remaining == 3 and brief.config["difficulty"] == "easy"
            assert read_observation(env.task_overview()).steps_remaining == 2
            client = env._client
            client._run(client.async_client._ws.close())  # as when the server reaps an idle session
        with pytest.raises(ValueError, match="difficulty"):
            env.reset(difficulty="impossible")


def test_a_tool_before_reset_is_a_programming_error() -> None:
    with pytest.raises(RuntimeError, match="reset"):
        MetricTrackerToolEnv().task_overview()


def test_an_unknown_tool_is_answered_alike_by_the_class_and_the_session(tool_env: MetricTrackerToolEnv) -> None:
    """A tool called by a name no method has (a harness calls the instance with it) reads as the session's answer:
    an unknown tool's error while the episode runs, and once it is over, that it is over, first."""
    session = EpisodeSession(MetricTrackerRlEnvironment())
    tool_env.reset(task_id="easy_two_spikes")
    session.reset(task_id="easy_two_spikes")
    running = tool_env("score")
    assert running == session.call("score", {}) and running.startswith("error: unknown tool 'score'; valid tools: ")
    tool_env.submit_report(rows=[])
    session.call("submit_report", {"rows": []})
    assert tool_env("score") == session.call("score", {}) == EPISODE_OVER_TEXT
    assert tool_env("task_overview") == session.call("task_overview", {}) == EPISODE_OVER_TEXT


def test_a_row_without_a_seed_plays_a_train_episode(server_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """reset() with a row that chooses no episode plays a train task of the class's tier (the audit's objective says
    which split it is in), where the server's own default would be an eval episode; the default class plays the
    first named task's tier so."""
    monkeypatch.setenv(URL_VAR, server_url)
    for tool_class, tier in ((MetricTrackerToolEnv.for_tier("audit"), "audit"), (MetricTrackerToolEnv, "easy")):
        with tool_class() as env:
            brief = read_observation(env.reset(prompt="a dataset row without a seed"))
            assert brief.config["difficulty"] == tier and brief.config["seed"] >= TRAIN_SEED_BASE
            if tier == "audit":
                assert "This episode is in the train split." in brief.brief["objective"]
