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
  earliest session that stands in the way is closed by the rules above;
- drops a reply that meets a socket its client has closed (`DroppedReplies`): the app then sees its client leave
  as usual, where the error of that send made OpenEnv try to send twice more and log a traceback for each reply.

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
import logging
import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from metric_tracker_rl.compat.openenv import is_capacity_error as openenv_capacity_error
from metric_tracker_rl.compat.openenv import requested_session
from metric_tracker_rl.serving.client_address import client_of
from metric_tracker_rl.serving.full_server import RESERVATION_HOLD_S, Reservation, is_work
from metric_tracker_rl.serving.hardening import ASGIApp, Message, Receive, Scope, Send
from metric_tracker_rl.serving.session_clock import TrackedSession, any_message, is_reset, receive_within, wake
from metric_tracker_rl.serving.session_http import MCP_PATH, HttpSessions
from metric_tracker_rl.serving.session_owner import (
    ForeignSessions,
    StandIns,
    attaching_to,
    renaming_frames,
    telling_own_id,
)
from metric_tracker_rl.serving.session_places import json_rpc_error, ws_error
from metric_tracker_rl.serving.step_bound import watched
from metric_tracker_rl.settings import ServerSettings

SESSION_PATH = "/ws"
CLOSED_BY_US = frozenset({"websocket.send", "websocket.close"})  # what a session closed by the server sends no more
# WebSocket close code 1013, "Try Again Later": the per-client refusal; 1008 "Policy Violation": no reset.
TRY_AGAIN_LATER = 1013
POLICY_VIOLATION = 1008
# How often a full server looks for sessions to close, at most and at least.
REAP_MIN_S = 0.2
REAP_MAX_S = 5.0
# How long a client given another's place waits for that session to end (it may be in the middle of a step).
EVICTION_WAIT_S = 15.0
DROPPED_LOG_EVERY_S = 60.0  # the most often the count of replies dropped at closed sockets is logged
logger = logging.getLogger("metric_tracker_rl.sessions")


