"""A session as `sessions.SessionLimits` tracks it, whatever its transport, and the wait of its socket's receive,
which a timer or another task can stop so the session looks at its time again."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field

from metric_tracker_rl.serving.hardening import Message, Receive, Send


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
    working: bool = False  # a work message arrived and its answer has not been sent yet
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
