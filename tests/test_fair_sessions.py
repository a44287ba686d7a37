"""One greedy client cannot lock others out: the per-client session cap over every transport (/ws, /mcp and HTTP
sessions), the grace period of unused sessions, the closing of idle ones and the retry hint, against a live
server. Two clients are told apart by their loopback source address (127.0.0.1 and 127.0.0.2 are both this
machine on Linux)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import running_server
from session_helpers import (
    RELEASE_WAIT_S,
    create_http_session,
    hold,
    http_client,
    open_mcp_socket,
    open_session,
    refusal,
    reset,
    rpc,
    rss_kb,
    server_pid,
    ws_url,
)
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

pytestmark = pytest.mark.slow  # starts server processes

PER_CLIENT = 3
GREEDY, POLITE = "127.0.0.2", "127.0.0.1"
CYCLES = 200
WARM_UP_CYCLES = 20
RSS_SLACK_KB = 16 * 1024


@pytest.fixture(scope="module")
def capped_server() -> Iterator[str]:
    env = {"MAX_CONCURRENT_ENVS": "8", "MAX_SESSIONS_PER_CLIENT": str(PER_CLIENT), "FORWARDED_ALLOW_IPS": POLITE}
    with running_server(extra_env=env) as url:
        yield url


def test_a_client_at_its_cap_cannot_stop_another_from_running_an_episode(capped_server: str) -> None:
    url = capped_server
    with contextlib.ExitStack() as stack:
        held = hold(stack, url, GREEDY, PER_CLIENT)
        with open_session(url, GREEDY) as extra:
            refused = refusal(extra)
        assert refused is not None and refused["data"]["code"] == "CAPACITY_REACHED", refused
        assert refused["data"]["max_sessions"] == PER_CLIENT
        retry_after_s = refused["data"]["retry_after_s"]
        assert isinstance(retry_after_s, int) and retry_after_s >= 1
        assert f"retry in about {retry_after_s} s" in refused["data"]["message"]

        with open_session(url, POLITE) as polite:
            reset(polite, seed=3)
            polite.send(
                json.dumps(
                    {"type": "step", "data": {"analysis_method": "show_raw_data", "analysis_args": {"limit": 3}}}
                )
            )
            step = json.loads(polite.recv(timeout=60))
            assert step["data"]["observation"]["status"] == "ok", step
            polite.send(json.dumps({"type": "step", "data": {"classifications": []}}))
            graded = json.loads(polite.recv(timeout=60))
            assert graded["type"] == "observation" and graded["data"]["reward"] is not None, graded
        for ws in held:  # the greedy client's own sessions are untouched
            reset(ws, seed=1)


def test_a_forwarded_for_header_counts_only_from_a_named_proxy(capped_server: str) -> None:
    url = capped_server
    with contextlib.ExitStack() as stack:
        hold(stack, url, GREEDY, PER_CLIENT)
        # 127.0.0.2 is not a named proxy: its claim to be someone else is ignored.
        with open_session(url, GREEDY, {"X-Forwarded-For": "203.0.113.7"}) as spoofed:
            assert refusal(spoofed) is not None
        # 127.0.0.1 is (FORWARDED_ALLOW_IPS): a session it forwards belongs to the client it names.
        with open_session(url, POLITE, {"X-Forwarded-For": GREEDY}) as forwarded:
            assert refusal(forwarded) is not None
        with open_session(url, POLITE, {"X-Forwarded-For": "203.0.113.7"}) as forwarded:
            assert refusal(forwarded) is None


def test_a_session_that_never_resets_is_closed_after_the_grace_period() -> None:
    env = {"MAX_CONCURRENT_ENVS": "2", "UNRESET_SESSION_GRACE_S": "1"}
    with running_server(extra_env=env) as url, open_session(url, POLITE) as idle:
        reply = json.loads(idle.recv(timeout=30))  # nothing sent: the server speaks first
        assert reply["type"] == "error" and "no reset within 1 s" in reply["data"]["message"], reply
        with pytest.raises(ConnectionClosed):
            idle.recv(timeout=30)
        with contextlib.ExitStack() as stack:
            hold(stack, url, POLITE, 2)  # both slots are free again


def test_the_server_wide_capacity_error_says_when_to_retry() -> None:
    env = {"MAX_CONCURRENT_ENVS": "1", "UNRESET_SESSION_GRACE_S": "600", "FULL_SERVER_IDLE_S": "1000"}
    with running_server(extra_env=env) as url, open_session(url, POLITE) as first:
        with open_session(url, GREEDY) as second:
            refused = refusal(second)  # the first session has not reset yet: it can be reaped in ~600 s
        assert refused is not None and refused["data"]["code"] == "CAPACITY_REACHED", refused
        assert 500 <= refused["data"]["retry_after_s"] <= 601
        assert f"Retry in about {refused['data']['retry_after_s']} s." in refused["data"]["message"]
        reset(first)


def test_memory_stays_flat_while_a_client_opens_and_drops_connections(capped_server: str) -> None:
    url = capped_server
    pid = server_pid(url)

    def churn(cycles: int) -> None:
        for cycle in range(cycles):
            with open_session(url, GREEDY) as ws:  # half dropped before any reset, half mid-episode
                if cycle % 2:
                    reset(ws, seed=cycle)

    churn(WARM_UP_CYCLES)
    before = rss_kb(pid)
    churn(CYCLES)
    after = rss_kb(pid)
    assert after - before < RSS_SLACK_KB, (before, after)
    with contextlib.ExitStack() as stack:  # every dropped session gave its place back
        hold(stack, url, GREEDY, PER_CLIENT)


# --- one cap over every transport: /ws, the WebSocket /mcp, and HTTP sessions (openenv/session/create) ----------


def mcp_refusal(ws: ClientConnection) -> dict[str, Any] | None:
    """List the tools once over /mcp: the JSON-RPC error if the server refused the session, else None."""
    with contextlib.suppress(ConnectionClosed):
        ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
    reply = json.loads(ws.recv(timeout=60))
    return reply.get("error") if "result" not in reply else None


def assert_capacity_error(error: dict[str, Any] | str, max_sessions: int) -> int:
    """A refusal's retry hint, after checking that the error says it (as a number and in its sentence)."""
    assert isinstance(error, dict), error
    data = error["data"]
    assert data["code"] == "CAPACITY_REACHED" and data["max_sessions"] == max_sessions, error
    retry_after_s = data["retry_after_s"]
    assert isinstance(retry_after_s, int) and retry_after_s >= 1
    assert f"retry in about {retry_after_s} s" in error["message"].lower(), error
    return retry_after_s


