"""Admission on a full server: places held without work come back within minutes, and go to someone else.

While every place is taken (MAX_CONCURRENT_ENVS sessions open), a session that did no work (a reset, a step, an
MCP tool call) for FULL_SERVER_IDLE_S is closed: a state request or a ping keeps no place then. A client whose
session was closed this way may not take a place again for FULL_SERVER_IDLE_S while the server has no more than
that one place free, so the place goes to a client that was waiting, not back to the one that held it idle (many
addresses holding every place, a Sybil, cannot renew their hold by reconnecting). `sessions.SessionLimits`
applies both rules; this module decides them.
"""

from __future__ import annotations

import contextlib
import json
from typing import Protocol

WORK_TYPES = frozenset({"reset", "step", "mcp"})
TOOL_CALL = "tools/call"
# Reaped clients remembered at most (the oldest are forgotten first).
REMEMBERED_REAPED = 4096


class Session(Protocol):
    used: bool
    last_work_at: float
    client: str


def is_work(text: str | None, transport: str) -> bool:
    """Whether a frame asks for work: a reset, a step or an MCP message on /ws; a tool call on /mcp."""
    if text is None or not ('"type"' in text or TOOL_CALL in text):
        return False
    with contextlib.suppress(ValueError, RecursionError):
        message = json.loads(text)
        if isinstance(message, dict):
            return message.get("method") == TOOL_CALL if transport == "mcp" else message.get("type") in WORK_TYPES
    return False


class FullServerRule:
    """The full server's clock and the cool-down of the clients it closed (see the module docstring)."""

    def __init__(self, capacity: int, full_idle_s: float) -> None:
        self.capacity, self.full_idle_s = capacity, full_idle_s
        self.reaped_at: dict[str, float] = {}

    def full(self, open_sessions: int) -> bool:
        return open_sessions >= self.capacity

    def seconds_left(self, session: Session, now: float) -> float:
        """Until a used session is closed by this rule (meaningful while the server is full)."""
        return session.last_work_at + self.full_idle_s - now

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

    def refusal(self, wait_s: float) -> str:
        return (f"The server is full, and a session of this client was closed for doing no work while others "
                f"waited: its place goes to them. Retry in about {wait_s:.0f} s.")
