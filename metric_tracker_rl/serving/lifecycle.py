"""A graceful stop: on SIGTERM the server drains instead of cutting episodes.

A Space rebuild, a deploy or Kubernetes stopping a pod sends SIGTERM. Uvicorn on its own closes the listener and
fails every WebSocket at once (code 1012), so a step in flight is lost without a word. Here, the first SIGTERM
(or Ctrl-C):

1. makes readiness fail: `GET /ready` answers 503 (it answers 200 while the server takes sessions), and a new
   session is refused (a WebSocket on `/ws` or `/mcp` with a 503, or close code 1001; `openenv/session/create`
   with a 503 and a JSON-RPC error), so load balancers and clients go elsewhere or wait;
2. goes on serving the open sessions for the drain period (`METRIC_TRACKER_DRAIN_S`, default 10 s), or until
   every one has closed, so an episode in flight can finish; a step still running at the end is let finish
   (STEP_GRACE_S at most);
3. stops what else holds a connection open (`Lifecycle.on_stop`: the debugger page's result streams, heartbeats
   and tabs), then closes every remaining session with code 1001 ("going away") and a reason that tells the client
   to reset, which the project's clients turn into their reset retry (`metric_tracker_rl.reconnect`);
4. then lets uvicorn shut down. A second signal stops at once.

`GET /health` stays a liveness check (200 while the process serves). The orchestration manifests in deploy/
use `/ready` for readiness and give the pod longer than the drain to stop. Asked from the server's own machine, its
body also says where the server's statement steps spent their time (`sql.ledger`); no other client is shown those
sums, which would tell it when another client's statements ran and what they cost.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from fastapi import FastAPI

from metric_tracker_rl.serving.client_address import client_of
from metric_tracker_rl.serving.hardening import (
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    bounded_body,
    json_response,
    replaying,
)
from metric_tracker_rl.serving.session_http import CREATE_METHOD, MCP_PATH, json_rpc_request
from metric_tracker_rl.serving.session_places import json_rpc_error
from metric_tracker_rl.sql import ledger

STEP_GRACE_S = 5.0
READY_PATH = "/ready"
SESSION_PATHS = frozenset({"/ws", "/mcp"})  # the WebSocket sessions: an episode's, and an MCP client's
GOING_AWAY = 1001
STOPPING_REASON = "server stopping: reset to start a new episode"

logger = logging.getLogger("metric_tracker_rl.lifecycle")


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1"})
FORWARDING_HEADERS = frozenset({b"x-forwarded-for", b"forwarded", b"x-real-ip"})


def from_this_machine(scope: Scope) -> bool:
    """Whether a request comes from the server's own machine: its peer the loopback address, with no forwarding
    header (a proxy on the machine passes other clients' requests on)."""
    host = (scope.get("client") or ("", 0))[0]
    return host in LOOPBACK_HOSTS and not any(
        name.lower() in FORWARDING_HEADERS for name, _ in scope.get("headers", [])
    )


@dataclass(eq=False)
class _Session:
    send: Send
    busy: bool = False  # a message arrived and its reply has not been sent yet


@dataclass
class Lifecycle:
    """The process's sessions and whether it is draining (one per worker process)."""

    draining: bool = False
    sessions: set[_Session] = field(default_factory=set)
    # Run once the drain's time is up, before the sessions are closed: whatever would keep a connection (and so
    # uvicorn's shutdown) waiting, such as the debugger page's endless result streams and heartbeats.
    on_stop: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def steps_in_flight(self) -> int:
        return sum(session.busy for session in self.sessions)

    async def drain(self, drain_s: float, step_grace_s: float = STEP_GRACE_S) -> None:
        """Refuse new sessions, serve the open ones for drain_s (or until none is left), let a running step finish
        (step_grace_s at most), then close every session."""
        self.draining = True
        deadline = time.monotonic() + drain_s
        while self.sessions and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        deadline = time.monotonic() + step_grace_s
        while self.steps_in_flight() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for stop in self.on_stop:
            try:
                await stop()
            except Exception:  # noqa: BLE001 - the sessions are closed whatever else failed to stop
                logger.exception("draining: a part of the server failed to stop")
        left = self.steps_in_flight()
        logger.warning(
            "draining: closing %d session(s) with code %d (%d step(s) still in flight)",
            len(self.sessions),
            GOING_AWAY,
            left,
        )
        for session in list(self.sessions):
            try:
                await session.send({"type": "websocket.close", "code": GOING_AWAY, "reason": STOPPING_REASON})
            except Exception:  # noqa: BLE001 - a session that is already gone has nothing to close
                logger.debug("a session was gone before its close", exc_info=True)
        self.sessions.clear()


LIFECYCLE = Lifecycle()


class DrainAware:
    """ASGI middleware: `/ready`, session tracking on the WebSocket sessions (`/ws`, `/mcp`), and the refusal of
    new ones while draining."""

    def __init__(self, app: ASGIApp, lifecycle: Lifecycle) -> None:
        self.app, self.lifecycle = app, lifecycle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path") == READY_PATH:
            await self._ready(scope, send)
        elif scope["type"] == "websocket" and scope.get("path") in SESSION_PATHS:
            await self._session(scope, receive, send)
        elif self.lifecycle.draining and scope["type"] == "http" and scope.get("path") == MCP_PATH:
            await self._json_rpc_while_draining(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _ready(self, scope: Scope, send: Send) -> None:
        """Readiness; with the statement ledger only for a request from the server's own machine (its operator, the
        lab's benchmarks): its sums, read before and after another client's step, would show that statement."""
        draining = self.lifecycle.draining
        report: dict[str, object] = {"status": "draining" if draining else "ready"}
        if from_this_machine(scope):
            report["statements"] = ledger.snapshot()
        body = json.dumps(report).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 503 if draining else 200,
                "headers": [(b"content-type", b"application/json"), (b"cache-control", b"no-store")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _json_rpc_while_draining(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse `openenv/session/create` with a 503 (a proxy retries it elsewhere); let every other call on."""
        body = await bounded_body(receive, send, client_of(scope))  # this middleware is outside BoundedRequestBodies
        if body is None:
            return
        request_id, method, _ = json_rpc_request(body)
        if method != CREATE_METHOD:
            await self.app(scope, replaying(body, receive), send)
            return
        await json_response(send, 503, json_rpc_error(request_id, STOPPING_REASON).encode())

    async def _session(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.lifecycle.draining:
            await receive()  # websocket.connect
            if "websocket.http.response" in scope.get("extensions", {}):  # refuse with a 503 that says why
                await send(
                    {
                        "type": "websocket.http.response.start",
                        "status": 503,
                        "headers": [(b"content-type", b"text/plain")],
                    }
                )
                await send({"type": "websocket.http.response.body", "body": STOPPING_REASON.encode()})
            else:
                await send({"type": "websocket.close", "code": GOING_AWAY, "reason": STOPPING_REASON})
            return
        session = _Session(send)

        async def tracked_receive() -> Message:
            message = await receive()
            if message["type"] == "websocket.receive":
                session.busy = True
            return message

        async def tracked_send(message: Message) -> None:
            if message["type"] == "websocket.accept":
                self.lifecycle.sessions.add(session)
            await send(message)
            if message["type"] == "websocket.send":
                session.busy = False

        try:
            await self.app(scope, tracked_receive, tracked_send)
        finally:
            self.lifecycle.sessions.discard(session)


def drain_on_stop(app: FastAPI) -> FastAPI:
    """Put DrainAware outermost: a draining server refuses a session before any other middleware sees it."""
    app.add_middleware(DrainAware, lifecycle=LIFECYCLE)
    return app