@pytest.fixture(scope="module")
def every_transport_server() -> Iterator[str]:
    env = {
        "MAX_CONCURRENT_ENVS": "8",
        "MAX_SESSIONS_PER_CLIENT": str(PER_CLIENT),
        "FORWARDED_ALLOW_IPS": POLITE,
        "UNRESET_SESSION_GRACE_S": "600",
    }
    with running_server(extra_env=env) as url:
        yield url


def test_sixty_four_http_sessions_cannot_fill_the_server(every_transport_server: str) -> None:
    """A lock-out attempt: one client POSTing openenv/session/create gets its cap, no more, and everyone else
    still gets sessions on every transport."""
    url = every_transport_server
    with http_client(GREEDY) as greedy, http_client(POLITE) as polite:
        answers = [create_http_session(greedy, url) for _ in range(64)]
        created = [answer for answer in answers if isinstance(answer, str)]
        assert len(created) == PER_CLIENT
        assert_capacity_error(answers[-1], PER_CLIENT)
        with open_session(url, POLITE) as ws:
            assert refusal(ws) is None
        with open_mcp_socket(url, POLITE) as ws:
            assert mcp_refusal(ws) is None
        own = create_http_session(polite, url)
        assert isinstance(own, str)
        for client, session_id in [*((greedy, created_id) for created_id in created), (polite, own)]:
            assert rpc(client, url, "openenv/session/close", session_id=session_id)["result"]["closed"] is True
        again = create_http_session(greedy, url)  # a closed session gives its place back at once
        assert isinstance(again, str)
        rpc(greedy, url, "openenv/session/close", session_id=again)


