"""Who holds a place and when it is given back: the sessions open, the per-client cap, the full server's rule and
the places it keeps for waiting clients, each session's time left, and what a refusal or a closed session is told
(with a retry hint that is that time). Synchronous bookkeeping; `sessions.SessionLimits` acts on it."""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from typing import Any

from metric_tracker_rl.compat.openenv import CAPACITY_CODE, SERVER_ERROR, SESSION_ERROR_CODE
from metric_tracker_rl.serving.full_server import RESERVATION_HOLD_S, FullServerRule, Reservation
from metric_tracker_rl.serving.session_clock import TrackedSession

# Added to every retry hint: closing a session (its environment and its socket) takes a moment after its time.
CLOSE_MARGIN_S = 0.5


def ws_error(message: str, code: str, **data: Any) -> str:
    return json.dumps({"type": "error", "data": {"message": message, "code": code, **data}})


def json_rpc_error(request_id: Any, message: str, **data: Any) -> str:
    return json.dumps(
        {"jsonrpc": "2.0", "id": request_id, "error": {"code": SERVER_ERROR, "message": message, "data": data}}
    )


class SessionPlaces:
    """The open sessions and the places they hold; `per_client` None: no cap beyond the server-wide one
    (`capacity`)."""

    def __init__(
        self, per_client: int | None, unreset_grace_s: float, idle_timeout_s: float, capacity: int, full_idle_s: float
    ) -> None:
        self.per_client = per_client
        self.unreset_grace_s = unreset_grace_s
        self.idle_timeout_s = idle_timeout_s
        self.full_rule = FullServerRule(capacity, full_idle_s)
        self.sessions: set[TrackedSession] = set()
        self.http_sessions: dict[str, TrackedSession] = {}
        self.socket_session_ids: dict[str, str] = {}  # a socket session's id, once told to its client → that client
        self.reservations: dict[str, Reservation] = {}  # by the client a place is being made for

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

    def places_held(self) -> Counter[str]:
        """Places by client: its open sessions and the places being made for it."""
        held = Counter(s.client for s in self.sessions)
        held.update(list(self.reservations))
        return held

    def reserved_refusal(self, reservation: Reservation) -> tuple[str, dict[str, Any]]:
        assert reservation.victim.yield_at is not None
        retry_after_s = max(1, math.ceil(reservation.victim.yield_at - time.monotonic() + CLOSE_MARGIN_S))
        text = (
            f"The server is full. A place is being made for this client: the session that did no work for the "
            f"longest, of a client holding the most places, is closed in about {retry_after_s} s and its place is "
            f"kept for this client for {RESERVATION_HOLD_S:g} s after that. Retry in about {retry_after_s} s."
        )
        return text, {"code": CAPACITY_CODE, "retry_after_s": retry_after_s}

    def per_client_refusal(self, held: list[TrackedSession]) -> tuple[str, dict[str, Any]]:
        retry_after_s = self.retry_after_s(held)
        text = (
            f"Per-client session capacity reached: this client already holds {len(held)} open sessions, the most "
            f"one client may hold (MAX_SESSIONS_PER_CLIENT={self.per_client}; WebSocket and HTTP sessions count "
            f"alike). Close one of them, or retry in about {retry_after_s} s, when the first of them is closed "
            "for inactivity. A trainer that needs more at once (a GRPO run holds one session per rollout it "
            "generates) runs its own server with MAX_SESSIONS_PER_CLIENT and MAX_CONCURRENT_ENVS raised: see "
            "docs/training.md."
        )
        return text, {
            "code": CAPACITY_CODE,
            "active_sessions": len(held),
            "max_sessions": self.per_client,
            "retry_after_s": retry_after_s,
        }

    def add_retry_hint(self, holder: dict[str, Any], data: dict[str, Any], refused: TrackedSession | None) -> None:
        """Annotate OpenEnv's server-wide capacity error: `data` gets the code and `retry_after_s`, `holder`'s
        message the sentence (the same dict over /ws; the JSON-RPC error and its data otherwise)."""
        retry_after_s = self.retry_after_s([s for s in self.sessions if s is not refused])
        data["code"] = CAPACITY_CODE
        data["retry_after_s"] = retry_after_s
        holder["message"] = f"{holder.get('message', '')} Retry in about {retry_after_s} s.".strip()

    def closing_notice(self, session: TrackedSession, transport: str) -> str:
        if session.yield_at is not None:
            text = (
                "Session closed: the server is full and a client holding fewer places, or one it served before "
                "this client, was waiting. This client held the most places, or was the newest, and this session "
                "had done no reset, step or tool call for the longest, so its place went to that client. Connect "
                "again later and reset to start a new episode."
            )
        elif self.closed_while_full(session, time.monotonic()):
            text = (
                f"Session closed: the server is full, and this session did no reset, step or tool call for "
                f"{self.full_rule.full_idle_s:g} s (FULL_SERVER_IDLE_S), so its place went to a waiting client. "
                "Connect again later and reset to start a new episode."
            )
        elif not session.used:
            what, then = ("reset", "send a reset message first") if transport == "ws" else ("request", "send one")
            text = (
                f"Session closed: no {what} within {self.unreset_grace_s:g} s of its creation "
                f"(UNRESET_SESSION_GRACE_S). Connect again and {then}."
            )
        else:
            text = (
                f"Session closed: no message for {self.idle_timeout_s:g} s (SESSION_TIMEOUT_S), so its episode "
                "is gone. Connect again and reset to start a new one."
            )
        code = SESSION_ERROR_CODE
        return json_rpc_error(None, text, code=code) if transport == "mcp" else ws_error(text, code)

    def forget(self, session: TrackedSession) -> None:
        self.sessions.discard(session)
        if session.session_id is not None:
            self.http_sessions.pop(session.session_id, None)
        session.gone.set()
