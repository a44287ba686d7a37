"""Fair sharing of the WebSocket sessions: a per-client cap, a short life for sessions that never reset, and
capacity errors that say when to retry.

OpenEnv caps the sessions of the whole server (MAX_CONCURRENT_ENVS) and reaps a session only after
SESSION_TIMEOUT_S of silence, so one client opening connections and leaving them idle (a leaking trainer, or
anyone on a public Space) would lock every other user out for that long. `SessionLimits` sits in front of
`/ws` and

- refuses a client's connection past MAX_SESSIONS_PER_CLIENT open sessions (default: no limit beyond
  MAX_CONCURRENT_ENVS; the image sets 8);
- closes a session that has not sent a reset within UNRESET_SESSION_GRACE_S (default 60 s) of connecting;
- adds `retry_after_s` and a sentence with it to every CAPACITY_REACHED error: the time until the earliest
  session that stands in the way can be reaped.

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
from dataclasses import dataclass, field

from fastapi import FastAPI
from openenv.core.env_server.types import WSErrorCode

from metric_tracker_rl.server.hardening import ASGIApp, Message, Receive, Scope, Send
from metric_tracker_rl.settings import ServerSettings

SESSION_PATH = "/ws"
# WebSocket close code 1013, "Try Again Later": the per-client refusal; 1008 "Policy Violation": no reset.
TRY_AGAIN_LATER = 1013
POLICY_VIOLATION = 1008
CAPACITY_CODE = WSErrorCode.CAPACITY_REACHED.value


@dataclass(eq=False)
class TrackedSession:
    client: str
    opened_at: float = field(default_factory=time.monotonic)
    last_activity_at: float = field(default_factory=time.monotonic)
    has_reset: bool = False


def is_reset(text: str | None) -> bool:
    """Whether a text frame is a reset message (any frame that is not one leaves the grace clock running)."""
    if text is None or '"reset"' not in text:
        return False
    with contextlib.suppress(ValueError, RecursionError):
        message = json.loads(text)
        return isinstance(message, dict) and message.get("type") == "reset"
    return False


class SessionLimits:
    """ASGI middleware in front of the session socket; see the module docstring."""

    def __init__(self, app: ASGIApp, per_client: int | None, unreset_grace_s: float,
                 idle_timeout_s: float) -> None:
        """`per_client` None: no cap beyond the server-wide one, whose error OpenEnv sends (annotated here)."""
        self.app = app
        self.per_client = per_client
        self.unreset_grace_s = unreset_grace_s
        self.idle_timeout_s = idle_timeout_s
        # OpenEnv's reaper looks for idle sessions every max(timeout / 4, 5) s.
        self.reaper_interval_s = max(idle_timeout_s / 4, 5.0)
        self.sessions: set[TrackedSession] = set()

    def seconds_until_reaped(self, session: TrackedSession, now: float) -> float:
        if not session.has_reset:
            return session.opened_at + self.unreset_grace_s - now
        return session.last_activity_at + self.idle_timeout_s + self.reaper_interval_s - now

    def retry_after_s(self, blocking: list[TrackedSession]) -> int:
        """Whole seconds until the first of `blocking` can be reaped for inactivity (at least 1)."""
        now = time.monotonic()
        soonest = min((self.seconds_until_reaped(s, now) for s in blocking), default=1.0)
        return max(1, math.ceil(soonest))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket" or scope.get("path") != SESSION_PATH:
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        held = [s for s in self.sessions if s.client == client] if self.per_client is not None else []
        if self.per_client is not None and len(held) >= self.per_client:
            await self.refuse(receive, send, len(held), self.retry_after_s(held))
            return
        session = TrackedSession(client)
        self.sessions.add(session)
        try:
            await self.app(scope, self.tracking_receive(session, receive, send), self.annotating_send(session, send))
        finally:
            self.sessions.discard(session)

    async def refuse(self, receive: Receive, send: Send, held: int, retry_after_s: int) -> None:
        assert self.per_client is not None
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        text = (f"Per-client session capacity reached: this client already holds {held} open sessions, the most "
                f"one client may hold "
                f"(MAX_SESSIONS_PER_CLIENT={self.per_client}). Close one of them, or retry in about "
                f"{retry_after_s} s, when the first of them can be closed for inactivity.")
        error = {"type": "error", "data": {"message": text, "code": CAPACITY_CODE, "active_sessions": held,
                                           "max_sessions": self.per_client, "retry_after_s": retry_after_s}}
        await send({"type": "websocket.send", "text": json.dumps(error)})
        await send({"type": "websocket.close", "code": TRY_AGAIN_LATER})

    def tracking_receive(self, session: TrackedSession, receive: Receive, send: Send) -> Receive:
        async def tracked() -> Message:
            if session.has_reset:
                message = await receive()
            else:
                remaining = session.opened_at + self.unreset_grace_s - time.monotonic()
                try:
                    message = await asyncio.wait_for(receive(), timeout=max(remaining, 0.0))
                except asyncio.TimeoutError:
                    text = (f"Session closed: no reset within {self.unreset_grace_s:g} s of connecting "
                            "(UNRESET_SESSION_GRACE_S). Connect again and send a reset message first.")
                    error = {"type": "error", "data": {"message": text, "code": WSErrorCode.SESSION_ERROR.value}}
                    with contextlib.suppress(Exception):  # the client may be gone already
                        await send({"type": "websocket.send", "text": json.dumps(error)})
                    # The app sees its client leave: it ends the session and closes the socket.
                    return {"type": "websocket.disconnect", "code": POLICY_VIOLATION}
                session.has_reset = is_reset(message.get("text"))
            session.last_activity_at = time.monotonic()
            return message

        return tracked

    def annotating_send(self, session: TrackedSession, send: Send) -> Send:
        async def annotated(message: Message) -> None:
            text = message.get("text")
            if message["type"] == "websocket.send" and text and CAPACITY_CODE in text and not session.has_reset:
                message = {**message, "text": self.with_retry_hint(text, session)}
            await send(message)

        return annotated

    def with_retry_hint(self, text: str, refused: TrackedSession) -> str:
        """OpenEnv's server-wide capacity error, with when the first other session can be reaped."""
        try:
            reply = json.loads(text)
        except ValueError:
            return text
        data = reply.get("data") if isinstance(reply, dict) else None
        if not isinstance(data, dict) or data.get("code") != CAPACITY_CODE:
            return text
        retry_after_s = self.retry_after_s([s for s in self.sessions if s is not refused])
        data["retry_after_s"] = retry_after_s
        data["message"] = f"{data.get('message', '')} Retry in about {retry_after_s} s.".strip()
        return json.dumps(reply)


def limit_sessions(app: FastAPI, settings: ServerSettings) -> FastAPI:
    """Put `SessionLimits` outermost, configured from MAX_SESSIONS_PER_CLIENT and UNRESET_SESSION_GRACE_S."""
    per_client = settings.max_sessions_per_client
    if per_client is not None and per_client >= settings.max_concurrent_envs:
        per_client = None  # a cap at the server's own limit caps nothing
    app.add_middleware(SessionLimits, per_client=per_client,
                       unreset_grace_s=settings.unreset_session_grace_s, idle_timeout_s=settings.session_timeout_s)
    return app

