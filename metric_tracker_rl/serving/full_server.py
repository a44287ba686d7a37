"""Admission on a full server: places held without work come back within minutes, and a newcomer gets a place
whatever the incumbents do.

While every place is taken (MAX_CONCURRENT_ENVS sessions open), a session that did no work (a reset, a step, an
MCP tool call) for FULL_SERVER_IDLE_S is closed: a state request or a ping keeps no place then. Work counts until
it is answered (for one more period at most), so a slow answer costs no place. Sessions that keep
working would keep every place for ever, so a client asking for a place on a full server is also given one of
theirs: the session that did no work for the longest, of the client holding the most places,

- at once when that client holds at least two places more than the asking one (it holds more than its share);
- else, when the asking client holds none, within FULL_SERVER_IDLE_S (sooner if its own clock ends first): the
  asking client is told exactly when, and the freed place is kept for it for RESERVATION_HOLD_S after that.

Addresses are free to a stranger, so against a client, the clients that first asked for a place after it (within
the last FULL_SERVER_IDLE_S) count as one: an asking client newer than the holder counts as holding the places of
every client newer than the holder together. A parade of never-seen addresses, one session each, then takes no
place of a client served before them, however many places that client holds (up to MAX_SESSIONS_PER_CLIENT): a
fresh address asking on a server they fill is given the place of the newest of them, when its time comes.

Before either, and instead of waiting: a client asking for a place is given one at once of the newest client that
first asked after it, within the last FULL_SERVER_IDLE_S, when the clients newer than it together hold at least as
many places as it does (the newest one's session that did no work for the longest). So never-seen addresses,
however many, holding every place, cannot keep out a client the server served before them, whether it holds no
session yet or several; a newer client takes nothing from an older one, and a client known for longer than
FULL_SERVER_IDLE_S loses nothing this way. Otherwise a client that holds as many places as any other is given none.

A client whose session was closed by these rules may not take a place again for FULL_SERVER_IDLE_S while the
server has no more than that one place free, so the place goes to the client that was waiting, not back to the one
that held it (many addresses holding every place, a Sybil, cannot renew their hold by reconnecting).
`sessions.SessionLimits` applies the rules; this module decides.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar

WORK_TYPES = frozenset({"reset", "step", "mcp"})
TOOL_CALL = "tools/call"
# Reaped clients remembered at most (the oldest are forgotten first).
REMEMBERED_REAPED = 4096
# Clients whose first request for a place is remembered at most (those that asked the longest ago are forgotten).
REMEMBERED_SEEN = 4096
# How long a place made for a waiting client is kept for it after the session holding it is closed.
RESERVATION_HOLD_S = 30.0


class Session(Protocol):
    used: bool
    last_work_at: float
    working: bool  # a work message is being answered
    client: str
    closing: bool
    yield_at: float | None  # when it gives its place to a waiting client

    @property
    def receiving(self) -> object | None:
        """The receive its socket waits in: None while its app answers a message (or it has no socket)."""


SessionT = TypeVar("SessionT", bound=Session)


@dataclass
class Reservation:
    """A place being made for a waiting client: `victim` is closed at `victim.yield_at`; the place is the
    client's until `expires_at`."""

    victim: Session
    expires_at: float


def is_work(text: str | None, transport: str) -> bool:
    """Whether a frame asks for work: a reset, a step or an MCP message on /ws; a tool call on /mcp."""
    if text is None or not ('"type"' in text or TOOL_CALL in text):
        return False
    with contextlib.suppress(ValueError, RecursionError):
        message = json.loads(text)
        if isinstance(message, dict):  # a stranger's "type" may be any JSON value: only a known name is work
            kind = message.get("method") if transport == "mcp" else message.get("type")
            return isinstance(kind, str) and (kind == TOOL_CALL if transport == "mcp" else kind in WORK_TYPES)
    return False


