"""Session capacity, idle-session reaping and memory across many sessions, against live servers."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator

import pytest
from conftest import running_server
from reliability_support import record
from session_helpers import reset, rss_kb, server_pid, ws_url
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

pytestmark = pytest.mark.slow  # starts server processes or a browser

CYCLES = 300
WARM_UP_CYCLES = 30
# A session holding a hard episode costs about 0.3 MB, so 300 leaked sessions would add about 90 MB.
RSS_SLACK_KB = 32 * 1024
# OpenEnv's reaper wakes every max(timeout / 4, 5) s; this only bounds the polling, generously for a busy machine
REAP_WAIT_S = 90.0


def capacity_refusal(url: str) -> dict | None:
    """Connect and reset once: the error reply if the server refused the session, else None."""
    with connect(ws_url(url), open_timeout=30) as ws:
        with contextlib.suppress(ConnectionClosed):  # a refused session may be closed before this is sent
            ws.send(json.dumps({"type": "reset", "data": {}}))
        reply = json.loads(ws.recv(timeout=60))
        if reply["type"] == "error":
            with pytest.raises(ConnectionClosed):  # a refused session is closed by the server
                ws.recv(timeout=30)
            return reply
        return None


@pytest.fixture(scope="module")
def two_session_server() -> Iterator[str]:
    with running_server(extra_env={"MAX_CONCURRENT_ENVS": "2"}) as url:
        yield url


def test_a_connection_past_the_limit_gets_a_capacity_error(two_session_server: str) -> None:
    url = two_session_server
    with connect(ws_url(url)) as first, connect(ws_url(url)) as second:
        reset(first)
        reset(second)
        refusal = capacity_refusal(url)
        assert refusal is not None and refusal["data"]["code"] == "CAPACITY_REACHED"
        assert refusal["data"]["max_sessions"] == 2 and "capacity" in refusal["data"]["message"].lower()
        reset(first, seed=1)  # the open sessions are unaffected by the refusal
        reset(second, seed=2)
    deadline = time.monotonic() + REAP_WAIT_S
    while capacity_refusal(url) is not None:  # closing a session frees its slot (asynchronously)
        assert time.monotonic() < deadline, "closed sessions did not free their capacity"
        time.sleep(0.2)


def test_idle_sessions_are_reaped_and_free_their_capacity() -> None:
    """The server is full (a third session is refused) until its two idle sessions are reaped; then a new one is
    served."""
    timeout_s = 6
    with (
        running_server(extra_env={"MAX_CONCURRENT_ENVS": "2", "SESSION_TIMEOUT_S": str(timeout_s)}) as url,
        connect(ws_url(url)) as first,
        connect(ws_url(url)) as second,
    ):
        reset(first)
        reset(second)  # both now idle: nothing is sent on them any more
        idle_since = time.monotonic()
        deadline = idle_since + REAP_WAIT_S
        refusals = 0
        while (refusal := capacity_refusal(url)) is not None:
            assert refusal["data"]["code"] == "CAPACITY_REACHED"
            refusals += 1
            assert time.monotonic() < deadline, "idle sessions were not reaped"
            time.sleep(0.5)
        assert refusals >= 1, "the server never reported itself full: nothing here shows a reaping"
        assert time.monotonic() - idle_since >= timeout_s - 1  # freed by the reaping, not before it
        record("reaping", {"session_timeout_s": timeout_s, "refusals_before_reap": refusals})


def test_memory_does_not_grow_across_many_sessions(server_url: str) -> None:
    pid = server_pid(server_url)

    def cycle(seed: int) -> None:
        with connect(ws_url(server_url), max_size=None) as ws:
            reset(ws, seed)
            ws.send(
                json.dumps(
                    {
                        "type": "step",
                        "data": {
                            "analysis_method": "get_median_filter_rows",
                            "analysis_args": {"threshold_multiplier": 0.01},
                        },
                    }
                )
            )
            assert json.loads(ws.recv(timeout=60))["data"]["observation"]["status"] == "ok"

    for seed in range(WARM_UP_CYCLES):
        cycle(seed)
    before = rss_kb(pid)
    for seed in range(CYCLES):
        cycle(seed)
    after = rss_kb(pid)
    record(
        "memory",
        {
            "sessions": CYCLES,
            "rss_before_kb": before,
            "rss_after_kb": after,
            "growth_kb": after - before,
            "allowed_growth_kb": RSS_SLACK_KB,
        },
    )
    assert after - before < RSS_SLACK_KB
