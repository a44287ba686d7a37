"""One episode session on a metric_tracker_rl server, reached only over JSON-RPC MCP and the WebSocket reset.

OpenEnv's session lifecycle for HTTP MCP: `openenv/session/create` on POST /mcp, `reset` on
`/ws?session_id=<id>` (the session outlives that socket), then `tools/list` / `tools/call` on POST /mcp with
`session_id` in the params, and `openenv/session/close` at the end."""

from __future__ import annotations

import itertools
import json
from typing import Any

import httpx
import websockets

_request_ids = itertools.count(1)


class ServerError(RuntimeError):
    """The server answered a JSON-RPC error: a programming or deployment fault, not an agent mistake."""


async def mcp_request(base_url: str, method: str, params: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    """One JSON-RPC request on POST /mcp; returns its result."""
    body = {"jsonrpc": "2.0", "id": next(_request_ids), "method": method, "params": params}
    async with httpx.AsyncClient(timeout=timeout_s) as client:
        response = await client.post(f"{base_url}/mcp", json=body)
    response.raise_for_status()
    answer = response.json()
    if "error" in answer:
        raise ServerError(f"{method}: {answer['error']}")
    return answer["result"]


async def open_episode(base_url: str, reset: dict[str, Any], timeout_s: float) -> str:
    """Create a session and reset it with `reset` (seed, difficulty, ...); returns its id."""
    session_id = (await mcp_request(base_url, "openenv/session/create", {}, timeout_s))["session_id"]
    ws_url = base_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
    async with websockets.connect(f"{ws_url}/ws?session_id={session_id}", open_timeout=timeout_s) as socket:
        await socket.send(json.dumps({"type": "reset", "data": reset}))
        answer = json.loads(await socket.recv())
    if answer.get("type") != "observation":
        raise ServerError(f"reset {reset}: {answer}")
    return session_id


async def close_episode(base_url: str, session_id: str, timeout_s: float) -> None:
    await mcp_request(base_url, "openenv/session/close", {"session_id": session_id}, timeout_s)