class DroppedReplies:
    """Replies that met a socket its client had closed (the client left during a step): each is dropped quietly
    and counted, and the count so far is logged at most once every DROPPED_LOG_EVERY_S, so an operator sees that
    clients leave mid-step without a log line for each."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.count = 0
        self.clock = clock
        self.logged_at: float | None = None

    def note(self) -> None:
        self.count += 1
        now = self.clock()
        if self.logged_at is None or now - self.logged_at >= DROPPED_LOG_EVERY_S:
            self.logged_at = now
            logger.warning(
                "%d repl%s met a socket its client had closed, and %s dropped (this is logged at most once a minute)",
                self.count,
                "y" if self.count == 1 else "ies",
                "was" if self.count == 1 else "were",
            )

    def guard(self, send: Send) -> Send:
        """`send`, dropping what follows once a send found the client gone (the server's error for it is
        uvicorn's ClientDisconnected, an OSError): the app's next receive tells it that the client left."""
        gone = False

        async def sending(message: Message) -> None:
            nonlocal gone
            if not gone:
                try:
                    await send(message)
                    return
                except OSError:
                    gone = True
            if message["type"] == "websocket.send":
                self.note()

        return sending


class SessionLimits(HttpSessions):
    """ASGI middleware in front of every way to open a session; see the module docstring. Its bookkeeping is
    `session_places`', its HTTP sessions `session_http`'s.

    `server` is the whole app: an HTTP session that has to be closed is closed through it, with the same
    JSON-RPC request a client would send, so OpenEnv frees it as it frees any other."""

    def __init__(
        self,
        app: ASGIApp,
        per_client: int | None,
        unreset_grace_s: float,
        idle_timeout_s: float,
        server: ASGIApp,
        capacity: int,
        full_idle_s: float,
    ) -> None:
        """`per_client` None: no cap beyond the server-wide one (`capacity`), whose error OpenEnv sends (annotated
        here)."""
        super().__init__(per_client, unreset_grace_s, idle_timeout_s, capacity, full_idle_s)
        self.app = app
        self.server = server
        self._reaper: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self.dropped_replies = DroppedReplies()

    async def admission(self, client: str) -> tuple[str, dict[str, Any]] | None:
        """Why `client` may open no session now, or None: a place is free for it, or was just made (or it has no
        claim to one, and OpenEnv's own refusal, annotated, answers it)."""
        self.full_rule.seen(client, time.monotonic())
        refused = self.refusal(client)
        if refused is not None or not self.full(client):
            return refused
        held = self.places_held()
        chosen = self.full_rule.victim(self.sessions, held, client, time.monotonic())
        if chosen is None or not chosen[1]:  # a newer client's place, at once, comes sooner
            newer = self.full_rule.newer_victim(self.sessions, held, client, time.monotonic())
            chosen = chosen if newer is None else (newer, True)
        if chosen is None:
            return None
        victim, at_once = chosen
        now = time.monotonic()
        victim.yield_at = (
            now if at_once else now + min(self.full_rule.full_idle_s, max(self.seconds_until_closed(victim, now), 0.0))
        )
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

    # --- dispatch -----------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path")
        if scope["type"] == "websocket" and path in (SESSION_PATH, MCP_PATH):
            await self.socket(scope, receive, send, path)
        elif scope["type"] == "http" and path == MCP_PATH and scope.get("method") == "POST":
            await self.json_rpc(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def socket(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        """A `/ws` or `/mcp` socket: a session of its own, or (`/ws?session_id=<id>`) attached to an HTTP session.
        A session id of another client's reaches OpenEnv as a stand-in (`session_owner`)."""
        client, wrapped, own_ids = client_of(scope), path == SESSION_PATH, []
        foreign, stand_ins = ForeignSessions(self.http_sessions, self.socket_session_ids, client), StandIns()

        def told(session_id: str) -> None:
            own_ids.append(session_id)
            self.socket_session_ids[session_id] = client

        receive = renaming_frames(receive, foreign, stand_ins, wrapped)
        send = telling_own_id(stand_ins.sending(send), wrapped, told)
        attach_to = requested_session(scope)
        if wrapped and foreign.not_own(attach_to):
            scope = attaching_to(scope, stand_ins.stand_in_for(attach_to))
            attach_to = requested_session(scope)
        try:
            if wrapped and attach_to:
                await self.attached_socket(scope, receive, send, self.http_sessions.get(attach_to))
            else:
                await self.socket_session(scope, receive, send, client, "ws" if wrapped else "mcp")
        finally:
            for session_id in own_ids:
                self.socket_session_ids.pop(session_id, None)

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
            async with watched(receive) as read_ahead:  # its steps end with it (`step_bound`)
                await self.app(
                    scope,
                    self.tracking_receive(session, read_ahead, send, use, transport),
                    self.annotating_send(session, send, transport),
                )
        finally:
            self.forget(session)

    async def attached_socket(self, scope: Scope, receive: Receive, send: Send, session: TrackedSession | None) -> None:
        """A /ws socket on an HTTP session: it creates nothing, and its reset and messages are the session's use."""
        if session is None or session.attached:  # OpenEnv answers an unknown or already attached session itself
            await self.app(scope, receive, send)
            return
        session.attached = True
        quiet_send = self.dropped_replies.guard(send)

        async def answering(message: Message) -> None:
            answered(session, message)
            await quiet_send(message)

        try:
            async with watched(receive) as read_ahead:
                await self.app(scope, self.tracking_receive(session, read_ahead, send, is_reset, "ws"), answering)
        finally:
            session.attached = False
            if session.close_requested:
                self.forget(session)
            elif session.session_id in self.http_sessions:
                self.schedule_close_check(session)

    async def refuse_socket(
        self, receive: Receive, send: Send, transport: str, text: str, data: dict[str, Any]
    ) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        reply = json_rpc_error(None, text, **data) if transport == "mcp" else ws_error(text, **data)
        await send({"type": "websocket.send", "text": reply})
        await send({"type": "websocket.close", "code": TRY_AGAIN_LATER})

    def tracking_receive(
        self, session: TrackedSession, receive: Receive, send: Send, use: Callable[[str | None], bool], transport: str
    ) -> Receive:
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
                # Only work keeps a place on a full server (a frame is read for it then only), until answered.
                full = self.full()
                work = full and is_work(text, transport)
                session.working = session.working or work
                if not full or work:
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

    def annotating_send(self, session: TrackedSession, send: Send, transport: str) -> Send:
        send = self.dropped_replies.guard(send)

        async def annotated(message: Message) -> None:
            if session.closing and message["type"] in CLOSED_BY_US:  # closed with its notice (`close_now`)
                if message["type"] == "websocket.send":
                    self.dropped_replies.note()
                return
            answered(session, message)
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


def answered(session: TrackedSession, message: Message) -> None:
    """A reply sent on a working session answers its work: its clock on a full server starts again."""
    if message["type"] == "websocket.send" and session.working:
        session.working, session.last_work_at = False, time.monotonic()


def limit_sessions(app: FastAPI, settings: ServerSettings) -> FastAPI:
    """Add `SessionLimits`, configured from MAX_CONCURRENT_ENVS, MAX_SESSIONS_PER_CLIENT, UNRESET_SESSION_GRACE_S,
    SESSION_TIMEOUT_S and FULL_SERVER_IDLE_S.
    It must sit inside `BoundedRequestBodies` (it reads JSON-RPC bodies) and outside nothing else of ours."""
    per_client = settings.max_sessions_per_client
    if per_client is not None and per_client >= settings.max_concurrent_envs:
        per_client = None  # a cap at the server's own limit caps nothing
    app.add_middleware(
        SessionLimits,
        per_client=per_client,
        unreset_grace_s=settings.unreset_session_grace_s,
        idle_timeout_s=settings.session_timeout_s,
        server=app,
        capacity=settings.max_concurrent_envs,
        full_idle_s=settings.full_server_idle_s,
    )
    return app
