"""HTTP at its edges: a request whose client half-closes (it sent everything and waits) is answered, while one
that hangs up still ends its work within HALF_CLOSE_GRACE_S; a body declared past the limit is refused at once."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import Any

import httpx
import pytest

from metric_tracker_rl.serving.half_close import HALF_CLOSE_GRACE_S
from metric_tracker_rl.serving.hardening import BoundedRequestBodies
from metric_tracker_rl.serving.local_server import local_server


@pytest.mark.parametrize("declared", [10**7, 10**18, 10**20, 10**400])
def test_a_body_declared_past_the_limit_is_refused_before_it_is_awaited(declared: int) -> None:
    """A request that declares more than MAX_MESSAGE_BYTES and sends one byte is answered 413 at once (it used to
    hold its connection for the body's 30 s deadline)."""
    sent: list[dict[str, Any]] = []

    async def scenario() -> float:
        async def receive() -> dict[str, Any]:
            await asyncio.sleep(3600)  # the rest of the body never comes
            return {}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        async def app(scope: Any, receive: Any, send: Any) -> None:
            raise AssertionError("the app reads no body past the limit")

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/mcp",
            "client": ("127.0.77.1", 4000),
            "headers": [(b"content-length", str(declared).encode())],
        }
        began = time.monotonic()
        await asyncio.wait_for(BoundedRequestBodies(app)(scope, receive, send), 5)
        return time.monotonic() - began

    took_s = asyncio.run(scenario())
    assert took_s < 1.0 and sent[0]["status"] == 413


def _raw_post(port: int, body: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            b"POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        sock.shutdown(socket.SHUT_WR)  # everything is sent: the answer is awaited
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


@pytest.mark.slow
def test_a_tool_call_sent_with_a_half_close_is_answered() -> None:
    with local_server(in_process=True) as url, httpx.Client(base_url=url, timeout=60) as client:
        created = client.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "openenv/session/create"}).json()
        session_id = created["result"]["session_id"]
        reset = {"name": "reset", "arguments": {"difficulty": "easy"}, "session_id": session_id}
        client.post("/mcp", json={"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": reset})
        query = {"name": "query", "arguments": {"sql": "SELECT 1 AS one"}, "session_id": session_id}
        call = json.dumps({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": query}).encode()
        began = time.monotonic()
        answer = _raw_post(int(url.rsplit(":", 1)[1]), call)
    assert answer.startswith(b"HTTP/1.1 200") and b'"id":3' in answer.replace(b" ", b"")
    assert time.monotonic() - began < HALF_CLOSE_GRACE_S
