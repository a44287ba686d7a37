"""An HTTP session belongs to the address that created it: its id, named from another address, gets the answer an
unknown id gets (a tool call, a close, a /ws attachment), so a leaked id is no bearer token; from its own address
it works as before. Against a live server, two clients told apart by their loopback source address."""

from __future__ import annotations

import contextlib
import json
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import running_server
from test_fair_sessions import create_http_session, http_client, rpc
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

pytestmark = pytest.mark.slow  # starts a server process

OWNER, STRANGER = "127.0.0.21", "127.0.0.22"


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with running_server(extra_env={"UNRESET_SESSION_GRACE_S": "600"}) as served:
        yield served


def without(text: str, session_id: str) -> str:
    return text.replace(session_id, "<id>")


def attach(url: str, source: str, session_id: str) -> tuple[list[str], int | None]:
    """What `/ws?session_id=<id>` from `source` answers to a reset: the frames received and the close code."""
    port = int(url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=30, source_address=(source, 0))
    frames: list[str] = []
    with connect(f"ws://127.0.0.1:{port}/ws?session_id={session_id}", sock=sock, open_timeout=30) as ws:
        with contextlib.suppress(ConnectionClosed):  # refused: the error and the close may come first
            ws.send(json.dumps({"type": "reset", "data": {"seed": 3, "difficulty": "easy"}}))
        try:
            while True:
                frames.append(str(ws.recv(timeout=30)))
                if json.loads(frames[-1])["type"] == "observation":
                    return frames, None
        except ConnectionClosed as closed:
            return frames, closed.rcvd.code if closed.rcvd is not None else None


def tool_call(client: Any, url: str, session_id: str) -> dict[str, Any]:
    return rpc(client, url, "tools/call", name="get_annotations", arguments={}, session_id=session_id)


def test_a_tool_call_from_another_address_is_answered_as_for_an_unknown_id(url: str) -> None:
    with http_client(OWNER) as owner, http_client(STRANGER) as stranger:
        session_id = create_http_session(owner, url)
        assert isinstance(session_id, str), session_id
        unknown = str(uuid.uuid4())
        foreign = tool_call(stranger, url, session_id)
        assert without(json.dumps(foreign), session_id) == without(json.dumps(tool_call(stranger, url, unknown)),
                                                                   unknown)
        assert "error" in foreign
        assert "error" not in tool_call(owner, url, session_id)  # its own address still uses it
        rpc(owner, url, "openenv/session/close", session_id=session_id)


def test_a_close_from_another_address_closes_nothing(url: str) -> None:
    with http_client(OWNER) as owner, http_client(STRANGER) as stranger:
        session_id = create_http_session(owner, url)
        assert isinstance(session_id, str), session_id
        unknown = str(uuid.uuid4())
        refused = rpc(stranger, url, "openenv/session/close", session_id=session_id)
        assert without(json.dumps(refused), session_id) == without(
            json.dumps(rpc(stranger, url, "openenv/session/close", session_id=unknown)), unknown)
        assert "error" not in tool_call(owner, url, session_id)  # still open
        assert rpc(owner, url, "openenv/session/close", session_id=session_id)["result"]["closed"] is True


def test_a_socket_from_another_address_cannot_attach_to_the_session(url: str) -> None:
    with http_client(OWNER) as owner:
        session_id = create_http_session(owner, url)
        assert isinstance(session_id, str), session_id
        unknown = str(uuid.uuid4())
        foreign = attach(url, STRANGER, session_id)
        assert [without(frame, session_id) for frame in foreign[0]] == [
            without(frame, unknown) for frame in attach(url, STRANGER, unknown)[0]]
        assert foreign[1] == attach(url, STRANGER, unknown)[1]
        assert json.loads(foreign[0][0])["type"] == "error"
        frames, code = attach(url, OWNER, session_id)  # its own address attaches and resets
        assert json.loads(frames[-1])["type"] == "observation" and code is None
        rpc(owner, url, "openenv/session/close", session_id=session_id)