@pytest.mark.parametrize("held", [("http", "http", "http"), ("ws", "mcp", "http")])
def test_every_transport_counts_against_one_per_client_cap(every_transport_server: str, held: tuple[str, ...]) -> None:
    url = every_transport_server
    with contextlib.ExitStack() as stack, http_client(GREEDY) as greedy:
        opened: list[str] = []
        for transport in held:
            if transport == "http":
                session_id = create_http_session(greedy, url)
                assert isinstance(session_id, str), session_id
                opened.append(session_id)
            elif transport == "ws":
                hold(stack, url, GREEDY, 1)
            else:
                assert mcp_refusal(stack.enter_context(open_mcp_socket(url, GREEDY))) is None
        # The client is at its cap: a new session is refused on every transport, each with the retry hint.
        assert_capacity_error(create_http_session(greedy, url), PER_CLIENT)
        with open_session(url, GREEDY) as ws:
            refused = refusal(ws)
        assert refused is not None
        assert_capacity_error({"message": refused["data"]["message"], "data": refused["data"]}, PER_CLIENT)
        with open_mcp_socket(url, GREEDY) as ws:
            assert_capacity_error(mcp_refusal(ws) or {}, PER_CLIENT)
        for session_id in opened:
            rpc(greedy, url, "openenv/session/close", session_id=session_id)


def test_an_unused_http_session_is_closed_after_the_grace_and_the_retry_hint_is_true() -> None:
    """Sessions created over HTTP and never reset are closed like unreset /ws ones; the refusal's retry_after_s is
    long enough: after waiting exactly that long, the same request succeeds."""
    env = {"MAX_CONCURRENT_ENVS": "8", "MAX_SESSIONS_PER_CLIENT": "2", "UNRESET_SESSION_GRACE_S": "3"}
    with running_server(extra_env=env) as url, http_client(GREEDY) as greedy:
        first = [create_http_session(greedy, url) for _ in range(2)]
        retry_after_s = assert_capacity_error(create_http_session(greedy, url), 2)
        assert retry_after_s <= 4
        time.sleep(retry_after_s)  # what the hint tells a client to do
        assert isinstance(create_http_session(greedy, url), str)
        for session_id in first:  # both were closed for want of a reset
            error = rpc(greedy, url, "tools/call", name="get_annotations", session_id=session_id)["error"]
            assert "Unknown session_id" in error["message"]


def test_a_used_http_session_outlives_the_grace() -> None:
    """A reset on /ws?session_id=... makes an HTTP session used: it stays after the grace and plays on."""
    env = {"MAX_CONCURRENT_ENVS": "8", "UNRESET_SESSION_GRACE_S": "2"}
    with running_server(extra_env=env) as url, http_client(POLITE) as polite:
        session_id = create_http_session(polite, url)
        with connect(f"{ws_url(url)}?session_id={session_id}", open_timeout=30) as attached:
            reset(attached, seed=7)
        unused = create_http_session(polite, url)
        deadline = time.monotonic() + RELEASE_WAIT_S
        while "result" in rpc(polite, url, "tools/call", name="get_annotations", session_id=unused):
            assert time.monotonic() < deadline, "the unused session was never closed"
            time.sleep(0.2)
        result = rpc(polite, url, "tools/call", name="get_annotations", session_id=session_id)["result"]
        assert result["is_error"] is False, result


def test_the_server_wide_retry_hint_counts_http_sessions_and_is_true() -> None:
    """HTTP sessions of two clients fill the server: a WebSocket client is told when to retry (not "about 1 s"),
    and after waiting that long it is served, on /ws and on /mcp."""
    env = {"MAX_CONCURRENT_ENVS": "2", "UNRESET_SESSION_GRACE_S": "4"}
    with running_server(extra_env=env) as url, http_client(GREEDY) as greedy, http_client("127.0.0.3") as other:
        for client in (greedy, other):
            assert isinstance(create_http_session(client, url), str)
        with open_session(url, POLITE) as ws:
            refused = refusal(ws)
        assert refused is not None and refused["data"]["code"] == "CAPACITY_REACHED", refused
        retry_after_s = refused["data"]["retry_after_s"]
        assert 3 <= retry_after_s <= 5 and f"Retry in about {retry_after_s} s." in refused["data"]["message"]
        with open_mcp_socket(url, POLITE) as ws:
            assert mcp_refusal(ws)["data"]["retry_after_s"] in (retry_after_s - 1, retry_after_s)
        time.sleep(retry_after_s)
        with open_session(url, POLITE) as ws, open_mcp_socket(url, POLITE) as mcp:
            assert refusal(ws) is None and mcp_refusal(mcp) is None


