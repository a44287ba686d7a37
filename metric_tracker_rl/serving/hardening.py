"""Protections around OpenEnv's generic app: an accurate OpenAPI document, bounded HTTP request bodies and
a guard on WebSocket frames. They are part of the app, so every way of starting the server applies them.

Uvicorn reads HTTP request bodies of any size; `BoundedRequestBodies` answers a body over MAX_MESSAGE_BYTES
with a 413 before the app buffers and parses it. Uvicorn's own WebSocket limit is a server option, which
`uvicorn server.app:app` leaves at 16 MiB: `WebSocketFrameGuard` closes a session whose frame is over
MAX_MESSAGE_BYTES with code 1009 before anything parses it. Both refuse a message whose structure is too costly
to parse, and charge each client for what it sends (`message_cost`).

OpenEnv's `/ws` loop parses each text frame with `json.loads` and then calls `.get("type")` on the result:
a frame that is valid JSON but not an object, a binary frame, or a payload nested deeper than the parser's
recursion limit escapes its per-message error handling, and a string with a lone surrogate escape makes the
error reply itself unserialisable; each tore the session down with an unhelpful message.
`WebSocketFrameGuard` answers such frames itself with an INVALID_JSON error and keeps the session.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import re
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from starlette.websockets import WebSocketDisconnect

from metric_tracker_rl.compat.openenv import INVALID_JSON_CODE
from metric_tracker_rl.models import MetricTrackerRlAction
from metric_tracker_rl.serving.asgi_types import ASGIApp, Message, Receive, Scope, Send
from metric_tracker_rl.serving.client_address import client_of
from metric_tracker_rl.serving.memory_release import release_soon
from metric_tracker_rl.serving.message_cost import (
    BYTE_COST_S,
    MAX_JSON_DEPTH,
    PARSE_BUDGET,
    parse_cost_s,
    structure_problem,
)
from metric_tracker_rl.serving.step_bound import OVERRUN_CODE, OVERRUN_REASON, watched

__all__ = ["MAX_JSON_DEPTH", "MAX_MESSAGE_BYTES", "ASGIApp", "Message", "Receive", "Scope", "Send"]

# Largest WebSocket message or HTTP request body the server reads; a larger WebSocket message closes the
# connection with code 1009, a larger body gets a 413. A full 200-row submission is about 60 KB, so 1 MiB
# leaves ample room while bounding the work per message.
MAX_MESSAGE_BYTES = 1024 * 1024
GUARDED_WEBSOCKET_PATHS = frozenset({"/ws", "/mcp"})
MESSAGE_TOO_BIG = 1009  # the WebSocket close code
# A request body must arrive whole within this time, and one client's unfinished bodies hold at most this much
# together: a connection that sends most of a body and stops is answered 408 and its bytes are dropped.
BODY_DEADLINE_S = 30.0
UNFINISHED_BYTES_PER_CLIENT = 4 * MAX_MESSAGE_BYTES
# A dropped body or frame this large has its freed memory returned to the system (memory_release): smaller ones are
# reused by the allocator as they are.
TRIM_AFTER_BYTES = 64 * 1024
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
LONE_SURROGATE = "Message contains a lone UTF-16 surrogate escape (such as \\ud800); send valid Unicode text."
NOT_UTF8 = "The request body is not valid UTF-8 text; send JSON as UTF-8."
JSON_RPC_PARSE_ERROR = -32700


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone UTF-16 surrogate such as "\\ud800"
        return False
    return True


def json_shape(value: Any) -> tuple[int, bool]:
    """(nesting depth, whether every string is valid Unicode) of a parsed JSON value, without recursion."""
    deepest, valid, stack = 0, True, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            valid = valid and _is_unicode(item)
            continue
        if isinstance(item, dict):
            children = [*item.keys(), *item.values()]
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth + 1)
        stack.extend((child, depth + 1) for child in children)
    return deepest, valid


def frame_size(content: str | bytes) -> int:
    """A frame's size in bytes (a text frame's characters are 1 to 4 bytes each)."""
    if isinstance(content, bytes) or len(content) > MAX_MESSAGE_BYTES or 4 * len(content) <= MAX_MESSAGE_BYTES:
        return len(content)
    return len(content.encode("utf-8", "surrogatepass"))


def frame_problem(message: Message) -> str | None:
    """Why a received WebSocket frame cannot be a protocol message, or None to let OpenEnv handle it."""
    text = message.get("text")
    if text is None:
        return "Binary frames are not supported: send each message as a JSON text frame."
    too_costly = structure_problem(text)
    if too_costly is not None:
        return too_costly.message
    if text[:1] == "{" and text.count("{") + text.count("[") <= MAX_JSON_DEPTH and not SURROGATE_ESCAPE.search(text):
        # Fast path for ordinary frames: an object if it parses at all, too few brackets to nest too deeply,
        # and no escape that could decode to a lone surrogate.
        return None
    try:
        parsed = json.loads(text)
    except RecursionError:
        return f"Message nests too deeply (at most {MAX_JSON_DEPTH} levels)."
    except ValueError:
        return None  # OpenEnv answers invalid JSON itself, with the parser's message
    if not isinstance(parsed, dict):
        return 'A message must be a JSON object such as {"type": "reset", "data": {}}.'
    depth, valid_unicode = json_shape(parsed)
    if depth > MAX_JSON_DEPTH:
        return f"Message nests too deeply (at most {MAX_JSON_DEPTH} levels)."
    if not valid_unicode:
        return LONE_SURROGATE
    return None


class WebSocketFrameGuard:
    """ASGI middleware: answers malformed frames on the session sockets and waits for the next frame."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket" or scope.get("path") not in GUARDED_WEBSOCKET_PATHS:
            await self.app(scope, receive, send)
            return

        client = client_of(scope)
        async with watched(receive) as read_ahead:  # every frame counts against the read-ahead, refused ones too
            await self._guarded(scope, read_ahead, send, client)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send, client: str) -> None:
        async def guarded_receive() -> Message:
            while True:
                await PARSE_BUDGET.wait(client)
                message = await receive()
                if message["type"] == "websocket.disconnect" and message.get("reason") == OVERRUN_REASON:
                    with contextlib.suppress(Exception):  # the client may be gone already
                        await send({"type": "websocket.close", "code": OVERRUN_CODE, "reason": OVERRUN_REASON})
                    return message
                if message["type"] != "websocket.receive":
                    return message
                content = message.get("text") or message.get("bytes") or ""
                if frame_size(content) > MAX_MESSAGE_BYTES:  # received and decoded already: charged, not counted
                    PARSE_BUDGET.charge(client, len(content) * BYTE_COST_S)
                    await send(
                        {
                            "type": "websocket.close",
                            "code": MESSAGE_TOO_BIG,
                            "reason": f"message over {MAX_MESSAGE_BYTES} bytes",
                        }
                    )
                    release_soon()  # megabytes of frame and text, freed in the middle of the heap
                    return {"type": "websocket.disconnect", "code": MESSAGE_TOO_BIG}
                PARSE_BUDGET.charge(client, parse_cost_s(content))
                problem = frame_problem(message)
                if problem is None:
                    return message
                error = {"type": "error", "data": {"message": problem, "code": INVALID_JSON_CODE}}
                await send({"type": "websocket.send", "text": json.dumps(error)})

        # OpenEnv closes the socket in its `finally` even when the client already has, which raises here; the
        # session is over and cleaned up, so a traceback in the log for every episode would be noise.
        with contextlib.suppress(WebSocketDisconnect):
            await self.app(scope, guarded_receive, send)


