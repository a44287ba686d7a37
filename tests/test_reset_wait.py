"""A reset that cannot start its build within the step bound says so and leaves the queue, over a real server on
loopback: its session's episode goes on, and every build asked before it is answered, built or refused so."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from sql_helpers import server_process, ws_ask, ws_session
from websockets.sync.client import ClientConnection

pytestmark = pytest.mark.slow  # a server, audit builds for seconds

CLIENT = "127.0.5.1"
QUEUED = 5  # audit builds asked before the waiting reset: far more than the bound's worth


def answered(ws: ClientConnection, found: list[bool], lock: threading.Lock) -> None:
    """Whether the reset `ws` sent was built, or refused for its wait."""
    seen = json.loads(ws.recv(timeout=120))["data"]["observation"]
    with lock:
        found.append(seen["status"] == "ready" or "did not start" in seen["message"])


def reset_behind_builds(url: str, waiting: ClientConnection) -> tuple[dict[str, Any], list[bool]]:
    """QUEUED audit resets of `waiting`'s client on sessions of their own, then `waiting`'s: its answer, and
    whether each of the others was answered as it should be."""
    sessions = [ws_session(url, CLIENT) for _ in range(QUEUED)]
    found: list[bool] = []
    lock = threading.Lock()
    for index, ws in enumerate(sessions):
        ws.send(json.dumps({"type": "reset", "data": {"difficulty": "audit", "seed": 940_000 + index}}))
    readers = [threading.Thread(target=answered, args=(ws, found, lock)) for ws in sessions]
    for reader in readers:
        reader.start()
    reply = ws_ask(waiting, {"type": "reset", "data": {"difficulty": "audit", "seed": 940_100}})
    for reader, ws in zip(readers, sessions, strict=True):
        reader.join()
        ws.close()
    return reply["data"]["observation"], found


def test_a_reset_that_waits_past_the_bound_is_answered_and_the_episode_goes_on() -> None:
    with (
        server_process({"STEP_TIMEOUT_S": "1", "MAX_SESSIONS_PER_CLIENT": "8"}) as (url, _),
        ws_session(url, CLIENT) as waiting,
    ):
        assert ws_ask(waiting, {"type": "reset", "data": {"task_id": "easy_two_spikes"}})["type"] == "observation"
        episode = ws_ask(waiting, {"type": "state"})["data"]["episode_id"]
        seen, others = reset_behind_builds(url, waiting)
        state = ws_ask(waiting, {"type": "state"})["data"]
    assert seen["status"] == "error" and "did not start" in seen["message"], seen["message"]
    assert "current episode is unchanged" in seen["message"]
    assert episode is not None and state["episode_id"] == episode  # the easy episode goes on
    assert others == [True] * QUEUED  # each build asked before it: built, or refused with the reason
