"""The MCP tool surface: the tools a model is offered, their calls' text and rewards, in-process and over a live
server (JSON-RPC on POST /mcp, the WebSocket /ws and /mcp, OpenEnv's MCPToolClient)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openenv.core.env_server.mcp_types import (
    RESERVED_TOOL_NAMES,
    CallToolAction,
    CallToolObservation,
    ListToolsAction,
    ListToolsObservation,
)
from openenv.core.mcp_client import MCPToolClient
from pydantic import BaseModel, Field

from metric_tracker_rl.agents import make_agent
from metric_tracker_rl.analysis_tools.registry import register_tool, unregister_tool
from metric_tracker_rl.catalog.published import DIFFICULTIES
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.view.observation import render_observation, seen
from metric_tracker_rl.view.tool_schemas import action_tool_call, model_tools

AGENT_NAMES = ("expert", "scripted", "readme_baseline", "null")


def listed(environment: MetricTrackerRlEnvironment) -> ListToolsObservation:
    observation = environment.step(ListToolsAction())
    assert isinstance(observation, ListToolsObservation)
    return observation


def test_listed_tools_are_the_offered_tools_with_their_schemas_and_descriptions() -> None:
    tools = listed(MetricTrackerRlEnvironment()).tools  # no reset needed to discover tools
    offered = model_tools()
    assert [tool.name for tool in tools] == [tool.name for tool in offered]
    assert [tool.description for tool in tools] == [tool.description for tool in offered]
    assert [tool.input_schema for tool in tools] == [tool.parameters for tool in offered]
    assert not RESERVED_TOOL_NAMES & {tool.name for tool in tools}


def test_a_tool_added_to_the_registry_is_listed_and_callable_with_no_code_of_its_own() -> None:
    class EchoArgs(BaseModel):
        word: str = Field(description="Any word")

    name = "echo_word_for_test"
    register_tool(name, "Repeats a word.", EchoArgs, reads=(), example={"word": "x"})(
        lambda episode, args: {"echo": args.word, "days": len(episode.dates)}
    )
    try:
        environment = MetricTrackerRlEnvironment()
        tool = next(tool for tool in listed(environment).tools if tool.name == name)
        assert tool.description == "Repeats a word."
        assert tool.input_schema["required"] == ["word"]
        environment.reset(seed=1, difficulty="easy")
        observation = environment.step(CallToolAction(tool_name=name, arguments={"word": "funnel"}))
        assert observation.result["data"].startswith("echo: funnel\ndays: ")
        assert observation.result["is_error"] is False
    finally:
        unregister_tool(name)
    assert name not in [tool.name for tool in listed(MetricTrackerRlEnvironment()).tools]


def test_a_call_before_reset_says_how_to_start_and_uses_nothing() -> None:
    environment = MetricTrackerRlEnvironment()
    observation = environment.step(CallToolAction(tool_name="get_annotations", arguments={}))
    assert isinstance(observation, CallToolObservation)
    assert observation.result["is_error"] is True and observation.reward == 0.0 and not observation.done
    assert "reset first" in observation.result["data"] and "openenv/session/create" in observation.result["data"]


def test_mistakes_come_back_as_text_that_lists_the_valid_options() -> None:
    environment = MetricTrackerRlEnvironment()
    environment.reset(seed=2, difficulty="medium")
    unknown = environment.step(CallToolAction(tool_name="drop_table", arguments={}))
    assert unknown.result["is_error"] and "valid tools: task_overview" in unknown.result["data"]
    bad_rows = environment.step(CallToolAction(tool_name="submit_report", arguments={"rows": [{"date": "x"}]}))
    assert bad_rows.result["is_error"] and "Nothing was submitted" in bad_rows.result["data"]
    bad_args = environment.step(CallToolAction(tool_name="hourly_rows_for_date", arguments={"day": "x"}))
    assert bad_args.result["is_error"] and "Valid arguments: date" in bad_args.result["data"]
    assert environment.state.submissions_used == 0 and not environment.state.done


def test_optional_parameters_sent_as_null_count_as_left_out() -> None:
    """Clients that build a request model from the schema (NeMo Gym's adapter) send left-out options as null."""
    environment = MetricTrackerRlEnvironment()
    environment.reset(seed=3, difficulty="easy")
    with_nulls = environment.step(
        CallToolAction(tool_name="list_suspicious_dates", arguments={"limit": 2, "offset": None})
    )
    assert not with_nulls.result["is_error"] and with_nulls.result["data"].startswith("dates: 2 rows")
    required_null = environment.step(CallToolAction(tool_name="hourly_rows_for_date", arguments={"date": None}))
    assert required_null.result["is_error"] and "date" in required_null.result["data"]
    unknown_null = environment.step(CallToolAction(tool_name="get_annotations", arguments={"when": None}))
    assert unknown_null.result["is_error"] and "when" in unknown_null.result["data"]


def mirror_episode(
    agent_name: str, seed: int, difficulty: str, max_submissions: int
) -> tuple[list[float], list[float], MetricTrackerRlEnvironment]:
    """Drive a reference agent on the typed step API and send every action as the same MCP call to a twin
    environment; check each call's text against the typed observation's. Returns both reward lists."""
    typed, twin = MetricTrackerRlEnvironment(), MetricTrackerRlEnvironment()
    settings_ = {"seed": seed, "difficulty": difficulty, "max_submissions": max_submissions}
    agent = make_agent(agent_name)
    observation = typed.reset(**settings_)
    twin.reset(**settings_)
    agent.begin(seen(observation))
    typed_rewards, mcp_rewards = [], []
    for _ in range(60):
        action = agent.act(seen(observation))
        if action is None:
            break
        observation = typed.step(action)
        name, arguments = action_tool_call(action)
        called = twin.step(CallToolAction(tool_name=name, arguments=json.loads(json.dumps(arguments))))
        assert called.result["data"] == render_observation(observation)
        assert called.result["structured_content"] == {
            "reward": called.reward,
            "done": called.done,
            "episode_score": observation.episode_score,
        }
        typed_rewards.append(float(observation.reward or 0.0))
        mcp_rewards.append(called.reward)
        if observation.done:
            break
    return typed_rewards, mcp_rewards, twin


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    agent_name=st.sampled_from(AGENT_NAMES),
    seed=st.integers(0, 10_000),
    difficulty=st.sampled_from(["easy", "medium", "hard"]),
    max_submissions=st.integers(1, 3),
)
def test_mcp_calls_show_the_typed_text_and_their_rewards_sum_to_the_score(
    agent_name: str, seed: int, difficulty: str, max_submissions: int
) -> None:
    typed_rewards, mcp_rewards, twin = mirror_episode(agent_name, seed, difficulty, max_submissions)
    assert mcp_rewards == typed_rewards
    assert sum(mcp_rewards) == pytest.approx(twin.state.episode_score, abs=1e-5)


