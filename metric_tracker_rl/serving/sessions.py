"""Fair sharing of sessions over every transport: one per-client cap, a short life for sessions that are never
used, idle sessions closed when the retry hint says, and capacity errors that say when to retry.

OpenEnv creates a session three ways: a WebSocket on `/ws`, a WebSocket on `/mcp`, and the JSON-RPC method
`openenv/session/create` on `POST /mcp` (an HTTP session, driven by `tools/call` with its `session_id` and reset on
`/ws?session_id=<id>`, which attaches to it without creating another). It caps the sessions of the whole server
(MAX_CONCURRENT_ENVS) and reaps a detached session only after SESSION_TIMEOUT_S of silence (it destroys an idle
`/ws` session's environment but leaves its socket open). So one client opening sessions and leaving them idle, a
leaking trainer or anyone on a public Space, could lock every other user out for that long. `SessionLimits` sits
in front of all three and

- refuses a client's new session, on any transport, past MAX_SESSIONS_PER_CLIENT open sessions (default: no
  limit beyond MAX_CONCURRENT_ENVS; the image sets 8);
- closes a session that is not used within UNRESET_SESSION_GRACE_S (default 60 s) of its creation: a `/ws`
  session or an HTTP session that no reset reached, an `/mcp` socket that sent nothing;
- closes a session silent for SESSION_TIMEOUT_S itself (the socket too, with a message that says why), so a
  session's place is given back exactly when the retry hint says;
- while the server is full, closes a session that did no work for FULL_SERVER_IDLE_S, and gives its place to
  another client (`full_server`), so sessions held open and unused, by a leak or by many addresses at once, give
  capacity back within minutes;
- while the server is full, makes room for a client that holds fewer places than another, whatever the sessions
  do (`full_server`): it closes the chosen session through its own receive, so OpenEnv ends it and frees its place
  as for any client that leaves, and keeps that place for the waiting client;
- adds `retry_after_s` and a sentence with it to every capacity error, its own and OpenEnv's: the time until the
  earliest session that stands in the way is closed by the rules above.

A client is its peer address as uvicorn reports it. Uvicorn replaces the peer address with the
X-Forwarded-For client only when the peer is a trusted proxy (`serving.trusted_proxies`: loopback, what
FORWARDED_ALLOW_IPS names, and on a Hugging Face Space its proxy network), so no other client can claim another
address. The debugger's own connections arrive from the server itself on loopback and forward the browser's
address this way. With several workers, each worker counts its own sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI

from metric_tracker_rl.compat.openenv import (
    CAPACITY_CODE,
    SERVER_ERROR,
    SESSION_CLOSE_METHOD,
    SESSION_CREATE_METHOD,
    SESSION_ERROR_CODE,
    close_outcome,
    created_session_id,
    is_capacity_error_body,
    requested_session,
)
from metric_tracker_rl.compat.openenv import is_capacity_error as openenv_capacity_error
from metric_tracker_rl.serving.client_address import client_of
from metric_tracker_rl.serving.full_server import RESERVATION_HOLD_S, TOOL_CALL, FullServerRule, Reservation, is_work
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
from metric_tracker_rl.serving.task_api import json_safe
from metric_tracker_rl.settings import ServerSettings

SESSION_PATH = "/ws"
MCP_PATH = "/mcp"
CREATE_METHOD = SESSION_CREATE_METHOD
CLOSE_METHOD = SESSION_CLOSE_METHOD
# WebSocket close code 1013, "Try Again Later": the per-client refusal; 1008 "Policy Violation": no reset.
TRY_AGAIN_LATER = 1013
POLICY_VIOLATION = 1008
INVALID_PARAMS = -32602  # JSON-RPC's code
# How often a full server looks for sessions to close, at most and at least.
REAP_MIN_S = 0.2
REAP_MAX_S = 5.0
# Added to every retry hint: closing a session (its environment and its socket) takes a moment after its time.
CLOSE_MARGIN_S = 0.5
# How long a client given another's place waits for that session to end (it may be in the middle of a step).
EVICTION_WAIT_S = 15.0


@dataclass(eq=False)
class TrackedSession:
    """One open session, whatever its transport: "ws", "mcp" (the WebSocket /mcp) or "http"."""

    client: str
    transport: str
    session_id: str | None = None  # an HTTP session's id, as OpenEnv answered it
    opened_at: float = field(default_factory=time.monotonic)
    last_activity_at: float = field(default_factory=time.monotonic)
    used: bool = False  # reset (or, on /mcp, any message) since it opened
    last_work_at: float = field(default_factory=time.monotonic)  # a reset, step or tool call (see `is_work`)
    send: Send | None = None  # a socket session's, to close it from outside
    closing: bool = False  # closed for its time: its notice is sent once
    attached: bool = False  # an HTTP session with a /ws socket attached to it
    close_requested: bool = False  # closed by its client while attached: OpenEnv ends it when the socket ends
    yield_at: float | None = None  # when it gives its place to a waiting client (`full_server`)
    receiving: asyncio.Future[Message] | None = None  # the receive it waits in, cancelled to end it sooner
    receive_stopped: bool = False  # that receive was stopped by `wake` (its time, or from outside)
    gone: asyncio.Event = field(default_factory=asyncio.Event)  # set once OpenEnv no longer holds it


async def receive_within(receive: Receive, session: TrackedSession, timeout_s: float) -> Message | None:
    """The next message, or None after `timeout_s` or when `wake` stops the receive from outside. The receive is
    awaited directly, its timeout a timer that wakes it (no waiter of `asyncio.wait` per message); a cancellation
    of the session's own task goes on up."""
    receiving = asyncio.ensure_future(receive())
    session.receiving, session.receive_stopped = receiving, False
    timer = asyncio.get_running_loop().call_later(timeout_s, wake, session)
    try:
        return await receiving
    except asyncio.CancelledError:
        if session.receive_stopped and not _cancelling():
            return None
        receiving.cancel()
        raise
    finally:
        timer.cancel()
        session.receiving = None


