"""On a server that never-seen addresses fill, one session each, a client the server served before them still gets
a place at once, from the newest of them, against a live server; a newer address takes nothing at once from an
older one. Clients are told apart by their loopback source address."""

from __future__ import annotations

import contextlib
import json

import pytest
from conftest import running_server
from session_helpers import hold, open_session, refusal
from websockets.exceptions import ConnectionClosed

pytestmark = pytest.mark.slow  # starts a server process

CAPACITY = 4
KNOWN = "127.0.6.1"
STRANGERS = [f"127.0.6.{host}" for host in range(10, 10 + CAPACITY - 1)]


def closing_notice(ws: object) -> str:
    with contextlib.suppress(ConnectionClosed, TimeoutError):
        return json.loads(ws.recv(timeout=10))["data"]["message"]  # type: ignore[attr-defined]
    return "closed without a word"


def test_a_known_client_takes_the_newest_strangers_place_and_a_newer_one_takes_none() -> None:
    env = {"MAX_CONCURRENT_ENVS": str(CAPACITY), "MAX_SESSIONS_PER_CLIENT": "4", "FULL_SERVER_IDLE_S": "60"}
    with running_server(extra_env=env) as url, contextlib.ExitStack() as stack:
        hold(stack, url, KNOWN, 1)
        strangers = [hold(stack, url, address, 1)[0] for address in STRANGERS]  # the server is full
        latecomer = refusal(stack.enter_context(open_session(url, "127.0.6.99")))
        second = refusal(stack.enter_context(open_session(url, KNOWN)))
        newest = closing_notice(strangers[-1])
    assert latecomer is not None and latecomer["data"]["code"] == "CAPACITY_REACHED", latecomer
    assert second is None  # served at once, beside the session it holds
    assert "or was the newest" in newest, newest