# --- over a live server --------------------------------------------------------------------------------


def rpc(url: str, method: str, params: dict[str, Any] | None = None, request_id: int = 1) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "method": method, "id": request_id, **({"params": params} if params else {})}
    response = httpx.post(f"{url}/mcp", json=body, timeout=30)
    response.raise_for_status()
    return response.json()


def test_http_tools_list_matches_the_offered_tools(server_url: str) -> None:
    tools = rpc(server_url, "tools/list")["result"]["tools"]
    assert tools == [{"name": t.name, "description": t.description, "inputSchema": t.parameters} for t in model_tools()]


def test_http_json_rpc_mistakes_get_json_rpc_errors(server_url: str) -> None:
    assert rpc(server_url, "tools/delete")["error"]["code"] == -32601
    assert rpc(server_url, "tools/call", {"arguments": {}})["error"]["code"] == -32602
    assert rpc(server_url, "tools/call", {"name": "get_annotations", "session_id": "nope"})["error"]["code"] == -32602
    assert rpc(server_url, "tools/call", {"name": ["x"]})["result"]["is_error"]
    stateless = rpc(server_url, "tools/call", {"name": "get_annotations"})["result"]
    assert stateless["is_error"] and "reset first" in stateless["data"]
    unparsable = httpx.post(f"{server_url}/mcp", content=b"{not json", timeout=30).json()
    assert unparsable["error"]["code"] == -32700


def test_http_tools_list_in_a_session_is_its_episodes_tiers(server_url: str) -> None:
    """tools/list with a session_id (as the verifiers toolset sends it) lists the tools of the session's episode's
    tier: the warehouse's after a warehouse reset, every listed tier's before one."""
    session_id = rpc(server_url, "openenv/session/create")["result"]["session_id"]
    ws_url = server_url.replace("http", "ws", 1)

    def listed() -> list[str]:
        return [tool["name"] for tool in rpc(server_url, "tools/list", {"session_id": session_id})["result"]["tools"]]

    async def play() -> tuple[list[str], list[str]]:
        async with websockets.connect(f"{ws_url}/ws?session_id={session_id}") as socket:
            before = await asyncio.to_thread(listed)
            await socket.send(json.dumps({"type": "reset", "data": {"seed": 2, "difficulty": "warehouse"}}))
            await socket.recv()
            return before, await asyncio.to_thread(listed)

    before, after = asyncio.run(play())
    assert before == [tool.name for tool in model_tools()]
    assert after == [tool.name for tool in model_tools("warehouse")]
    rpc(server_url, "openenv/session/close", {"session_id": session_id})