class FullServerRule:
    """The full server's clock and the cool-down of the clients it closed (see the module docstring)."""

    def __init__(self, capacity: int, full_idle_s: float) -> None:
        self.capacity, self.full_idle_s = capacity, full_idle_s
        self.reaped_at: dict[str, float] = {}
        self.first_seen: dict[str, float] = {}  # when each client first asked for a place, the latest asking last

    def seen(self, client: str, now: float) -> None:
        """`client` asks for a place: remembered from its first time (while it keeps asking, as one of the last
        REMEMBERED_SEEN clients to)."""
        self.first_seen[client] = self.first_seen.pop(client, now)
        while len(self.first_seen) > REMEMBERED_SEEN:
            del self.first_seen[next(iter(self.first_seen))]

    def full(self, open_sessions: int) -> bool:
        return open_sessions >= self.capacity

    def seconds_left(self, session: Session, now: float) -> float:
        """Until a used session is closed by this rule (meaningful while the server is full). A session whose work
        is still being answered is working, and its clock starts again at the answer; a message never answered (a
        notification, say) holds the place for at most one more period."""
        periods = 2 if session.working else 1
        return session.last_work_at + periods * self.full_idle_s - now

    def reaped(self, client: str, now: float) -> None:
        self.reaped_at.pop(client, None)
        self.reaped_at[client] = now
        while len(self.reaped_at) > REMEMBERED_REAPED:
            del self.reaped_at[next(iter(self.reaped_at))]

    def cool_down_s(self, client: str, open_sessions: int, now: float) -> float:
        """How long `client` must wait for a new place (0: it may take one now). Only a client closed by this rule
        waits, and only while at most one place is free."""
        if open_sessions < self.capacity - 1 or client not in self.reaped_at:
            return 0.0
        return max(self.reaped_at[client] + self.full_idle_s - now, 0.0)

    def victim(
        self, sessions: Iterable[SessionT], held: Counter[str], client: str, now: float
    ) -> tuple[SessionT, bool] | None:
        """The session to close for `client` and whether at once (its client holds two places more than `client`
        counts as holding against it), or None when `client` counts as holding as many places as any other. `held`
        counts every client's places, reserved ones included."""
        candidates = [s for s in sessions if s.client != client and not s.closing and s.yield_at is None]
        against = {owner: self.places_against(owner, held, client, now) for owner in {s.client for s in candidates}}
        at_once = [s for s in candidates if held[s.client] >= against[s.client] + 2]
        later = [s for s in candidates if against[s.client] == 0 and held[s.client] >= 1]
        for found, now_or_later in ((at_once, True), (later, False)):
            if found:
                most = max(held[s.client] for s in found)
                return min((s for s in found if held[s.client] == most), key=lambda s: s.last_work_at), now_or_later
        return None

    def newer(self, client: str, than: str, now: float) -> bool:
        """Whether `client` first asked for a place after `than` did, within the last full_idle_s."""
        seen = self.first_seen.get(client, now)
        return self.first_seen.get(than, now) < seen and seen > now - self.full_idle_s

    def places_against(self, owner: str, held: Counter[str], client: str, now: float) -> int:
        """The places `client` counts as holding against `owner`: its own, or where it is newer than `owner`, those
        of every client newer than `owner` together (fresh addresses are one client to a client seen before them)."""
        if not self.newer(client, owner, now):
            return held[client]
        return held[client] + sum(
            count for name, count in held.items() if name != client and self.newer(name, owner, now)
        )

    def newer_victim(
        self, sessions: Iterable[SessionT], held: Counter[str], client: str, now: float
    ) -> SessionT | None:
        """When the clients first seen after `client`, within full_idle_s, together hold at least as many places as
        `client`, a session of the newest of them (the one that did no work for the longest), else None. A socket
        session waiting for a message is taken first: it ends at once, where one whose reset waits for its build
        ends only when that is answered."""
        newer = [
            s
            for s in sessions
            if s.client != client and not s.closing and s.yield_at is None and self.newer(s.client, client, now)
        ]
        if not newer or sum(count for name, count in held.items() if self.newer(name, client, now)) < held[client]:
            return None
        newer = [s for s in newer if s.receiving is not None] or newer
        newest = max(self.first_seen[s.client] for s in newer)
        return min((s for s in newer if self.first_seen[s.client] == newest), key=lambda s: s.last_work_at)

    def refusal(self, wait_s: float) -> str:
        return (
            f"The server is full, and a session of this client was closed for a waiting client (it did no work "
            f"for a while, or this client held more places): its place goes to them. Retry in about "
            f"{wait_s:.0f} s."
        )
