"""A session belongs to the client that created it: its id (an HTTP session's, or the one a socket's session is told
when it asks), named by another client, gets byte for byte the answer an unknown id gets (a tool call, a close over
HTTP or in a socket's frame, a /ws attachment), so a leaked id is no bearer token and no answer tells that it
exists; from its own client it works as before. A client is what
the session cap counts: the source address, or the forwarded one behind a trusted proxy (loopback is one). Against
a live server, clients told apart by their loopback source address."""

from __future__ import annotations

import contextlib
import json
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import running_server
from session_helpers import create_http_session, http_client, open_mcp_socket, open_session, rpc
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

pytestmark = pytest.mark.slow  # starts a server process

OWNER, STRANGER = "127.0.0.21", "127.0.0.22"
CLOSE = "openenv/session/close"


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with running_server(extra_env={"UNRESET_SESSION_GRACE_S": "600"}) as served:
        yield served


@pytest.fixture
def owned(url: str) -> Iterator[tuple[str, str]]:
    """An HTTP session OWNER created: (its id, a never-issued id to compare with); closed after the test."""
    with http_client(OWNER) as owner:
        session_id = create_http_session(owner, url)
        assert isinstance(session_id, str), session_id
        yield session_id, str(uuid.uuid4())
        rpc(owner, url, CLOSE, session_id=session_id)


def without(text: str | bytes, session_id: str) -> str:
    return (text.decode() if isinstance(text, bytes) else text).replace(session_id, "<id>")


def raw_rpc(
    client: httpx.Client, url: str, method: str, headers: dict[str, str] | None = None, **params: Any
) -> tuple[int, str, str]:
    """A JSON-RPC request's status, Content-Length and body as sent, byte for byte."""
    response = client.post(
        f"{url}/mcp", json={"jsonrpc": "2.0", "id": 7, "method": method, "params": params}, headers=headers
    )
    return response.status_code, response.headers["content-length"], response.content.decode()


def tool_call(
    client: httpx.Client, url: str, session_id: str, headers: dict[str, str] | None = None
) -> tuple[int, str, str]:
    return raw_rpc(client, url, "tools/call", headers, name="get_annotations", arguments={}, session_id=session_id)


def is_error(answer: tuple[int, str, str]) -> bool:
    return "error" in json.loads(answer[2]) and json.loads(answer[2])["error"] is not None


def assert_answered_as_unknown(
    foreign: tuple[int, str, str], unknown: tuple[int, str, str], session_id: str, unknown_id: str
) -> None:
    assert (foreign[0], foreign[1], without(foreign[2], session_id)) == (
        unknown[0],
        unknown[1],
        without(unknown[2], unknown_id),
    )
    assert "Unknown session_id" in foreign[2], foreign


def test_a_tool_call_from_another_address_is_answered_as_for_an_unknown_id(url: str, owned: tuple[str, str]) -> None:
    session_id, unknown = owned
    with http_client(OWNER) as owner, http_client(STRANGER) as stranger:
        assert_answered_as_unknown(
            tool_call(stranger, url, session_id), tool_call(stranger, url, unknown), session_id, unknown
        )
        assert not is_error(tool_call(owner, url, session_id))  # its own address still uses it


def test_a_close_from_another_address_closes_nothing(url: str, owned: tuple[str, str]) -> None:
    session_id, unknown = owned
    with http_client(OWNER) as owner, http_client(STRANGER) as stranger:
        assert_answered_as_unknown(
            raw_rpc(stranger, url, CLOSE, session_id=session_id),
            raw_rpc(stranger, url, CLOSE, session_id=unknown),
            session_id,
            unknown,
        )
        assert not is_error(tool_call(owner, url, session_id))  # still open


def socket_close(url: str, transport: str, session_id: str) -> str:
    """The reply to `openenv/session/close` naming `session_id`, sent from STRANGER's own socket."""
    request = {"jsonrpc": "2.0", "id": 3, "method": CLOSE, "params": {"session_id": session_id}}
    opened = open_session(url, STRANGER) if transport == "ws" else open_mcp_socket(url, STRANGER)
    with opened as ws:
        ws.send(json.dumps({"type": "mcp", "data": request} if transport == "ws" else request))
        return str(ws.recv(timeout=30))