def test_an_http_mcp_session_plays_an_episode_whose_rewards_sum_to_its_score(server_url: str) -> None:
    """OpenEnv's HTTP MCP lifecycle: openenv/session/create, reset on /ws?session_id=..., tools/call on POST /mcp
    with the session_id, the score read back from the session's state."""
    session_id = rpc(server_url, "openenv/session/create")["result"]["session_id"]
    reset = {"seed": 11, "difficulty": "easy", "max_submissions": 2}
    ws_url = server_url.replace("http", "ws", 1)

    def call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return rpc(server_url, "tools/call", {"name": name, "arguments": arguments, "session_id": session_id})["result"]

    async def play() -> tuple[list[float], dict[str, Any]]:
        async with websockets.connect(f"{ws_url}/ws?session_id={session_id}") as socket:
            await socket.send(json.dumps({"type": "reset", "data": reset}))
            await socket.recv()
            rows = await asyncio.to_thread(call, "get_median_filter_rows", {"limit": 120})
            assert rows["data"].startswith("rows: ") and rows["structured_content"]["reward"] == 0.0
            rewards = [rows["structured_content"]["reward"]]
            for name, arguments in (("submit_report", {"rows": []}), expert_submission(reset)):
                result = await asyncio.to_thread(call, name, arguments)
                assert result["is_error"] is False and result["data"].startswith("graded:")
                rewards.append(result["structured_content"]["reward"])
            await socket.send(json.dumps({"type": "state"}))
            return rewards, json.loads(await socket.recv())["data"]

    rewards, state = asyncio.run(play())
    assert state["done"] and state["submissions_used"] == 2
    assert rewards[1] == 0.0 and rewards[2] > 0.0
    assert sum(rewards) == pytest.approx(state["episode_score"], abs=1e-5)
    rpc(server_url, "openenv/session/close", {"session_id": session_id})


def test_openenv_mcp_tool_client_lists_and_calls_the_tools(server_url: str) -> None:
    async def play() -> tuple[list[str], str]:
        async with MCPToolClient(base_url=server_url) as env:
            await env.reset(seed=4, difficulty="hard")
            names = [tool.name for tool in await env.list_tools()]
            return names, await env.call_tool("list_suspicious_dates", limit=2)

    names, text = asyncio.run(play())
    assert names == [tool.name for tool in model_tools("hard")]  # the tools of the session's episode's tier
    assert text.startswith("dates: 2 rows") and "steps_remaining: 39" in text


def test_tools_list_over_json_rpc_after_a_warehouse_reset_is_the_warehouses_tools(server_url: str) -> None:
    """A session's tools/list is its episode's tier's (the SQL tool with the warehouse's limit, the metrics layer);
    a tool not offered there answers an error that names them."""

    async def play() -> tuple[list[Any], str]:
        async with MCPToolClient(base_url=server_url) as env:
            await env.reset(seed=4, difficulty="warehouse")
            tools = await env.list_tools()
            return tools, await env.call_tool("list_suspicious_dates", limit=2)

    tools, refused = asyncio.run(play())
    assert [tool.name for tool in tools] == [tool.name for tool in model_tools("warehouse")]
    [query] = [tool for tool in tools if tool.name == "query"]
    assert [tool.description for tool in tools] == [tool.description for tool in model_tools("warehouse")]
    assert "max 8000 chars" in str(query.input_schema)
    assert "not offered at difficulty 'warehouse'" in refused and "query, metrics_layer" in refused


