"""A dropped connection comes back to its episode (the client's default): the client's session outlives its socket,
a step sent again under its number after the drop is answered once, never run twice, and a client that closes
gives its session's place back."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import httpx
import pytest
from conftest import running_server

from metric_tracker_rl import MetricTrackerRlAction, MetricTrackerRlEnv
from metric_tracker_rl.compat.openenv import SESSION_CLOSE_METHOD, client_socket
from metric_tracker_rl.reconnect import SessionLost

CHEAP = MetricTrackerRlAction(analysis_method="query", analysis_args={"sql": "SELECT count(*) AS n FROM daily"})
SLOWISH = MetricTrackerRlAction(
    analysis_method="query", analysis_args={"sql": "SELECT count(*) AS n FROM range(30000000) a"}
)

pytestmark = pytest.mark.slow  # a server process of its own


PER_CLIENT_CAP = 8


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with running_server({"SESSION_TIMEOUT_S": "120", "MAX_SESSIONS_PER_CLIENT": str(PER_CLIENT_CAP)}) as served:
        yield served


def test_a_step_whose_socket_breaks_mid_step_is_answered_on_a_new_socket_of_the_same_session(url: str) -> None:
    async def play() -> tuple[int, int, int, int]:
        async with MetricTrackerRlEnv(base_url=url) as env:
            first = await env.reset(difficulty="easy", seed=11)
            stepping = asyncio.ensure_future(env.step(SLOWISH))
            await asyncio.sleep(0.2)
            client_socket(env).transport.abort()  # the connection breaks under the running step
            resumed = await stepping
            after = await env.step(CHEAP)
            return (
                first.observation.steps_remaining,
                resumed.observation.steps_remaining,
                after.observation.steps_remaining,
                env.resumed,
            )

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
        async with MetricTrackerRlEnv(base_url=url) as env:
            await env.reset(difficulty="easy", seed=3)
            async with httpx.AsyncClient() as http:  # the server closes the session (as it closes an idle one)
                await http.post(
                    f"{url}/mcp",
                    json={
                        "jsonrpc": "2.0",
                        "id": 1,
                        "method": SESSION_CLOSE_METHOD,
                        "params": {"session_id": env._session_id},
                    },
                )
            client_socket(env).transport.abort()  # and the connection drops: nothing to come back to
            with pytest.raises(SessionLost) as lost:
                await env.step(CHEAP)
            return str(lost.value)

    assert "call reset()" in asyncio.run(play())


async def _until_forgotten(url: str, session_id: str | None) -> None:
    """Until the server has ended the session (a close asked for while a socket is attached ends it with the socket)."""
    async with httpx.AsyncClient() as http:
        for _ in range(600):
            answer = (
                await http.post(
                    f"{url}/mcp",
                    json={
                        "jsonrpc": "2.0",
                        "id": 1,
                        "method": SESSION_CLOSE_METHOD,
                        "params": {"session_id": session_id},
                    },
                )
            ).json()
            if "error" in answer:
                return
            await asyncio.sleep(0.05)


def test_a_reset_after_the_server_forgot_the_session_opens_a_new_one(url: str) -> None:
    async def play() -> str:
        async with MetricTrackerRlEnv(base_url=url) as env:
            await env.reset(difficulty="easy", seed=3)
            old = env._session_id
            async with httpx.AsyncClient() as http:  # as a restarted server, or one that closed the idle session
                await http.post(
                    f"{url}/mcp",
                    json={"jsonrpc": "2.0", "id": 1, "method": SESSION_CLOSE_METHOD, "params": {"session_id": old}},
                )
            client_socket(env).transport.abort()
            await _until_forgotten(url, old)
            again = await env.reset(difficulty="easy", seed=3)
            assert env._session_id not in (None, old)
            return again.observation.status

    assert asyncio.run(play()) == "ready"


def test_the_trl_class_rides_out_a_dropped_connection_mid_call(url: str) -> None:
    from metric_tracker_rl.adapters.trl import MetricTrackerToolEnv
    from metric_tracker_rl.settings import ClientSettings

    with MetricTrackerToolEnv(ClientSettings.load(server_url=url)) as env:
        env.reset(difficulty="easy", seed=11)
        first = env.query(sql="SELECT count(*) AS n FROM daily")
        client_socket(env._client.async_client).transport.abort()
        second = env.query(sql="SELECT count(*) AS n FROM daily")
    left = int(first.rsplit("steps_remaining: ", 1)[1].split()[0])
    assert second == first.replace(f"steps_remaining: {left}", f"steps_remaining: {left - 1}")  # answered, once


class Gate:
    """A loopback TCP forwarder to the server that can refuse every new connection for a while, as a network
    that is down: a client's reconnect through it fails."""

    def __init__(self, url: str) -> None:
        self.target = httpx.URL(url)
        self.refusing = False
        self.url = ""
        self._pipes: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Gate:
        self._server = await asyncio.start_server(self._connected, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._server.close()
        for pipe in self._pipes:
            pipe.cancel()

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.close()
            return
        upstream_reader, upstream_writer = await asyncio.open_connection(self.target.host, self.target.port)
        for source, sink in ((reader, upstream_writer), (upstream_reader, writer)):
            pipe = asyncio.ensure_future(self._pipe(source, sink))
            self._pipes.add(pipe)
            pipe.add_done_callback(self._pipes.discard)

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while chunk := await source.read(65536):
                sink.write(chunk)
                await sink.drain()
        sink.close()


def test_a_step_whose_reconnects_fail_for_a_while_comes_back_to_its_own_session(url: str) -> None:
    """A failed reconnect does not give the session up: the step is answered on it once the network is back."""

    async def play() -> tuple[int, int, bool, int]:
        async with Gate(url) as gate, MetricTrackerRlEnv(base_url=gate.url) as env:
            first = await env.reset(difficulty="easy", seed=11)
            session = env._session_id
            gate.refusing = True
            client_socket(env).transport.abort()
            stepping = asyncio.ensure_future(env.step(CHEAP))
            await asyncio.sleep(1.5)  # reconnects are refused meanwhile
            gate.refusing = False
            after = await stepping
            return (
                first.observation.steps_remaining,
                after.observation.steps_remaining,
                env._session_id == session,
                env.resumed,
            )

    start, after, same_session, resumed = asyncio.run(play())
    assert same_session and resumed >= 1
    assert after == start - 1


def test_closed_clients_give_their_places_back(url: str) -> None:
    """Sync clients (as the TRL class and inference.py use) opened and closed one after another, more of them than
    the per-client cap: each closes its session when it closes, so every one of them gets a place."""
    from metric_tracker_rl.adapters.trl import MetricTrackerToolEnv
    from metric_tracker_rl.settings import ClientSettings

    for index in range(PER_CLIENT_CAP + 2):
        with MetricTrackerToolEnv(ClientSettings.load(server_url=url, retry_deadline_s=0)) as env:
            assert "steps_remaining" in env.reset(difficulty="easy", seed=index)
            assert env._client.async_client._session_id is not None


def test_the_off_switch_plays_on_one_socket_that_a_drop_ends(url: str) -> None:
    async def play() -> tuple[str | None, str]:
        async with MetricTrackerRlEnv(base_url=url, resume_sessions=False) as env:
            await env.reset(difficulty="easy", seed=3)
            client_socket(env).transport.abort()
            await asyncio.sleep(0.1)  # the connection sees its end
            with pytest.raises(SessionLost) as lost:
                await env.step(CHEAP)
            return env._session_id, str(lost.value)

    session_id, lost = asyncio.run(play())
    assert session_id is None and "call reset()" in lost
