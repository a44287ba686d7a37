"""A session with an id belongs to the client that created it: the client `client_address.client_of` names, the one
the per-client session cap and the SQL workers' fair turns count (behind a trusted proxy, the forwarded client).
An HTTP session has an id from its creation; a socket's session has one once its client asks for it (OpenEnv
answers `openenv/session/create` sent on a socket with the socket's own session id).

Its id named by another client, wherever a client can name one (a JSON-RPC request's `params.session_id` on
`POST /mcp` or in a frame of the `/mcp` or `/ws` socket, and `/ws?session_id=<id>`), goes on to OpenEnv as a
stand-in id that no session has, and the stand-in is named back in what OpenEnv answers; an id that names no session
at all takes the same path. So the other client gets, byte for byte and in the same time, the answer an unknown id
gets: the id is no bearer token to another's episode (an id that leaks in a
log or a shared notebook opens nothing, closes nothing), and no answer tells that it exists.

The server's own close of a session whose time is up is marked `SERVER_OWN` in its scope (which no client can
set), and speaks for the session's client.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping
from typing import TypeGuard
from urllib.parse import parse_qsl, urlencode

from metric_tracker_rl.compat.openenv import SESSION_QUERY_PARAMETER
from metric_tracker_rl.serving.asgi_types import Message, Receive, Scope, Send
from metric_tracker_rl.serving.session_clock import TrackedSession

SERVER_OWN = "metric_tracker_rl.server_own"  # a scope key: the request is the server's own, not a client's
# An answer to `openenv/session/create` is short but for the JSON-RPC id it echoes, which the client chose: a longer
# frame is read for one only where it holds the answer's result, as OpenEnv writes it.
CREATED_REPLY_MAX_CHARS = 512
CREATED_RESULT = re.compile(r'"result":\s*\{\s*"session_id":\s*"[^"\\]{1,128}"\s*\}')
ESCAPE = "\\u"  # a JSON key may spell `session_id` with escapes: a frame that has one is read whole


class StandIns:
    """The stand-in ids of one request or connection, each for an id its client named but does not own."""

    def __init__(self) -> None:
        self.named: dict[str, str] = {}  # stand-in → the id the client named

    def stand_in_for(self, session_id: str) -> str:
        stand_in = next((stand_in for stand_in, named in self.named.items() if named == session_id), None)
        if stand_in is None:
            stand_in = str(uuid.uuid4())  # as OpenEnv's ids: as long, and never one it issued
            self.named[stand_in] = session_id
        return stand_in

    def named_back(self, data: bytes) -> bytes:
        for stand_in, named in self.named.items():
            data = data.replace(stand_in.encode(), named.encode())
        return data

    def sending(self, send: Send) -> Send:
        """`send`, naming each stand-in back: in a socket's text frames, and in an HTTP body (read whole, its
        Content-Length set again)."""
        start: Message | None = None
        chunks: list[bytes] = []

        async def named_back(message: Message) -> None:
            nonlocal start
            if not self.named:
                await send(message)
            elif message["type"] == "websocket.send" and isinstance(message.get("text"), str):
                await send({**message, "text": self.named_back(message["text"].encode()).decode()})
            elif message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body" and start is not None:
                chunks.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                body = self.named_back(b"".join(chunks))
                headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
                await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
            else:
                await send(message)

        return named_back


class ForeignSessions:
    """The sessions with an id that clients other than `client` created: HTTP sessions (`http`, the tracked ones by
    id), and sockets that asked for their own id (`sockets`, their client by id)."""

    def __init__(self, http: Mapping[str, TrackedSession], sockets: Mapping[str, str], client: str) -> None:
        self.http, self.sockets, self.client = http, sockets, client

    def not_own(self, session_id: object) -> TypeGuard[str]:
        """Whether `session_id` is an id that names no session of this client: another client's, or none at all.
        Both take the same path (a stand-in for OpenEnv), so that neither answers sooner or differently."""
        if not isinstance(session_id, str) or not session_id:
            return False
        session = self.http.get(session_id)
        owner = session.client if session is not None else self.sockets.get(session_id)
        return owner != self.client


def telling_own_id(send: Send, wrapped: bool, told: Callable[[str], None]) -> Send:
    """A socket's send that hands `told` the socket session's own id when OpenEnv answers `openenv/session/create`
    on it (with that id), inside a `{"type": "mcp"}` frame on `/ws` (`wrapped`)."""

    async def telling(message: Message) -> None:
        text = message.get("text") if message["type"] == "websocket.send" else None
        if (
            isinstance(text, str)
            and '"session_id"' in text
            and (len(text) <= CREATED_REPLY_MAX_CHARS or CREATED_RESULT.search(text) is not None)
        ):
            own_id = created_id(text, wrapped)
            if own_id is not None:
                told(own_id)
        await send(message)

    return telling


def created_id(text: str, wrapped: bool) -> str | None:
    """The id in a socket's answer to `openenv/session/create` (`{"result": {"session_id": <id>}}`), else None."""
    try:
        reply = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if wrapped:
        reply = reply.get("data") if isinstance(reply, dict) and reply.get("type") == "mcp" else None
    result = reply.get("result") if isinstance(reply, dict) else None
    if isinstance(result, dict) and list(result) == ["session_id"] and isinstance(result["session_id"], str):
        return result["session_id"]
    return None


