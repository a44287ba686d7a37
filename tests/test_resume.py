"""A dropped connection comes back to its episode: the client's session outlives its socket, and a step sent again
under its number after the drop is answered once, never run twice."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from conftest import running_server

from metric_tracker_rl import MetricTrackerRlAction, MetricTrackerRlEnv
from metric_tracker_rl.compat.openenv import SESSION_CLOSE_METHOD, client_socket
from metric_tracker_rl.reconnect import SessionLost

CHEAP = MetricTrackerRlAction(analysis_method="query", analysis_args={"sql": "SELECT count(*) AS n FROM daily"})
SLOWISH = MetricTrackerRlAction(analysis_method="query", analysis_args={
    "sql": "SELECT count(*) AS n FROM range(30000000) a"})

pytestmark = pytest.mark.slow  # a server process of its own


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with running_server({"SESSION_TIMEOUT_S": "120"}) as served:
        yield served


def test_a_step_whose_socket_breaks_mid_step_is_answered_on_a_new_socket_of_the_same_session(url: str) -> None:
    async def play() -> tuple[int, int, int, int]:
        async with MetricTrackerRlEnv(base_url=url, resume_sessions=True) as env:
            first = await env.reset(difficulty="easy", seed=11)
            stepping = asyncio.ensure_future(env.step(SLOWISH))
            await asyncio.sleep(0.2)
            client_socket(env).transport.abort()  # the connection breaks under the running step
            resumed = await stepping
            after = await env.step(CHEAP)
            return first.observation.steps_remaining, resumed.observation.steps_remaining, \
                after.observation.steps_remaining, env.resumed

    start, resumed, after, times = asyncio.run(play())
    assert times >= 1
    assert resumed == start - 1 and after == start - 2  # the step ran once, and the episode went on


def test_a_step_sent_again_under_its_number_is_answered_from_the_first_run() -> None:
    from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment

    env = MetricTrackerRlEnvironment()
    env.reset(difficulty="easy", seed=11)
    numbered = CHEAP.model_copy(update={"step_id": 7})
    once, again = env.step(numbered), env.step(numbered)
    assert again is once and env.state.step_count == 1
    assert env.step(numbered.model_copy(update={"step_id": 8})).steps_remaining == once.steps_remaining - 1


def test_a_session_the_server_no_longer_holds_is_lost_with_a_reason(url: str) -> None:
    async def play() -> str:
        async with MetricTrackerRlEnv(base_url=url, resume_sessions=True) as env:
            await env.reset(difficulty="easy", seed=3)
            async with httpx.AsyncClient() as http:  # the server closes the session (as it closes an idle one)
                await http.post(f"{url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": SESSION_CLOSE_METHOD,
                                                    "params": {"session_id": env._session_id}})
            client_socket(env).transport.abort()  # and the connection drops: nothing to come back to
            with pytest.raises(SessionLost) as lost:
                await env.step(CHEAP)
            return str(lost.value)

    assert "call reset()" in asyncio.run(play())


async def _until_forgotten(url: str, session_id: str | None) -> None:
    """Until the server has ended the session (a close asked for while a socket is attached ends it with the socket)."""
    async with httpx.AsyncClient() as http:
        for _ in range(600):
            answer = (await http.post(f"{url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": SESSION_CLOSE_METHOD,
                                                          "params": {"session_id": session_id}})).json()
            if "error" in answer:
                return
            await asyncio.sleep(0.05)


def test_a_reset_after_the_server_forgot_the_session_opens_a_new_one(url: str) -> None:
    async def play() -> str:
        async with MetricTrackerRlEnv(base_url=url, resume_sessions=True) as env:
            await env.reset(difficulty="easy", seed=3)
            old = env._session_id
            async with httpx.AsyncClient() as http:  # as a restarted server, or one that closed the idle session
                await http.post(f"{url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": SESSION_CLOSE_METHOD,
                                                    "params": {"session_id": old}})
            client_socket(env).transport.abort()
            await _until_forgotten(url, old)
            again = await env.reset(difficulty="easy", seed=3)
            assert env._session_id not in (None, old)
            return again.observation.status

    assert asyncio.run(play()) == "ready"


def test_the_trl_class_rides_out_a_dropped_connection_mid_call(url: str) -> None:
    from metric_tracker_rl.adapters.trl import MetricTrackerToolEnv
    from metric_tracker_rl.settings import ClientSettings

    with MetricTrackerToolEnv(ClientSettings.load(server_url=url, resume_sessions=True)) as env:
        env.reset(difficulty="easy", seed=11)
        first = env.query(sql="SELECT count(*) AS n FROM daily")
        client_socket(env._client.async_client).transport.abort()
        second = env.query(sql="SELECT count(*) AS n FROM daily")
    left = int(first.rsplit("steps_remaining: ", 1)[1].split()[0])
    assert second == first.replace(f"steps_remaining: {left}", f"steps_remaining: {left - 1}")  # answered, once