def _cancelling() -> bool:
    """Whether the running task is being cancelled (Python 3.11 tells; before it, a stopped receive is taken for
    the stop it asked for)."""
    cancelling = getattr(asyncio.current_task(), "cancelling", None)
    return bool(cancelling()) if cancelling is not None else False


def wake(session: TrackedSession) -> None:
    """Stop the receive a socket session waits in, so it looks at its time again (see `receive_within`)."""
    if session.receiving is not None:
        session.receive_stopped = True
        session.receiving.cancel()


def is_reset(text: str | None) -> bool:
    """Whether a text frame is a reset message (any frame that is not one leaves the grace clock running)."""
    if text is None or '"reset"' not in text:
        return False
    with contextlib.suppress(ValueError, RecursionError):
        message = json.loads(text)
        return isinstance(message, dict) and message.get("type") == "reset"
    return False


def any_message(text: str | None) -> bool:
    """On /mcp there is no reset: a session is used once it sends anything."""
    return True


def json_rpc_request(body: bytes) -> tuple[Any, str | None, dict[str, Any]]:
    """(id, method, params) of a JSON-RPC request body; method None when it is not one (OpenEnv answers it)."""
    with contextlib.suppress(ValueError, RecursionError):
        request = json.loads(body)
        if isinstance(request, dict) and isinstance(request.get("method"), str):
            params = request.get("params")
            return request.get("id"), request["method"], params if isinstance(params, dict) else {}
    return None, None, {}


def ws_error(message: str, code: str, **data: Any) -> str:
    return json.dumps({"type": "error", "data": {"message": message, "code": code, **data}})


def json_rpc_error(request_id: Any, message: str, **data: Any) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": request_id,
                       "error": {"code": SERVER_ERROR, "message": message, "data": data}})


