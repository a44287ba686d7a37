"""One rule for which calls cost a step, the same over every entry point (docs/tools.md, "Which calls cost a
step"): a call refused before anything ran (no tool of the tier by that name, arguments its checks refuse, a report
refused before grading) uses no step; a call that ran uses one, whatever it answered. Each entry point sends the
same calls to a live server, and the server's step count after each must be the rule's."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from conftest import INSPECT_GROUP

from metric_tracker_rl import MetricTrackerRlEnv
from metric_tracker_rl.adapters.transcript import TaskRun
from metric_tracker_rl.adapters.trl import MetricTrackerToolEnv
from metric_tracker_rl.agents.llm import OpenAiChat
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.settings import ClientSettings
from metric_tracker_rl.view.tool_schemas import openai_tools

pytestmark = pytest.mark.slow  # a live server, and an Inspect eval

RESET = {"seed": 3, "difficulty": "easy"}
# (tool, arguments, steps it uses): the same calls through every entry point.
CALLS: list[tuple[str, dict[str, Any], int]] = [
    ("drop_table", {}, 0),  # no tool of that name
    ("hourly_rows_for_date", {"date": 5}, 0),  # a wrong type: the schema refuses it
    ("hourly_rows_for_date", {}, 0),  # a required argument missing
    ("hourly_rows_for_date", {"date": "2026-03-10", "day": 1}, 0),  # an argument the tool does not take
    ("hourly_rows_for_date", {"date": "1999-01-01"}, 0),  # a date outside the episode: its checks refuse it
    ("submit_report", {"rows": [{"date": "2026-03-10"}]}, 0),  # rows missing their fields: nothing submitted
    ("query", {"sql": "DROP TABLE daily"}, 1),  # the tool ran and refused the statement
    ("get_annotations", {}, 1),  # a call that runs
]
EXPECTED = [steps for _, _, steps in CALLS]


def ws_url(server_url: str) -> str:
    return server_url.replace("http", "ws", 1)


async def _socket_calls(
    server_url: str, message: Callable[[int, str, dict[str, Any]], dict[str, Any]], path: str = "/ws"
) -> list[int]:
    """Each call's steps over one /ws session: the server's step count before and after it."""
    used = []
    async with websockets.connect(ws_url(server_url) + path, max_size=None) as socket:
        await socket.send(json.dumps({"type": "reset", "data": RESET}))
        await socket.recv()
        for index, (name, arguments, _steps) in enumerate(CALLS):
            await socket.send(json.dumps(message(index, name, arguments)))
            await socket.recv()
            await socket.send(json.dumps({"type": "state"}))
            used.append(json.loads(await socket.recv())["data"]["step_count"])
    return [after - before for before, after in zip([0, *used], used, strict=False)]


def typed_action(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """The typed action a /ws client sends for a call (a report's rows as sent, however malformed)."""
    if name == "submit_report":
        return {"classifications": arguments["rows"]}
    return {"analysis_method": name, "analysis_args": arguments}


def over_ws_typed(server_url: str, log_dir: Path) -> list[int]:
    return asyncio.run(
        _socket_calls(
            server_url, lambda index, name, arguments: {"type": "step", "data": typed_action(name, arguments)}
        )
    )


def over_mcp_ws(server_url: str, log_dir: Path) -> list[int]:
    return asyncio.run(
        _socket_calls(
            server_url,
            lambda index, name, arguments: {
                "type": "mcp",
                "data": {
                    "jsonrpc": "2.0",
                    "method": "tools/call",
                    "id": index,
                    "params": {"name": name, "arguments": arguments},
                },
            },
        )
    )


def over_mcp_http(server_url: str, log_dir: Path) -> list[int]:
    """OpenEnv's HTTP MCP lifecycle (the verifiers taskset's): a session, reset on /ws, tools/call on POST /mcp."""

    def rpc(method: str, params: dict[str, Any]) -> dict[str, Any]:
        reply = httpx.post(
            f"{server_url}/mcp", json={"jsonrpc": "2.0", "method": method, "id": 1, "params": params}, timeout=60
        )
        return reply.json()["result"]

    session_id = rpc("openenv/session/create", {})["session_id"]

    async def play() -> list[int]:
        used = []
        async with websockets.connect(f"{ws_url(server_url)}/ws?session_id={session_id}") as socket:
            await socket.send(json.dumps({"type": "reset", "data": RESET}))
            await socket.recv()
            for name, arguments, _steps in CALLS:
                await asyncio.to_thread(
                    rpc, "tools/call", {"name": name, "arguments": arguments, "session_id": session_id}
                )
                await socket.send(json.dumps({"type": "state"}))
                used.append(json.loads(await socket.recv())["data"]["step_count"])
        return [after - before for before, after in zip([0, *used], used, strict=False)]

    try:
        return asyncio.run(play())
    finally:
        rpc("openenv/session/close", {"session_id": session_id})


def in_process(server_url: str, log_dir: Path) -> list[int]:
    """The environment in this process, stepped with the typed actions (a report's malformed rows cannot be built
    into an action: the client refuses it, as OpenEnv's server does)."""
    from metric_tracker_rl.models import MetricTrackerRlAction

    env = MetricTrackerRlEnvironment()
    env.reset(seed=3, difficulty="easy")
    used = []
    for name, arguments, _steps in CALLS:
        before = env.state.step_count
        try:
            action = MetricTrackerRlAction(**typed_action(name, arguments))
        except ValueError:
            action = None
        if action is not None:
            env.step(action)
        used.append(env.state.step_count - before)
    return used


def trl_class(server_url: str, log_dir: Path) -> list[int]:
    """TRL's tool class: a tool it has no method for is TRL's own refusal (nothing reaches the class)."""
    env = MetricTrackerToolEnv(ClientSettings(METRIC_TRACKER_URL=server_url))
    try:
        env.reset(**RESET)
        used = []
        for name, arguments, _steps in CALLS:
            before = env._client.state().step_count
            if hasattr(env, name):
                getattr(env, name)(**arguments)
            used.append(env._client.state().step_count - before)
        return used
    finally:
        env._close()


def inference_model_loop(server_url: str, log_dir: Path) -> list[int]:
    """inference.py's model loop: each tool call as the OpenAI client hands it over (JSON text)."""
    with MetricTrackerRlEnv(base_url=server_url).sync() as env:
        run = TaskRun("rule")
        run.reset(env, **RESET)
        chat = OpenAiChat(None, ClientSettings(), openai_tools("easy"), env, run)  # type: ignore[arg-type]
        used = []
        for name, arguments, _steps in CALLS:
            before = env.state().step_count
            chat.execute(name, json.dumps(arguments))
            used.append(env.state().step_count - before)
        assert run.steps == sum(used)  # the log's step count is the server's
        return used


def inspect_task(server_url: str, log_dir: Path) -> list[int]:
    """An Inspect eval whose mock model makes each call, then `task_overview` (one step, whose text shows the
    steps left): Inspect checks a call against the tool's schema before our tool sees it."""
    pytest.importorskip("inspect_ai", reason=INSPECT_GROUP)
    from inspect_ai import eval as inspect_eval
    from inspect_ai.model import ChatMessage, ChatMessageTool, ModelOutput, ModelUsage, get_model

    from metric_tracker_rl.adapters.inspect_eval import metric_tracker

    script = [call for name, arguments, _steps in CALLS for call in ((name, arguments), ("task_overview", {}))]
    texts: list[str] = []

    def model(messages: list[ChatMessage], *_: Any) -> ModelOutput:
        made = sum(isinstance(m, ChatMessageTool) for m in messages)
        if made:
            texts.append(str(messages[-1].text))
        name, arguments = script[made] if made < len(script) else ("submit_report", {"rows": []})
        output = ModelOutput.for_tool_call("mockllm/model", name, arguments)
        output.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
        return output

    [log] = inspect_eval(
        metric_tracker(tasks="easy_two_spikes", base_url=server_url),
        model=get_model("mockllm/model", custom_outputs=model, memoize=False),
        log_dir=str(log_dir),
        display="none",
    )
    assert log.status == "success", log.error
    left = [int(text.split("steps_remaining: ")[1].split()[0]) for text in texts[1::2]]
    budget = 40
    return [before - after - 1 for before, after in zip([budget, *left], left, strict=False)]


ENTRY_POINTS = {
    "in-process": in_process,
    "/ws typed": over_ws_typed,
    "MCP on /ws": over_mcp_ws,
    "MCP over HTTP (verifiers)": over_mcp_http,
    "TRL MetricTrackerToolEnv": trl_class,
    "inference.py": inference_model_loop,
    "Inspect": inspect_task,
}


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_a_call_costs_a_step_only_if_it_ran_the_same_through_every_entry_point(
    entry_point: str, server_url: str, tmp_path: Path
) -> None:
    used = ENTRY_POINTS[entry_point](server_url, tmp_path)
    assert dict(
        zip([f"{name}({json.dumps(arguments)})" for name, arguments, _steps in CALLS], used, strict=True)
    ) == dict(zip([f"{name}({json.dumps(arguments)})" for name, arguments, _steps in CALLS], EXPECTED, strict=True))
