"""The server's wiring keeps a session to the client that created it, in process and in the edit loop: the real app
(every middleware the server stacks), driven by clients at two addresses. Another client naming the session, on
`/ws?session_id=`, in a `POST /mcp` request or in a socket's frame, gets the answer an unknown id gets and reaches
nothing of it; its own client goes on. (tests/test_session_binding.py checks the same against a live server, byte
for byte and behind a proxy.)"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from metric_tracker_rl.serving.app import build_app
from metric_tracker_rl.settings import ServerSettings

OWNER, STRANGER = "192.0.2.10", "192.0.2.20"  # documentation addresses: no trusted proxy among them
CLOSE = "openenv/session/close"
UNKNOWN = "Unknown session_id"


@pytest.fixture(scope="module")
def clients() -> Iterator[tuple[TestClient, TestClient]]:
    """(owner, stranger): one app, one event loop, two client addresses."""
    app = build_app(settings=ServerSettings.load(enable_web_interface=False, unreset_session_grace_s=600))
    with TestClient(app, client=(OWNER, 40000)) as owner:
        stranger = TestClient(app, client=(STRANGER, 40001))
        stranger.portal = owner.portal  # the stranger's requests run on the owner's loop, where the sessions live
        yield owner, stranger


def rpc(client: TestClient, method: str, **params: Any) -> dict[str, Any]:
    reply = client.post("/mcp", json={"jsonrpc": "2.0", "id": 7, "method": method, "params": params})
    assert reply.status_code == 200, reply.text
    return reply.json()


def error_text(reply: dict[str, Any]) -> str:
    return json.dumps(reply.get("error"))


@pytest.fixture
def owned(clients: tuple[TestClient, TestClient]) -> Iterator[str]:
    """An HTTP session the owner created (closed after the test)."""
    owner, _ = clients
    session_id = rpc(owner, "openenv/session/create")["result"]["session_id"]
    yield session_id
    rpc(owner, CLOSE, session_id=session_id)


def tool_call(client: TestClient, session_id: str) -> dict[str, Any]:
    return rpc(client, "tools/call", name="get_annotations", arguments={}, session_id=session_id)


def attach_and_reset(client: TestClient, session_id: str) -> list[dict[str, Any]]:
    """The frames `/ws?session_id=<id>` answers to a reset, up to an observation or the socket's close."""
    frames: list[dict[str, Any]] = []
    with client.websocket_connect(f"/ws?session_id={session_id}") as ws:
        ws.send_text(json.dumps({"type": "reset", "data": {"seed": 3, "difficulty": "easy"}}))
        try:
            while not frames or frames[-1]["type"] not in ("observation", "error"):
                frames.append(ws.receive_json())
        except WebSocketDisconnect:
            pass
    return frames


def test_a_socket_from_another_client_cannot_attach_to_the_session(
    clients: tuple[TestClient, TestClient], owned: str
) -> None:
    owner, stranger = clients
    foreign = attach_and_reset(stranger, owned)
    assert foreign and foreign[0]["type"] == "error" and UNKNOWN in json.dumps(foreign[0]), foreign
    assert json.dumps(foreign).replace(owned, "<id>") == json.dumps(attach_and_reset(stranger, "x" * 36)).replace(
        "x" * 36, "<id>"
    )
    assert attach_and_reset(owner, owned)[-1]["type"] == "observation"  # its own client attaches and resets


def test_a_tool_call_or_close_from_another_client_reaches_nothing(
    clients: tuple[TestClient, TestClient], owned: str
) -> None:
    owner, stranger = clients
    unknown = str(uuid.uuid4())
    for method, params in (("tools/call", {"name": "get_annotations", "arguments": {}}), (CLOSE, {})):
        foreign = rpc(stranger, method, session_id=owned, **params)
        assert UNKNOWN in error_text(foreign), foreign
        assert error_text(foreign).replace(owned, "<id>") == error_text(
            rpc(stranger, method, session_id=unknown, **params)
        ).replace(unknown, "<id>")
    assert tool_call(owner, owned).get("error") is None  # still open, and still the owner's


@pytest.mark.parametrize("transport", ["ws", "mcp"])
def test_a_close_in_another_client_s_socket_frame_closes_nothing(
    clients: tuple[TestClient, TestClient], owned: str, transport: str
) -> None:
    owner, stranger = clients
    request = {"jsonrpc": "2.0", "id": 3, "method": CLOSE, "params": {"session_id": owned}}
    with stranger.websocket_connect(f"/{transport}") as ws:
        ws.send_text(json.dumps({"type": "mcp", "data": request} if transport == "ws" else request))
        reply = ws.receive_json()
    assert UNKNOWN in json.dumps(reply), reply
    assert tool_call(owner, owned).get("error") is None  # still open