async def json_response(send: Send, status: int, payload: Any) -> None:
    """A whole JSON response (`payload` as JSON; bytes as they are)."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyTooLarge(ValueError):
    """A request body over the limit `read_body` was given."""


class BodyTooSlow(TimeoutError):
    """A request body that did not arrive whole within BODY_DEADLINE_S."""


async def read_body(
    receive: Receive,
    limit: int | None = None,
    deadline_s: float | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> bytes | None:
    """A request's whole body, or None when the client left; BodyTooLarge past `limit` bytes, BodyTooSlow when it
    has not all arrived `deadline_s` after the first call. `on_chunk` is told each chunk's size as it arrives."""
    chunks, size = [], 0
    loop = asyncio.get_running_loop()
    ends = None if deadline_s is None else loop.time() + deadline_s
    while True:
        try:
            message = await (receive() if ends is None else asyncio.wait_for(receive(), max(ends - loop.time(), 0)))
        except asyncio.TimeoutError:
            raise BodyTooSlow(size) from None
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if on_chunk is not None:
            on_chunk(len(chunk))
        if limit is not None and size > limit:
            raise BodyTooLarge(size)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def replaying(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the app `body` (already read) as one message, then whatever the client sends next."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


class UnfinishedBodies:
    """The bytes each client holds in bodies it has not finished sending: a client may hold at most
    UNFINISHED_BYTES_PER_CLIENT at once, so connections that send most of a body and stop keep little memory."""

    def __init__(self) -> None:
        self.held: collections.Counter[str] = collections.Counter()

    def add(self, client: str, size: int) -> None:
        self.held[client] += size
        if self.held[client] > UNFINISHED_BYTES_PER_CLIENT:
            raise BodyTooLarge(self.held[client])

    def release(self, client: str, size: int) -> None:
        self.held[client] -= size
        if self.held[client] <= 0:
            del self.held[client]


UNFINISHED = UnfinishedBodies()


async def bounded_body(receive: Receive, send: Send, client: str) -> bytes | None:
    """A request's body up to MAX_MESSAGE_BYTES, whole within BODY_DEADLINE_S and within the client's share of
    unfinished bodies, each byte charged to the client as it arrives; None when the client left, or past those
    (answered with a 413 or a 408, and what had arrived dropped)."""
    held, whole = 0, False

    def arrived(size: int) -> None:
        nonlocal held
        held += size
        PARSE_BUDGET.charge(client, size * BYTE_COST_S)
        UNFINISHED.add(client, size)

    try:
        body = await read_body(receive, MAX_MESSAGE_BYTES, BODY_DEADLINE_S, arrived)
        whole = body is not None
        return body
    except BodyTooLarge:
        await json_response(
            send,
            413,
            {
                "detail": f"request body over {MAX_MESSAGE_BYTES} bytes, or this client's "
                f"unfinished bodies over {UNFINISHED_BYTES_PER_CLIENT} bytes together"
            },
        )
        return None
    except BodyTooSlow:
        await json_response(send, 408, {"detail": f"request body not received whole within {BODY_DEADLINE_S:g} s"})
        return None
    finally:
        UNFINISHED.release(client, held)
        if not whole and held >= TRIM_AFTER_BYTES:
            release_soon()  # a dropped body's chunks were freed in the middle of the heap: give them back


class BoundedRequestBodies:
    """ASGI middleware: reads request bodies up to MAX_MESSAGE_BYTES, refuses one too costly to parse or that is not
    valid Unicode text (`text_problem`), and replays the others to the app; a client in debt for parse work waits
    before its body is read."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        client = client_of(scope)
        declared = declared_length(scope)
        if declared is not None and declared > MAX_MESSAGE_BYTES:  # refused before a byte of it is awaited
            await json_response(send, 413, {"detail": f"request body over {MAX_MESSAGE_BYTES} bytes"})
            return
        await PARSE_BUDGET.wait(client)
        body = await bounded_body(receive, send, client)
        if body is None:
            return
        PARSE_BUDGET.charge(client, parse_cost_s(body) - len(body) * BYTE_COST_S)  # its bytes are charged already
        problem = structure_problem(body)
        if problem is not None:
            await json_response(send, 413 if problem.too_large else 400, {"detail": problem.message})
            return
        problem_text = text_problem(body)
        if problem_text is not None:
            await _refuse_text(scope, send, problem_text)
            return
        await self.app(scope, replaying(body, receive), send)


def declared_length(scope: Scope) -> int | None:
    """The Content-Length a request declares, or None (none, or not a number)."""
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            text = value.strip()
            if not text.isdigit():
                return None
            return int(text) if len(text) <= 30 else 10**30  # past any limit; never a huge int conversion
    return None


def text_problem(body: bytes) -> str | None:
    """Why a body is not valid Unicode text (bytes that are not UTF-8, or JSON that escapes a lone surrogate), or
    None: no reply could echo such a string (it cannot be encoded), so it is refused before the app reads it."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return NOT_UTF8
    if not SURROGATE_ESCAPE.search(text):
        return None
    try:
        return None if json_shape(json.loads(text))[1] else LONE_SURROGATE
    except (ValueError, RecursionError):
        return None  # not JSON: the app says so


async def _refuse_text(scope: Scope, send: Send, problem: str) -> None:
    """Answer a body that is not valid Unicode text: a JSON-RPC parse error on /mcp, a 400 elsewhere."""
    if scope.get("path") == "/mcp":
        await json_response(
            send, 200, {"jsonrpc": "2.0", "id": None, "error": {"code": JSON_RPC_PARSE_ERROR, "message": problem}}
        )
    else:
        await json_response(send, 400, {"detail": problem})


class MarksStatelessSteps:
    """ASGI middleware: runs HTTP `POST /step` with `STATELESS_STEP` set, so that a step without an episode says
    why HTTP cannot hold one, and a WebSocket session's says what a session's episode needs instead."""

    def __init__(self, app: ASGIApp) -> None:
        from metric_tracker_rl.serving.environment import (
            STATELESS_STEP,  # here: `websocket_options` imports this module
        )

        self.app, self.stateless_step = app, STATELESS_STEP

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") != "/step":
            await self.app(scope, receive, send)
            return
        token = self.stateless_step.set(True)
        try:
            await self.app(scope, receive, send)
        finally:
            self.stateless_step.reset(token)


def document_actual_contract(app: FastAPI) -> None:
    """Make /openapi.json describe what the server accepts: the real action model in POST /step (OpenEnv
    documents any object), the 400 answer to a body that is not JSON and the 413 answer to an oversized one."""
    build_default = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build_default()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        action = MetricTrackerRlAction.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(action.pop("$defs", {}))
        components[MetricTrackerRlAction.__name__] = action
        step_request = components.get("StepRequest", {}).get("properties", {})
        if "action" in step_request:
            step_request["action"] = {"$ref": f"#/components/schemas/{MetricTrackerRlAction.__name__}"}
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                if isinstance(operation, dict) and "requestBody" in operation:
                    responses = operation.setdefault("responses", {})
                    responses.setdefault("400", {"description": "The request body is not valid JSON"})
                    responses.setdefault("413", {"description": f"The request body is over {MAX_MESSAGE_BYTES} bytes"})
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def harden(app: FastAPI) -> FastAPI:
    document_actual_contract(app)
    app.add_middleware(MarksStatelessSteps)
    app.add_middleware(WebSocketFrameGuard)
    app.add_middleware(BoundedRequestBodies)
    return app