@pytest.mark.parametrize("transport", ["ws", "mcp"])
def test_a_close_in_another_address_s_socket_frame_closes_nothing(
    url: str, owned: tuple[str, str], transport: str
) -> None:
    session_id, unknown = owned
    foreign = socket_close(url, transport, session_id)
    assert without(foreign, session_id) == without(socket_close(url, transport, unknown), unknown)
    assert "Unknown session_id" in foreign, foreign
    with http_client(OWNER) as owner:
        assert not is_error(tool_call(owner, url, session_id))  # still open


@pytest.mark.parametrize("request_id", [5, "r" * 600])
@pytest.mark.parametrize("transport", ["ws", "mcp"])
def test_a_socket_session_s_own_id_is_no_token_for_another_address(
    url: str, transport: str, request_id: int | str
) -> None:
    """A socket's session has an id once its client asks (`openenv/session/create` on the socket): from another
    address that id is unknown over HTTP, to a tool listing and to a close; from its own, it names the session.
    The owner is recorded whatever the request's JSON-RPC id (one of 600 characters once left it unrecorded)."""
    request = {"jsonrpc": "2.0", "id": request_id, "method": "openenv/session/create"}
    opened = open_session(url, OWNER) if transport == "ws" else open_mcp_socket(url, OWNER)
    with opened as ws, http_client(OWNER) as owner, http_client(STRANGER) as stranger:
        ws.send(json.dumps({"type": "mcp", "data": request} if transport == "ws" else request))
        reply = json.loads(ws.recv(timeout=30))
        session_id = (reply["data"] if transport == "ws" else reply)["result"]["session_id"]
        unknown = str(uuid.uuid4())
        for method in ("tools/list", CLOSE):
            assert_answered_as_unknown(
                raw_rpc(stranger, url, method, session_id=session_id),
                raw_rpc(stranger, url, method, session_id=unknown),
                session_id,
                unknown,
            )
        assert not is_error(raw_rpc(owner, url, "tools/list", session_id=session_id))
        listing = {"jsonrpc": "2.0", "id": 6, "method": "tools/list"}
        ws.send(json.dumps({"type": "mcp", "data": listing} if transport == "ws" else listing))
        listed = json.loads(ws.recv(timeout=30))
        assert (listed["data"] if transport == "ws" else listed)["result"]["tools"]  # the socket's session goes on


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


def test_a_socket_from_another_address_cannot_attach_to_the_session(url: str, owned: tuple[str, str]) -> None:
    session_id, unknown = owned
    foreign_frames, foreign_code = attach(url, STRANGER, session_id)
    unknown_frames, unknown_code = attach(url, STRANGER, unknown)
    assert [without(frame, session_id) for frame in foreign_frames] == [
        without(frame, unknown) for frame in unknown_frames
    ]
    assert foreign_code == unknown_code
    assert json.loads(foreign_frames[0])["type"] == "error" and "Unknown session_id" in foreign_frames[0]
    frames, code = attach(url, OWNER, session_id)  # its own address attaches and resets
    assert json.loads(frames[-1])["type"] == "observation" and code is None


def forwarded(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


@pytest.mark.parametrize(
    ("creator", "same_client", "other_client"),
    [
        ("203.0.113.7", "203.0.113.7", "203.0.113.8"),
        ("2001:db8:0:1::7", "2001:db8:0:1:ffff::9", "2001:db8:0:2::7"),  # an IPv6 client is its /64
    ],
)
def test_behind_a_trusted_proxy_the_session_belongs_to_the_forwarded_client(
    url: str, creator: str, same_client: str, other_client: str
) -> None:
    """Loopback is a trusted proxy: the client is the address it forwards, as the session cap counts it."""
    with http_client("127.0.0.1") as proxy:
        reply = json.loads(raw_rpc(proxy, url, "openenv/session/create", forwarded(creator))[2])
        session_id = reply["result"]["session_id"]
        unknown = str(uuid.uuid4())
        for stranger in (forwarded(other_client), None):  # another client, and the proxy itself
            assert_answered_as_unknown(
                tool_call(proxy, url, session_id, stranger),
                tool_call(proxy, url, unknown, stranger),
                session_id,
                unknown,
            )
        assert not is_error(tool_call(proxy, url, session_id, forwarded(same_client)))
        closed = json.loads(raw_rpc(proxy, url, CLOSE, forwarded(same_client), session_id=session_id)[2])
        assert closed["result"]["closed"] is True
