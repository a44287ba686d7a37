"""Shared by the tests that hold sessions on a real server: sockets and HTTP clients from a chosen loopback address
(another address is another client), resets, refusals, and the server process's memory."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import time
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect


def ws_url(url: str) -> str:
    return url.replace("http", "ws", 1) + "/ws"


def reset(ws: ClientConnection, seed: int = 0) -> dict:
    ws.send(json.dumps({"type": "reset", "data": {"seed": seed, "difficulty": "hard"}}))
    reply = json.loads(ws.recv(timeout=60))
    assert reply["type"] == "observation" and reply["data"]["observation"]["status"] == "ready", reply
    return reply


def server_pid(url: str) -> int:
    """The process serving `url` (one worker: uvicorn serves in the process it was started as)."""
    port = url.rsplit(":", 1)[1].encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        if b"server.app" in argv and b"--port" in argv and argv[argv.index(b"--port") + 1] == port:
            return int(entry)
    raise LookupError(f"no server process on port {port!r}")


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as handle:
        return int(re.search(r"VmRSS:\s+(\d+)", handle.read()).group(1))


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


def http_client(source: str) -> httpx.Client:
    """An HTTP client whose connections leave from the loopback address `source`."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=60)


def rpc(client: httpx.Client, url: str, method: str, **params: Any) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, **({"params": params} if params else {})}
    response = client.post(f"{url}/mcp", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def create_http_session(client: httpx.Client, url: str) -> str | dict[str, Any]:
    """A new HTTP session's id, or the JSON-RPC error that refused it."""
    reply = rpc(client, url, "openenv/session/create")
    return reply["result"]["session_id"] if "result" in reply else reply["error"]


def open_mcp_socket(url: str, source: str) -> ClientConnection:
    port = int(url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=30, source_address=(source, 0))
    return connect(url.replace("http", "ws", 1) + "/mcp", sock=sock, open_timeout=30)


MIB = 1024 * 1024


def ws_from(url: str, source: str = "127.0.0.1", path: str = "/ws") -> ClientConnection:
    port = int(url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=60, source_address=(source, 0))
    return connect(url.replace("http", "ws", 1) + path, sock=sock, open_timeout=60, max_size=16 * MIB)


def http_from(url: str, source: str = "127.0.0.1") -> httpx.Client:
    return httpx.Client(base_url=url, timeout=120, transport=httpx.HTTPTransport(local_address=source))


def ask(ws: ClientConnection, message: dict[str, Any] | str | bytes) -> dict[str, Any]:
    ws.send(json.dumps(message) if isinstance(message, dict) else message)
    return json.loads(ws.recv(timeout=120))


def observation(reply: dict[str, Any]) -> dict[str, Any]:
    assert reply["type"] == "observation", reply
    return reply["data"]["observation"]


def inherited_environment() -> dict[str, str]:
    """This process's environment less what would point a server started from it at another port or URL."""
    return {key: value for key, value in os.environ.items() if key not in ("PORT", "METRIC_TRACKER_SELF_URL")}