def test_an_idle_session_is_closed_with_a_message_when_the_per_client_hint_says() -> None:
    """A reset session silent for SESSION_TIMEOUT_S is closed (socket included) with a message saying why, and a
    client refused meanwhile is served after waiting retry_after_s."""
    env = {"MAX_CONCURRENT_ENVS": "8", "MAX_SESSIONS_PER_CLIENT": "1", "SESSION_TIMEOUT_S": "3"}
    with running_server(extra_env=env) as url, open_session(url, GREEDY) as idle:
        reset(idle)
        with open_session(url, GREEDY) as extra:
            refused = refusal(extra)
        assert refused is not None
        retry_after_s = refused["data"]["retry_after_s"]
        assert retry_after_s <= 4
        time.sleep(retry_after_s)
        with open_session(url, GREEDY) as served:
            assert refusal(served) is None
        notice = json.loads(idle.recv(timeout=30))
        assert notice["type"] == "error" and "no message for 3 s" in notice["data"]["message"], notice
        with pytest.raises(ConnectionClosed):
            idle.recv(timeout=30)


@pytest.mark.parametrize("query", ["?session_id={id}&session_id=", "?session_id=&session_id=", "?session_id="])
def test_a_query_string_cannot_pass_a_new_session_off_as_an_attachment(every_transport_server: str, query: str) -> None:
    """`/ws?session_id=<id>` attaches to an HTTP session and creates none; a query that OpenEnv reads as no session
    (its last session_id is blank) creates one, so it counts like any new session."""
    url = every_transport_server
    with contextlib.ExitStack() as stack, http_client(GREEDY) as greedy:
        opened = [create_http_session(greedy, url) for _ in range(PER_CLIENT)]
        assert all(isinstance(session_id, str) for session_id in opened), opened
        port = int(url.rsplit(":", 1)[1])
        sock = socket.create_connection(("127.0.0.1", port), timeout=30, source_address=(GREEDY, 0))
        target = ws_url(url) + query.format(id=opened[0])
        refused = refusal(stack.enter_context(connect(target, sock=sock, open_timeout=30)))
        assert refused is not None and refused["data"]["code"] == "CAPACITY_REACHED", refused
        for session_id in opened:
            rpc(greedy, url, "openenv/session/close", session_id=session_id)


def test_a_quick_clients_statement_that_turns_slow_on_the_kept_worker_is_demoted() -> None:
    """One quick statement buys no fast lane: a client known to be quick takes the worker kept for quick clients,
    and once its statement has held it QUICK_S while other clients' slow statements hold every other worker, its
    turn is demoted (its holder stops the statement and asks again, as the slow client it now is)."""
    from metric_tracker_rl.sql.fair_gate import QUICK_S, SLOW_MEMORY_S, FairGate

    async def scenario() -> tuple[bool, bool, bool]:
        gate = FairGate(slots=3, per_client=2)
        async with gate.turn("fresh"):  # one quick statement: known quick
            pass
        release = asyncio.Event()

        async def hold(client: str) -> None:
            async with gate.turn(client):
                await release.wait()

        holders = [asyncio.ensure_future(hold(client)) for client in ("slow-a", "slow-b")]
        await asyncio.sleep(QUICK_S + 0.05)  # both now slow
        async with gate.turn("fresh") as on_reserve:
            await asyncio.wait_for(on_reserve.demoted.wait(), QUICK_S * 40)
            demoted = on_reserve.demoted.is_set()
        slow_now = gate.slow("fresh")
        release.set()
        await asyncio.gather(*holders)
        async with gate.turn("alone") as alone:  # nobody slow beside it: no demotion, however long it runs
            await asyncio.sleep(QUICK_S + 0.1)
        return demoted, slow_now and gate.slow_until["fresh"] <= gate.clock() + SLOW_MEMORY_S, alone.demoted.is_set()

    demoted, slow_after, alone_demoted = asyncio.run(scenario())
    assert demoted and slow_after and not alone_demoted
