"""The step budget holds when one session's calls arrive all at once: 48 concurrent calls on one session, in
process (threads and one event loop), over /ws (frames sent without waiting for replies) and over MCP HTTP
(`tools/call` requests in flight together), never run more steps than the budget allows."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import websockets
from conftest import running_server

from metric_tracker_rl import MetricTrackerRlAction
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment

CALLS = 48
OVER = "The episode is over"
# A mix of what a hurried client sends: SQL (run on threads, behind the fair gate), a cheap inline tool, and a
# submission that ends the episode; the budget is smaller than any of the groups.
SQL = {"sql": "SELECT date, SUM(app_opens) AS v FROM daily GROUP BY date ORDER BY v DESC", "limit": 5}


def actions(count: int) -> list[MetricTrackerRlAction]:
    kinds = [
        MetricTrackerRlAction(analysis_method="query", analysis_args=SQL),
        MetricTrackerRlAction(analysis_method="get_annotations"),
        MetricTrackerRlAction(analysis_method="query", analysis_args={**SQL, "limit": 1}),
    ]
    return [kinds[index % len(kinds)] for index in range(count)]


def ran(messages: list[str]) -> int:
    """How many of the answers are steps that ran (the others say the episode is over)."""
    return sum(OVER not in message for message in messages)


@pytest.mark.parametrize("budget", [3, 5])
def test_threads_calling_step_at_once_run_no_more_steps_than_the_budget(budget: int) -> None:
    env = MetricTrackerRlEnvironment()
    env.reset(seed=4, difficulty="medium", max_steps=budget)
    with ThreadPoolExecutor(max_workers=CALLS) as threads:
        answers = list(threads.map(env.step, actions(CALLS)))
    try:
        assert ran([answer.message or "" for answer in answers]) == budget
        assert env.state.step_count == budget and env.state.done
    finally:
        env.close()


@pytest.mark.parametrize("budget", [3, 5])
def test_one_event_loop_awaiting_many_steps_runs_no_more_than_the_budget(budget: int) -> None:
    env = MetricTrackerRlEnvironment()
    env.reset(seed=4, difficulty="medium", max_steps=budget)

    async def burst() -> list[Any]:
        return await asyncio.gather(*(env.step_async(action) for action in actions(CALLS)))

    try:
        answers = asyncio.run(burst())
        assert ran([answer.message or "" for answer in answers]) == budget
        assert env.state.step_count == budget
    finally:
        env.close()


@pytest.fixture(scope="module")
def budget_server() -> Any:
    with running_server(extra_env={"SQL_WORKERS": "3"}) as url:
        yield url


@pytest.mark.slow
@pytest.mark.parametrize("budget", [3, 5])
def test_frames_sent_together_on_one_socket_run_no_more_than_the_budget(budget_server: str, budget: int) -> None:
    async def burst() -> tuple[list[str], dict[str, Any]]:
        async with websockets.connect(budget_server.replace("http", "ws", 1) + "/ws", open_timeout=60) as ws:
            await ws.send(
                json.dumps({"type": "reset", "data": {"seed": 4, "difficulty": "medium", "max_steps": budget}})
            )
            await ws.recv()
            for action in actions(CALLS):
                await ws.send(json.dumps({"type": "step", "data": action.model_dump(exclude_none=True)}))
            replies = [json.loads(await ws.recv()) for _ in range(CALLS)]
            await ws.send(json.dumps({"type": "state"}))
            state = json.loads(await ws.recv())["data"]
        return [reply["data"]["observation"].get("message") or "" for reply in replies], state

    messages, state = asyncio.run(burst())
    assert ran(messages) == budget
    assert state["step_count"] == budget


@pytest.mark.slow
@pytest.mark.parametrize("budget", [3, 5])
def test_mcp_tools_calls_in_flight_together_run_no_more_than_the_budget(budget_server: str, budget: int) -> None:
    url = budget_server
    with httpx.Client(timeout=120) as client:
        session_id = client.post(
            f"{url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "openenv/session/create"}
        ).json()["result"]["session_id"]

        def call(index: int) -> str:
            name, arguments = ("query", SQL) if index % 2 else ("get_annotations", {})
            body = {
                "jsonrpc": "2.0",
                "id": index,
                "method": "tools/call",
                "params": {"name": name, "arguments": arguments, "session_id": session_id},
            }
            return client.post(f"{url}/mcp", json=body).json()["result"]["data"]

        async def play() -> tuple[list[str], dict[str, Any]]:
            async with websockets.connect(
                f"{url.replace('http', 'ws', 1)}/ws?session_id={session_id}", open_timeout=60
            ) as ws:
                await ws.send(
                    json.dumps({"type": "reset", "data": {"seed": 4, "difficulty": "medium", "max_steps": budget}})
                )
                await ws.recv()
                with ThreadPoolExecutor(max_workers=CALLS) as threads:
                    texts = await asyncio.to_thread(lambda: list(threads.map(call, range(CALLS))))
                await ws.send(json.dumps({"type": "state"}))
                return texts, json.loads(await ws.recv())["data"]

        texts, state = asyncio.run(play())
        client.post(
            f"{url}/mcp",
            json={"jsonrpc": "2.0", "id": 2, "method": "openenv/session/close", "params": {"session_id": session_id}},
        )
    assert ran(texts) == budget, texts
    assert state["step_count"] == budget