class SessionLimits:
    """ASGI middleware in front of every way to open a session; see the module docstring.

    `server` is the whole app: an HTTP session that has to be closed is closed through it, with the same
    JSON-RPC request a client would send, so OpenEnv frees it as it frees any other."""

    def __init__(self, app: ASGIApp, per_client: int | None, unreset_grace_s: float, idle_timeout_s: float,
                 server: ASGIApp, capacity: int, full_idle_s: float) -> None:
        """`per_client` None: no cap beyond the server-wide one (`capacity`), whose error OpenEnv sends (annotated
        here)."""
        self.app = app
        self.server = server
        self.per_client = per_client
        self.unreset_grace_s = unreset_grace_s
        self.idle_timeout_s = idle_timeout_s
        self.full_rule = FullServerRule(capacity, full_idle_s)
        self._reaper: asyncio.Task[None] | None = None
        self.sessions: set[TrackedSession] = set()
        self.http_sessions: dict[str, TrackedSession] = {}
        self.reservations: dict[str, Reservation] = {}  # by the client a place is being made for
        self._closing: set[asyncio.Task[None]] = set()

    # --- when sessions go, and what the hint says ---------------------------------------------------------

    def full(self, client: str | None = None) -> bool:
        """Whether every place is taken, counting places freed for waiting clients other than `client`."""
        return self.full_rule.full(len(self.sessions) + self.places_kept(client))

    def places_kept(self, client: str | None) -> int:
        """Places freed and kept for a waiting client other than `client` (expired reservations are dropped)."""
        if not self.reservations:  # as almost always: asked at every message
            return 0
        now = time.monotonic()
        for waiting in [c for c, r in self.reservations.items() if r.expires_at <= now]:
            del self.reservations[waiting]
        return sum(1 for c, r in self.reservations.items() if c != client and r.victim not in self.sessions)

    def seconds_until_closed(self, session: TrackedSession, now: float) -> float:
        due = math.inf if session.yield_at is None else session.yield_at - now
        if not session.used:
            return min(due, session.opened_at + self.unreset_grace_s - now)
        idle = min(due, session.last_activity_at + self.idle_timeout_s - now)
        return min(idle, self.full_rule.seconds_left(session, now)) if self.full() else idle

    def closed_while_full(self, session: TrackedSession, now: float) -> bool:
        """Whether a full server's rule, not the silence rule, is what closes `session` now."""
        return session.yield_at is not None or (session.used and session.last_activity_at + self.idle_timeout_s > now)

    def retry_after_s(self, blocking: list[TrackedSession]) -> int:
        """Whole seconds until the first of `blocking` is closed for inactivity and its place is free (at least 1)."""
        now = time.monotonic()
        soonest = min((self.seconds_until_closed(s, now) for s in blocking), default=0.0)
        return max(1, math.ceil(max(soonest, 0.0) + CLOSE_MARGIN_S))

    def held_by(self, client: str) -> list[TrackedSession]:
        return [s for s in self.sessions if s.client == client]

    def over_cap(self, client: str) -> list[TrackedSession] | None:
        """The client's sessions when it may open no more, else None."""
        if self.per_client is None:
            return None
        held = self.held_by(client)
        return held if len(held) >= self.per_client else None

    def refusal(self, client: str) -> tuple[str, dict[str, Any]] | None:
        """Why `client` may open no session now (the message and the error's data), or None."""
        wait_s = self.full_rule.cool_down_s(client, len(self.sessions), time.monotonic())
        if wait_s > 0:
            retry_after_s = math.ceil(wait_s + CLOSE_MARGIN_S)
            return self.full_rule.refusal(retry_after_s), {"code": CAPACITY_CODE, "retry_after_s": retry_after_s}
        held = self.over_cap(client)
        if held is not None:
            return self.per_client_refusal(held)
        reservation = self.reservations.get(client)
        if reservation is not None and reservation.victim in self.sessions and self.full(client):
            return self.reserved_refusal(reservation)
        return None

    async def admission(self, client: str) -> tuple[str, dict[str, Any]] | None:
        """Why `client` may open no session now, or None: a place is free for it, or was just made (or it has no
        claim to one, and OpenEnv's own refusal, annotated, answers it)."""
        refused = self.refusal(client)
        if refused is not None or not self.full(client):
            return refused
        chosen = self.full_rule.victim(self.sessions, self.places_held(), client)
        if chosen is None:
            return None
        victim, at_once = chosen
        now = time.monotonic()
        victim.yield_at = now if at_once else now + min(self.full_rule.full_idle_s,
                                                        max(self.seconds_until_closed(victim, now), 0.0))
        reservation = Reservation(victim, victim.yield_at + RESERVATION_HOLD_S)
        self.reservations[client] = reservation
        self.start_reaper()
        if not at_once:
            wake(victim)  # its receive waits by the time it had, which may be later
            return self.reserved_refusal(reservation)
        self.close_soon(victim)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(victim.gone.wait(), EVICTION_WAIT_S)
        return None

    def places_held(self) -> Counter[str]:
        """Places by client: its open sessions and the places being made for it."""
        held = Counter(s.client for s in self.sessions)
        held.update(list(self.reservations))
        return held

    def reserved_refusal(self, reservation: Reservation) -> tuple[str, dict[str, Any]]:
        assert reservation.victim.yield_at is not None
        retry_after_s = max(1, math.ceil(reservation.victim.yield_at - time.monotonic() + CLOSE_MARGIN_S))
        text = (f"The server is full. A place is being made for this client: the session that did no work for the "
                f"longest, of a client holding the most places, is closed in about {retry_after_s} s and its place is "
                f"kept for this client for {RESERVATION_HOLD_S:g} s after that. Retry in about {retry_after_s} s.")
        return text, {"code": CAPACITY_CODE, "retry_after_s": retry_after_s}

    def per_client_refusal(self, held: list[TrackedSession]) -> tuple[str, dict[str, Any]]:
        retry_after_s = self.retry_after_s(held)
        text = (f"Per-client session capacity reached: this client already holds {len(held)} open sessions, the most "
                f"one client may hold (MAX_SESSIONS_PER_CLIENT={self.per_client}; WebSocket and HTTP sessions count "
                f"alike). Close one of them, or retry in about {retry_after_s} s, when the first of them is closed "
                "for inactivity. A trainer that needs more at once (a GRPO run holds one session per rollout it "
                "generates) runs its own server with MAX_SESSIONS_PER_CLIENT and MAX_CONCURRENT_ENVS raised: see "
                "docs/training.md.")
        return text, {"code": CAPACITY_CODE, "active_sessions": len(held), "max_sessions": self.per_client,
                      "retry_after_s": retry_after_s}

    def add_retry_hint(self, holder: dict[str, Any], data: dict[str, Any], refused: TrackedSession | None) -> None:
        """Annotate OpenEnv's server-wide capacity error: `data` gets the code and `retry_after_s`, `holder`'s
        message the sentence (the same dict over /ws; the JSON-RPC error and its data otherwise)."""
        retry_after_s = self.retry_after_s([s for s in self.sessions if s is not refused])
        data["code"] = CAPACITY_CODE
        data["retry_after_s"] = retry_after_s
        holder["message"] = f"{holder.get('message', '')} Retry in about {retry_after_s} s.".strip()

    # --- dispatch -----------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path")
        if scope["type"] == "websocket" and path in (SESSION_PATH, MCP_PATH):
            client = client_of(scope)
            attach_to = requested_session(scope)
            if path == SESSION_PATH and attach_to:
                await self.attached_socket(scope, receive, send, self.http_sessions.get(attach_to))
            else:
                await self.socket_session(scope, receive, send, client, "ws" if path == SESSION_PATH else "mcp")
        elif scope["type"] == "http" and path == MCP_PATH and scope.get("method") == "POST":
            await self.json_rpc(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    # --- WebSocket sessions -------------------------------------------------------------------------------

    async def socket_session(self, scope: Scope, receive: Receive, send: Send, client: str, transport: str) -> None:
        refused = await self.admission(client)
        if refused is not None:
            await self.refuse_socket(receive, send, transport, *refused)
            return
        session = TrackedSession(client, transport, send=send)
        self.add(session)
        use = is_reset if transport == "ws" else any_message
        try:
            await self.app(scope, self.tracking_receive(session, receive, send, use, transport),
                           self.annotating_send(session, send, transport))
        finally:
            self.forget(session)

    async def attached_socket(self, scope: Scope, receive: Receive, send: Send,
                              session: TrackedSession | None) -> None:
        """A /ws socket on an HTTP session: it creates nothing, and its reset and messages are the session's use."""
        if session is None or session.attached:  # OpenEnv answers an unknown or already attached session itself
            await self.app(scope, receive, send)
            return
        session.attached = True
        try:
            await self.app(scope, self.tracking_receive(session, receive, send, is_reset, "ws"), send)
        finally:
            session.attached = False
            if session.close_requested:
                self.forget(session)
            elif session.session_id in self.http_sessions:
                self.schedule_close_check(session)

    async def refuse_socket(self, receive: Receive, send: Send, transport: str, text: str,
                            data: dict[str, Any]) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        reply = json_rpc_error(None, text, **data) if transport == "mcp" else ws_error(text, **data)
        await send({"type": "websocket.send", "text": reply})
        await send({"type": "websocket.close", "code": TRY_AGAIN_LATER})

    def tracking_receive(self, session: TrackedSession, receive: Receive, send: Send,
                         use: Callable[[str | None], bool], transport: str) -> Receive:
        """The socket's receive, closing the session when it stays silent past its time (see the module docstring)."""

        async def tracked() -> Message:
            while True:
                remaining = self.seconds_until_closed(session, time.monotonic())
                if remaining <= 0:
                    return await self.end_from_receive(session, send, transport)
                received = await receive_within(receive, session, remaining)
                if received is not None:
                    message = received
                    break
                # else its time may have moved meanwhile (an HTTP session's tools/call uses it): look again
            if message["type"] == "websocket.receive":
                text = message.get("text")
                session.used = session.used or use(text)
                session.last_activity_at = time.monotonic()
                if not self.full() or is_work(text, transport):  # only work keeps a place on a full server
                    session.last_work_at = session.last_activity_at
            return message

        return tracked

    async def end_from_receive(self, session: TrackedSession, send: Send, transport: str) -> Message:
        """The socket's time is up: its client is told why, and the app sees it leave, so OpenEnv ends the session
        (freeing its place) and closes the socket."""
        if not session.closing:  # else the reaper closed it already
            session.closing = True
            if self.closed_while_full(session, time.monotonic()):
                self.full_rule.reaped(session.client, time.monotonic())
            with contextlib.suppress(Exception):  # the client may be gone already
                await send({"type": "websocket.send", "text": self.closing_notice(session, transport)})
        return {"type": "websocket.disconnect", "code": POLICY_VIOLATION}

    def closing_notice(self, session: TrackedSession, transport: str) -> str:
        if session.yield_at is not None:
            text = ("Session closed: the server is full and a client holding fewer places was waiting. This client "
                    "held the most places, and this session had done no reset, step or tool call for the longest, "
                    "so its place went to that client. Connect again later and reset to start a new episode.")
        elif self.closed_while_full(session, time.monotonic()):
            text = (f"Session closed: the server is full, and this session did no reset, step or tool call for "
                    f"{self.full_rule.full_idle_s:g} s (FULL_SERVER_IDLE_S), so its place went to a waiting client. "
                    "Connect again later and reset to start a new episode.")
        elif not session.used:
            what, then = ("reset", "send a reset message first") if transport == "ws" else ("request", "send one")
            text = (f"Session closed: no {what} within {self.unreset_grace_s:g} s of its creation "
                    f"(UNRESET_SESSION_GRACE_S). Connect again and {then}.")
        else:
            text = (f"Session closed: no message for {self.idle_timeout_s:g} s (SESSION_TIMEOUT_S), so its episode "
                    "is gone. Connect again and reset to start a new one.")
        code = SESSION_ERROR_CODE
        return json_rpc_error(None, text, code=code) if transport == "mcp" else ws_error(text, code)

    def annotating_send(self, session: TrackedSession, send: Send, transport: str) -> Send:
        async def annotated(message: Message) -> None:
            text = message.get("text")
            if message["type"] == "websocket.send" and text and not session.used and self.is_capacity_error(text):
                reply = json.loads(text)
                if transport == "ws":
                    self.add_retry_hint(reply["data"], reply["data"], session)
                else:
                    self.add_retry_hint(reply["error"], reply["error"]["data"], session)
                message = {**message, "text": json.dumps(reply)}
            await send(message)

        return annotated

    @staticmethod
    def is_capacity_error(text: str) -> bool:
        """OpenEnv's server-wide refusal (`compat.openenv.is_capacity_error`)."""
        return openenv_capacity_error(text)

    # --- HTTP sessions (JSON-RPC on POST /mcp) -------------------------------------------------------------

    async def json_rpc(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await read_body(receive)  # bounded by BoundedRequestBodies, which sits outside
        if body is None:
            return
        request_id, method, params = json_rpc_request(body)
        replay = replaying(body, receive)
        client = client_of(scope)
        session_id = params.get("session_id")
        if session_id is not None and not isinstance(session_id, str):
            await json_response(send, 200, json.dumps({
                "jsonrpc": "2.0", "id": json_safe(request_id),
                "error": {"code": INVALID_PARAMS, "message": "params.session_id must be a string: the id that "
                          f"{CREATE_METHOD} answered."}}).encode())
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
            await self.app(scope, replay, send)

    async def forwarded(self, scope: Scope, receive: Receive, send: Send,
                        inspect: Callable[[Any], None]) -> None:
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

    def add(self, session: TrackedSession) -> None:
        """Count a new session (taking the place made for its client, if any); on a server it fills, start closing
        the sessions that do no work."""
        self.sessions.add(session)
        reservation = self.reservations.pop(session.client, None)
        victim = reservation.victim if reservation is not None else None
        due = victim.yield_at if isinstance(victim, TrackedSession) else None
        if isinstance(victim, TrackedSession) and due is not None and due > time.monotonic() and not victim.closing:
            victim.yield_at = None  # a place came free otherwise before its time: it keeps its own
            wake(victim)
        if self.full():
            self.start_reaper()

    def start_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.get_running_loop().create_task(self.reap_while_full())

    def close_soon(self, session: TrackedSession) -> None:
        """End a session whose time was just moved to now: a socket's receive stops waiting (or the next one does
        not wait), an HTTP session is closed as its client would close it."""
        if session.receiving is not None:
            wake(session)
        elif session.send is None and not session.attached:
            self._start_close_check(session)

    async def reap_while_full(self) -> None:
        """While the server is full, close each session when its time is up (the full server's rule shortens
        clocks that the sessions' own waits started before the server filled)."""
        while self.full():
            now = time.monotonic()
            due = [s for s in self.sessions if self.seconds_until_closed(s, now) <= 0]
            for session in due:
                await self.close_now(session)
            soonest = min((self.seconds_until_closed(s, now) for s in self.sessions), default=1.0)
            await asyncio.sleep(min(max(soonest, REAP_MIN_S), REAP_MAX_S))

    async def close_now(self, session: TrackedSession) -> None:
        """Close a session whose time is up: a socket with its notice (its app then ends the session), an HTTP
        session as its client would."""
        http_gone = session.session_id not in self.http_sessions or session.attached  # or watched by its socket
        if session.closing or (session.send is None and http_gone):
            return
        self.full_rule.reaped(session.client, time.monotonic())
        if session.send is None:
            await self.close_http_session(session)
            return
        session.closing = True
        with contextlib.suppress(Exception):  # the client may be gone already
            await session.send({"type": "websocket.send", "text": self.closing_notice(session, session.transport)})
            await session.send({"type": "websocket.close", "code": POLICY_VIOLATION})
        wake(session)  # the app sees its client leave now, whether or not the client answers the close

    def forget(self, session: TrackedSession) -> None:
        self.sessions.discard(session)
        if session.session_id is not None:
            self.http_sessions.pop(session.session_id, None)
        session.gone.set()

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
        body = json.dumps({"jsonrpc": "2.0", "id": "reaper", "method": CLOSE_METHOD,
                           "params": {"session_id": session.session_id}}).encode()
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": MCP_PATH, "raw_path": MCP_PATH.encode(), "query_string": b"",
                 "root_path": "", "client": ("127.0.0.1", 0), "server": ("127.0.0.1", 0),
                 "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]}

        async def discard(message: Message) -> None:
            del message

        async def disconnected() -> Message:
            return {"type": "http.disconnect"}

        await self.server(scope, replaying(body, disconnected), discard)
        self.forget(session)  # whatever OpenEnv answered, the session is closed or gone


def limit_sessions(app: FastAPI, settings: ServerSettings) -> FastAPI:
    """Add `SessionLimits`, configured from MAX_CONCURRENT_ENVS, MAX_SESSIONS_PER_CLIENT, UNRESET_SESSION_GRACE_S,
    SESSION_TIMEOUT_S and FULL_SERVER_IDLE_S.
    It must sit inside `BoundedRequestBodies` (it reads JSON-RPC bodies) and outside nothing else of ours."""
    per_client = settings.max_sessions_per_client
    if per_client is not None and per_client >= settings.max_concurrent_envs:
        per_client = None  # a cap at the server's own limit caps nothing
    app.add_middleware(SessionLimits, per_client=per_client, unreset_grace_s=settings.unreset_session_grace_s,
                       idle_timeout_s=settings.session_timeout_s, server=app,
                       capacity=settings.max_concurrent_envs, full_idle_s=settings.full_server_idle_s)
    return app