def expert_submission(reset: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The tool call of the expert agent's report on this episode (played in-process: it reads only model text)."""
    environment, agent = MetricTrackerRlEnvironment(), make_agent("expert")
    observation = environment.reset(**reset)
    agent.begin(seen(observation))
    while (action := agent.act(seen(observation))) is not None:
        if action.analysis_method is None:
            return action_tool_call(action)
        observation = environment.step(action)
    raise AssertionError("the expert agent stopped without a report")


def test_websocket_mcp_messages_reach_the_session_episode(server_url: str) -> None:
    """`{"type": "mcp"}` on /ws runs in the session that the socket reset; /mcp lists tools without a reset."""
    ws_url = server_url.replace("http", "ws", 1)

    async def play() -> tuple[list[float], float, list[str]]:
        async with websockets.connect(f"{ws_url}/ws") as socket:
            await socket.send(json.dumps({"type": "reset", "data": {"seed": 5, "difficulty": "medium"}}))
            await socket.recv()
            rewards = []
            for request_id, (name, arguments) in enumerate(
                [("list_suspicious_dates", {"limit": 3}), ("submit_report", {"rows": []})]
            ):
                await socket.send(
                    json.dumps(
                        {
                            "type": "mcp",
                            "data": {
                                "jsonrpc": "2.0",
                                "method": "tools/call",
                                "id": request_id,
                                "params": {"name": name, "arguments": arguments},
                            },
                        }
                    )
                )
                reply = json.loads(await socket.recv())
                assert reply["type"] == "mcp" and reply["data"]["id"] == request_id
                rewards.append(reply["data"]["result"]["structured_content"]["reward"])
            await socket.send(json.dumps({"type": "state"}))
            state = json.loads(await socket.recv())["data"]
        async with websockets.connect(f"{ws_url}/mcp") as socket:
            await socket.send(json.dumps({"jsonrpc": "2.0", "method": "tools/list", "id": 9}))
            names = [tool["name"] for tool in json.loads(await socket.recv())["result"]["tools"]]
        return rewards, state["episode_score"], names

    rewards, score, names = asyncio.run(play())
    assert rewards[0] == 0.0 and sum(rewards) == pytest.approx(score, abs=1e-5)
    assert names == [tool.name for tool in model_tools()]


def test_an_unknown_tools_error_lists_the_tiers_own_tools_at_every_tier(server_url: str) -> None:
    """tools/call of an unknown tool over `{"type": "mcp"}` on /ws, after a reset at each tier: the error lists
    exactly the tools that tier's tools/list offers (not every tier's), and no step is used."""
    ws_url = server_url.replace("http", "ws", 1)

    async def play() -> dict[str, tuple[str, list[str], int]]:
        answers = {}
        async with websockets.connect(f"{ws_url}/ws", max_size=None) as socket:
            for request_id, difficulty in enumerate(DIFFICULTIES):
                await socket.send(json.dumps({"type": "reset", "data": {"seed": 3, "difficulty": difficulty}}))
                await socket.recv()
                replies = []
                for method, params in (("tools/call", {"name": "drop_table", "arguments": {}}), ("tools/list", {})):
                    await socket.send(
                        json.dumps(
                            {
                                "type": "mcp",
                                "data": {"jsonrpc": "2.0", "method": method, "id": request_id, "params": params},
                            }
                        )
                    )
                    replies.append(json.loads(await socket.recv())["data"]["result"])
                await socket.send(json.dumps({"type": "state"}))
                steps = json.loads(await socket.recv())["data"]["step_count"]
                answers[difficulty] = (replies[0]["data"], [tool["name"] for tool in replies[1]["tools"]], steps)
        return answers

    for difficulty, (error, listed_names, steps) in asyncio.run(play()).items():
        own = [tool.name for tool in model_tools(difficulty)]
        assert listed_names == own
        assert error == f"error: unknown tool 'drop_table'; valid tools: {', '.join(own)}", difficulty
        assert steps == 0


def test_openenvs_mcp_harness_plays_an_episode_on_the_mcp_session_and_gets_its_score(server_url: str) -> None:
    """The harness layer TRL's async GRPO trainer drives: MCPHarnessAdapter over `McpSessionFactory`, with a
    scripted model (the expert agent reading each tool message's text) in place of a sampled one."""
    from openenv.core.harness import HarnessRunLimits, MCPHarnessAdapter, ModelStepResult, _resolve_env_reward
    from openenv.core.llm_client import LLMResponse, ToolCall
    from text_reader import read_observation

    from metric_tracker_rl.adapters.openenv_harness import McpSessionFactory

    agent = make_agent("expert")
    offered: list[list[str]] = []

    def model_step(messages: list[dict[str, Any]], tools: list[Any], sampling: dict[str, Any]) -> ModelStepResult:
        offered.append([tool.name for tool in tools])
        seen_now = read_observation(messages[-1]["content"])
        if messages[-1]["role"] == "user":
            agent.begin(seen_now)
        action = agent.act(seen_now)
        if action is None:
            return ModelStepResult(response=LLMResponse(content="done"))
        name, arguments = action_tool_call(action)
        call = ToolCall(id=f"call_{len(messages)}", name=name, args=json.loads(json.dumps(arguments)))
        return ModelStepResult(response=LLMResponse(content="", tool_calls=[call]))

    reset = {"seed": 21, "difficulty": "medium", "max_submissions": 2}
    session = McpSessionFactory(server_url).create(reset, seed=999)
    try:
        rollout = MCPHarnessAdapter().run_white_box(model_step, session, HarnessRunLimits(max_turns=60))
        reward = _resolve_env_reward(rollout, session.verify(rollout.messages))
    finally:
        session.close()
    assert rollout.done and offered[0] == [tool.name for tool in model_tools("medium")]
    assert rollout.messages[:2] == session.initial_messages()

    # The same agent in-process on the typed step API scores the same.
    environment = MetricTrackerRlEnvironment()
    observation = environment.reset(**reset)
    twin = make_agent("expert")
    twin.begin(seen(observation))
    while not observation.done and (action := twin.act(seen(observation))) is not None:
        observation = environment.step(action)
    assert reward == pytest.approx(environment.state.episode_score, abs=1e-5) and reward > 0.5
