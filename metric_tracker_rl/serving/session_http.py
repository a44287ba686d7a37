"""HTTP sessions: OpenEnv's JSON-RPC session methods on POST /mcp, as `sessions.SessionLimits` admits, counts,
annotates and closes them (a session it closes is closed through the whole app, with the request a client would
send, so OpenEnv frees it as it frees any other).

An HTTP session belongs to the client that created it (`session_owner`): its id named by another client is
answered as an unknown id is."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from metric_tracker_rl.compat.openenv import (
    SESSION_CLOSE_METHOD,
    SESSION_CREATE_METHOD,
    close_outcome,
    created_session_id,
    is_capacity_error_body,
)
from metric_tracker_rl.serving.client_address import client_of
from metric_tracker_rl.serving.full_server import TOOL_CALL
from metric_tracker_rl.serving.hardening import (
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    json_response,
    read_body,
    replaying,
)
from metric_tracker_rl.serving.session_clock import TrackedSession
from metric_tracker_rl.serving.session_owner import SERVER_OWN, ForeignSessions, disguised_request
from metric_tracker_rl.serving.session_places import SessionPlaces, json_rpc_error
from metric_tracker_rl.serving.step_bound import watched
from metric_tracker_rl.serving.task_api import json_safe

MCP_PATH = "/mcp"
CREATE_METHOD = SESSION_CREATE_METHOD
CLOSE_METHOD = SESSION_CLOSE_METHOD
INVALID_PARAMS = -32602  # JSON-RPC's code


def json_rpc_request(body: bytes) -> tuple[Any, str | None, dict[str, Any]]:
    """(id, method, params) of a JSON-RPC request body; method None when it is not one (OpenEnv answers it)."""
    with contextlib.suppress(ValueError, RecursionError):
        request = json.loads(body)
        if isinstance(request, dict) and isinstance(request.get("method"), str):
            params = request.get("params")
            return request.get("id"), request["method"], params if isinstance(params, dict) else {}
    return None, None, {}


class HttpSessions(SessionPlaces):
    """The JSON-RPC half of `sessions.SessionLimits`: `app` is what it wraps, `server` the whole app."""

    app: ASGIApp
    server: ASGIApp
    _closing: set[asyncio.Task[None]]
    admission: Callable[[str], Awaitable[tuple[str, dict[str, Any]] | None]]
    add: Callable[[TrackedSession], None]

    async def json_rpc(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await read_body(receive)  # bounded by BoundedRequestBodies, which sits outside
        if body is None:
            return
        client = client_of(scope)
        request_id, method, params = json_rpc_request(body)
        session_id = params.get("session_id")
        foreign = ForeignSessions(self.http_sessions, self.socket_session_ids, client)
        if foreign.not_own(session_id) and not scope.get(SERVER_OWN):  # another's id, or none: answered alike
            scope, body, send = disguised_request(scope, body, send, session_id)
            request_id, method, params = json_rpc_request(body)
            session_id = params.get("session_id")
        replay = replaying(body, receive)
        if session_id is not None and not isinstance(session_id, str):
            await json_response(
                send,
                200,
                json.dumps(
                    {
                        "jsonrpc": "2.0",
                        "id": json_safe(request_id),
                        "error": {
                            "code": INVALID_PARAMS,
                            "message": f"params.session_id must be a string: the id that {CREATE_METHOD} answered.",
                        },
                    }
                ).encode(),
            )
            return
        if method == CREATE_METHOD:
            refused = await self.admission(client)
            if refused is not None:
                text, data = refused
                await json_response(send, 200, json_rpc_error(request_id, text, **data).encode())
                return
            await self.forwarded(scope, replay, send, lambda reply: self.created(reply, client))
        elif method == CLOSE_METHOD:
            await self.forwarded(scope, replay, send, lambda reply: self.closed(reply, session_id))
        else:
            if isinstance(session_id, str) and session_id in self.http_sessions:
                session = self.http_sessions[session_id]
                session.last_activity_at = time.monotonic()
                if not self.full() or method == TOOL_CALL:
                    session.last_work_at = session.last_activity_at
                if method == TOOL_CALL:
                    await self.working_on(session, scope, replay, send)
                    return
            await self.app(scope, replay, send)

    async def working_on(self, session: TrackedSession, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a tool call on an HTTP session: it is working until answered, and its clock starts again then.
        The call ends with its connection (`step_bound`): a client that hangs up leaves no statement running."""
        session.working = True
        try:
            async with watched(receive) as read_ahead:
                await self.app(scope, read_ahead, send)
        finally:
            session.working, session.last_work_at = False, time.monotonic()

    async def forwarded(self, scope: Scope, receive: Receive, send: Send, inspect: Callable[[Any], None]) -> None:
        """Pass the request on; hand its JSON reply to `inspect` (which may change it) before the client gets it."""
        start: Message | None = None
        chunks: list[bytes] = []

        async def held_send(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            with contextlib.suppress(ValueError, TypeError, KeyError):
                reply = json.loads(body)
                inspect(reply)
                body = json.dumps(reply).encode()
            assert start is not None
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, held_send)

    def created(self, reply: dict[str, Any], client: str) -> None:
        session_id, error = created_session_id(reply), reply.get("error")
        if session_id is not None:
            session = TrackedSession(client, "http", session_id=session_id)
            self.add(session)
            self.http_sessions[session_id] = session
            self.schedule_close_check(session)
        elif is_capacity_error_body(error):
            self.add_retry_hint(error, error["data"], None)

    def closed(self, reply: dict[str, Any], session_id: Any) -> None:
        """Forget a session OpenEnv closed, or never knew (it reaped it first). One with a socket attached is
        closed when the socket ends, so it still counts until then."""
        session = self.http_sessions.get(session_id) if isinstance(session_id, str) else None
        if session is None:
            return
        outcome = close_outcome(reply)
        if outcome == "gone":
            self.forget(session)
        elif outcome == "closing":
            session.close_requested = True

    def schedule_close_check(self, session: TrackedSession) -> None:
        """Check the HTTP session when its time is up (a timer per session: nothing runs in between)."""
        delay = max(self.seconds_until_closed(session, time.monotonic()), 0.0)
        asyncio.get_running_loop().call_later(delay, self._start_close_check, session)

    def _start_close_check(self, session: TrackedSession) -> None:
        task = asyncio.get_running_loop().create_task(self.close_if_due(session))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close_if_due(self, session: TrackedSession) -> None:
        if session.session_id not in self.http_sessions or session.attached:
            return  # closed meanwhile, or its socket's own clock watches it (and checks again when it ends)
        if self.seconds_until_closed(session, time.monotonic()) > 0:
            self.schedule_close_check(session)  # used since: a later time
            return
        await self.close_http_session(session)

    async def close_http_session(self, session: TrackedSession) -> None:
        """`openenv/session/close` through the whole app, as a client would send it (this middleware then forgets
        the session as for any close)."""
        body = json.dumps(
            {"jsonrpc": "2.0", "id": "reaper", "method": CLOSE_METHOD, "params": {"session_id": session.session_id}}
        ).encode()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": MCP_PATH,
            "raw_path": MCP_PATH.encode(),
            "query_string": b"",
            "root_path": "",
            "client": ("127.0.0.1", 0),
            "server": ("127.0.0.1", 0),
            SERVER_OWN: True,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }

        async def discard(message: Message) -> None:
            del message

        async def disconnected() -> Message:
            return {"type": "http.disconnect"}

        await self.server(scope, replaying(body, disconnected), discard)
        self.forget(session)  # whatever OpenEnv answered, the session is closed or gone
