"""On a server that never-seen addresses fill, one session each, a client the server served before them still gets
a place at once, from the newest of them, against a live server, however many places it holds; a newer address
takes no place of an older one's, the addresses newer than a client counting as one client against it. Clients
are told apart by their loopback source address."""

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


def closing_notice(ws: object, timeout_s: float = 10) -> str:
    """What the server told the socket within `timeout_s`."""
    try:
        return json.loads(ws.recv(timeout=timeout_s))["data"]["message"]  # type: ignore[attr-defined]
    except TimeoutError:
        return "open, told nothing"
    except ConnectionClosed:
        return "closed without a word"


def test_a_known_client_takes_the_newest_strangers_place_and_a_newer_one_takes_none() -> None:
    env = {"MAX_CONCURRENT_ENVS": str(CAPACITY), "MAX_SESSIONS_PER_CLIENT": "4", "FULL_SERVER_IDLE_S": "60"}
    with running_server(extra_env=env) as url, contextlib.ExitStack() as stack:
        hold(stack, url, KNOWN, 1)
        strangers = [hold(stack, url, address, 1)[0] for address in STRANGERS]  # the server is full
        latecomer = refusal(stack.enter_context(open_session(url, "127.0.6.99")))
        second = refusal(stack.enter_context(open_session(url, KNOWN)))
        notices = [closing_notice(ws, timeout_s=2) for ws in strangers]
    assert latecomer is not None and latecomer["data"]["code"] == "CAPACITY_REACHED", latecomer
    assert second is None  # served at once, beside the session it holds
    # The newest stranger's place is being made for the latecomer (within FULL_SERVER_IDLE_S): the next newest's.
    assert "or was the newest" in notices[-2] and notices[-1] == "open, told nothing", notices


def test_fresh_addresses_take_no_place_of_a_known_client_holding_several_and_it_takes_theirs() -> None:
    """A known client holds two sessions; fresh addresses fill the rest, one each. Another fresh address asking
    for a place is refused, and the place made for it is a fresh address's (a client holding two places more than
    the asking one used to lose one at once, and then be refused new places while the server stayed full); the
    known client's third session is served at once, and its own two are never closed."""
    env = {"MAX_CONCURRENT_ENVS": str(CAPACITY + 1), "MAX_SESSIONS_PER_CLIENT": "4", "FULL_SERVER_IDLE_S": "60"}
    with running_server(extra_env=env) as url, contextlib.ExitStack() as stack:
        mine = hold(stack, url, KNOWN, 2)
        for address in STRANGERS:
            hold(stack, url, address, 1)  # the server is full
        latecomer = refusal(stack.enter_context(open_session(url, "127.0.6.99")))
        third = refusal(stack.enter_context(open_session(url, KNOWN)))
        notices = [closing_notice(ws, timeout_s=2) for ws in mine]
    assert latecomer is not None and latecomer["data"]["code"] == "CAPACITY_REACHED", latecomer
    assert "retry" in latecomer["data"]["message"].lower(), latecomer
    assert third is None, third
    assert notices == ["open, told nothing"] * 2, notices
