"""The NeMo Gym resources-server configuration, checked against what NeMo Gym 0.7's OpenEnv adapter does with it.

NeMo Gym 0.7 needs Python >= 3.13, which this machine lacks, so the adapter itself is not run here. These tests
make the adapter's own calls, in its order, on the configured classes: its config fields, `env_class()`,
`reset()` and `step(ListToolsAction())` to discover the tools, a request model per tool built from the tool's
JSON schema (its JSON types as Python types, every optional field present and None when not given), then per
session `reset(**reset_kwargs)` and one `step(action_class(tool_name=..., arguments=...))` per call, summing the
rewards."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from openenv.core.env_server.mcp_types import CallToolObservation, ListToolsAction
from pydantic import BaseModel, create_model
from text_reader import read_observation

from metric_tracker_rl.agents import make_agent
from metric_tracker_rl.view.observation import seen
from metric_tracker_rl.view.tool_schemas import action_tool_call, model_tools

CONFIG = Path(__file__).resolve().parents[1] / "integrations" / "nemo_gym" / "metric_tracker_rl.yaml"
ADAPTER_FIELDS = {
    "entrypoint",
    "domain",
    "verified",
    "description",
    "env_class",
    "action_class",
    "reset_kwargs",
    "is_mcp",
}
JSON_TYPES = {"string": str, "integer": int, "number": float, "boolean": bool, "object": dict, "array": list}


def load(dotted: str) -> Any:
    module, name = dotted.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def servers() -> dict[str, dict[str, Any]]:
    document = yaml.safe_load(CONFIG.read_text())
    return {name: entry["resources_servers"]["openenv"] for name, entry in document.items()}


def request_model(name: str, schema: dict[str, Any]) -> type[BaseModel]:
    """A tool's request body as the adapter builds it: JSON types only, optional fields default to None."""
    required = set(schema.get("required", []))
    fields: dict[str, Any] = {}
    for field, spec in schema.get("properties", {}).items():
        python_type = JSON_TYPES.get(spec.get("type", "string"), str)
        fields[field] = (python_type, ...) if field in required else (python_type | None, None)
    return create_model(f"{name}_request", **fields)


def test_every_server_entry_has_the_adapters_fields_and_importable_classes() -> None:
    for name, server in servers().items():
        assert set(server) <= ADAPTER_FIELDS, name
        assert server["entrypoint"] == "app.py" and server["is_mcp"] is True
        load(server["env_class"]), load(server["action_class"])


def test_discovered_tools_are_the_offered_tools_and_every_property_has_a_json_type() -> None:
    for server in servers().values():
        environment = load(server["env_class"])()
        before = environment.step(ListToolsAction()).tools  # every listed tier's, before a reset picks one
        assert [tool.name for tool in before] == [tool.name for tool in model_tools()]
        observation = environment.reset()
        tools = environment.step(ListToolsAction()).tools  # the episode's tier's
        assert [tool.name for tool in tools] == [tool.name for tool in model_tools(observation.config["difficulty"])]
        for tool in tools:
            assert all(spec.get("type") in JSON_TYPES for spec in tool.input_schema.get("properties", {}).values())


@settings(max_examples=6, deadline=None)
@given(agent_name=st.sampled_from(["expert", "scripted", "readme_baseline"]), server_index=st.integers(0, 0))
def test_a_scripted_session_through_the_adapters_calls_sums_rewards_to_the_score(
    agent_name: str, server_index: int
) -> None:
    server = list(servers().values())[server_index]
    env_class, action_class = load(server["env_class"]), load(server["action_class"])
    probe = env_class()
    probe.reset()
    models = {tool.name: request_model(tool.name, tool.input_schema) for tool in probe.step(ListToolsAction()).tools}

    environment = env_class()
    first = environment.reset(**server["reset_kwargs"])
    agent = make_agent(agent_name)
    agent.begin(seen(first))
    observation, total, done = seen(first), 0.0, bool(first.done)
    while not done:
        action = agent.act(observation)
        if action is None:
            break
        name, arguments = action_tool_call(action)
        body = models[name](**arguments).model_dump()  # what the adapter passes on
        result = environment.step(action_class(tool_name=name, arguments=body))
        assert isinstance(result, CallToolObservation) and result.error is None
        assert not result.result["is_error"], result.result["data"]
        total += float(result.reward or 0.0)
        done = bool(result.done)
        observation = read_observation(result.result["data"])
    assert done
    assert total == pytest.approx(environment.state.episode_score, abs=1e-5)
