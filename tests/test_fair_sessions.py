"""One greedy client cannot lock others out: the per-client session cap, the reset grace period and the retry
hint, against a live server. Two clients are told apart by their loopback source address (127.0.0.1 and
127.0.0.2 are both this machine on Linux)."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator

import pytest
from conftest import running_server
from test_capacity import reset, rss_kb, server_pid, ws_url
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

pytestmark = pytest.mark.slow  # starts server processes

PER_CLIENT = 3
GREEDY, POLITE = "127.0.0.2", "127.0.0.1"
CYCLES = 200
WARM_UP_CYCLES = 20
RSS_SLACK_KB = 16 * 1024
RELEASE_WAIT_S = 30.0  # only bounds the polling


def open_session(url: str, source: str, headers: dict[str, str] | None = None) -> ClientConnection:
    """A WebSocket connection to `url` from the loopback address `source`."""
    port = int(url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=30, source_address=(source, 0))
    return connect(ws_url(url), sock=sock, open_timeout=30, additional_headers=headers)


def refusal(ws: ClientConnection) -> dict | None:
    """Reset once: the error reply if the server refused the session (and then closed it), else None."""
    with contextlib.suppress(ConnectionClosed):  # a refused session may be closed before this is sent
        ws.send(json.dumps({"type": "reset", "data": {}}))
    reply = json.loads(ws.recv(timeout=60))
    if reply["type"] != "error":
        return None
    with pytest.raises(ConnectionClosed):
        ws.recv(timeout=30)
    return reply


def hold(stack: contextlib.ExitStack, url: str, source: str, count: int) -> list[ClientConnection]:
    """Open and reset `count` sessions from `source`, waiting for sessions just closed to give their places
    back (the server releases a closed session asynchronously)."""
    held = []
    deadline = time.monotonic() + RELEASE_WAIT_S
    while len(held) < count:
        ws = stack.enter_context(open_session(url, source))
        if refusal(ws) is None:
            held.append(ws)
            continue
        assert time.monotonic() < deadline, f"only {len(held)} of {count} sessions could be opened"
        time.sleep(0.1)
    return held


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
            polite.send(json.dumps({"type": "step", "data": {"analysis_method": "show_raw_data",
                                                             "analysis_args": {"limit": 3}}}))
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
    env = {"MAX_CONCURRENT_ENVS": "1", "UNRESET_SESSION_GRACE_S": "600"}
    with running_server(extra_env=env) as url, open_session(url, POLITE) as first:
        with open_session(url, GREEDY) as second:
            refused = refusal(second)  # the first session has not reset yet: it can be reaped in ~600 s
        assert refused is not None and refused["data"]["code"] == "CAPACITY_REACHED", refused
        assert 500 <= refused["data"]["retry_after_s"] <= 600
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