def disguised_request(scope: Scope, body: bytes, send: Send, session_id: str) -> tuple[Scope, bytes, Send]:
    """A `POST /mcp` request (a JSON-RPC object with object params) naming a session its client does not own, as
    OpenEnv is to see it: a stand-in in its params, and the stand-in named back in the reply."""
    stand_ins = StandIns()
    request = json.loads(body)
    request["params"]["session_id"] = stand_ins.stand_in_for(session_id)
    body = json.dumps(request).encode()
    return with_body_length(scope, body), body, stand_ins.sending(send)


def may_name_a_session(text: str) -> bool:
    """Whether a JSON text may name a session id at all (most frames do not, and are not parsed here)."""
    return "session_id" in text or ESCAPE in text


def renaming_frames(receive: Receive, foreign: ForeignSessions, stand_ins: StandIns, wrapped: bool) -> Receive:
    """A socket's receive, with a stand-in for any session id not its client's (another's, or none) in the params
    of its JSON-RPC frames: the frame itself on `/mcp`, the `data` of a `{"type": "mcp"}` frame on `/ws`
    (`wrapped`)."""

    async def renamed() -> Message:
        message = await receive()
        text = message.get("text") if message["type"] == "websocket.receive" else None
        if not isinstance(text, str) or not may_name_a_session(text):
            return message
        try:
            frame = json.loads(text)
        except (ValueError, RecursionError):
            return message  # OpenEnv answers it
        if wrapped:
            request = frame.get("data") if isinstance(frame, dict) and frame.get("type") == "mcp" else None
        else:
            request = frame
        params = request.get("params") if isinstance(request, dict) else None
        session_id = params.get("session_id") if isinstance(params, dict) else None
        if not isinstance(params, dict) or not foreign.not_own(session_id):
            return message
        params["session_id"] = stand_ins.stand_in_for(session_id)
        return {**message, "text": json.dumps(frame)}

    return renamed


def attaching_to(scope: Scope, session_id: str) -> Scope:
    """A `/ws` scope whose query names `session_id` wherever it named a session."""
    pairs = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    query = urlencode([(key, session_id if key == SESSION_QUERY_PARAMETER else value) for key, value in pairs])
    return {**scope, "query_string": query.encode("latin-1")}


def with_body_length(scope: Scope, body: bytes) -> Scope:
    """An HTTP scope whose Content-Length is that of `body` (a body read and replaced)."""
    headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"content-length"]
    return {**scope, "headers": [*headers, (b"content-length", str(len(body)).encode())]}
