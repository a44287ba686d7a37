"""Clients that ride out a server restart.

A training run holds episodes open for hours against a server that restarts now and then (a deploy, an
out-of-memory kill, a Space rebuild, a replica drained behind a load balancer). Starting an episode is where a
client can wait: `reset_until_served` retries a reset with capped exponential backoff and jitter until a deadline
(`ClientSettings.retry_deadline_s`: `METRIC_TRACKER_RETRY_DEADLINE_S`, default 300 s, long enough for a Space
to restart), writing one line per wait, and only then raises `ServerUnavailable` with the
URL and the last error. A step whose connection dropped comes back to its session by itself (`client`); one
whose session is gone cannot be retried (its episode lived on the server that went away): `lost_connection_text` is
what a tool call answers instead.

Used by the TRL class (`adapters/trl.py`), `inference.py` and the Inspect solver, so they all wait alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

from websockets.exceptions import ConnectionClosed

RETRY_DEADLINE_VAR = "METRIC_TRACKER_RETRY_DEADLINE_S"
FIRST_WAIT_S = 0.5
MAX_WAIT_S = 15.0
# Close code 1001 "going away": a server that stops sends it to every session it closes.
GOING_AWAY = 1001

logger = logging.getLogger("metric_tracker_rl.reconnect")
T = TypeVar("T")


class ServerUnavailable(ConnectionError):
    """No episode could be started before the retry deadline."""


class SessionLost(ConnectionError):
    """A step after the connection that held the episode closed: the episode went with its session.
    `code` is the close code the server sent, None when the connection ended without one."""

    def __init__(self, message: str, code: int | None) -> None:
        super().__init__(message)
        self.code = code


def is_transient(error: BaseException) -> bool:
    """Errors a later attempt can get past: the server is down, restarting, draining or full."""
    if isinstance(error, (ConnectionError, ConnectionClosed, TimeoutError, OSError)):
        return True
    # A full server refuses a session with a CAPACITY_REACHED error frame; sessions free up as others end.
    return isinstance(error, RuntimeError) and "CAPACITY_REACHED" in str(error)


def describe(error: BaseException) -> str:
    text = " ".join(str(error).split()) or "no message"
    return f"{type(error).__name__}: {text[:300]}"


def backoff_waits(rng: random.Random | None = None) -> Iterator[float]:
    """Waits that double from FIRST_WAIT_S up to MAX_WAIT_S, each scaled by a random factor in [0.5, 1] so that
    many clients cut off together do not come back together."""
    rng = rng or random.Random()
    wait = FIRST_WAIT_S
    while True:
        yield wait * rng.uniform(0.5, 1.0)
        wait = min(MAX_WAIT_S, wait * 2)


class _Attempts:
    """The bookkeeping both variants share: when to give up and what each wait says."""

    def __init__(self, url: str, deadline_s: float, clock: Callable[[], float]) -> None:
        self.url, self.deadline_s, self.clock = url, deadline_s, clock
        self.started = clock()
        self.count = 0
        self.waits = backoff_waits()

    def next_wait(self, error: BaseException) -> float:
        """The wait before the next attempt, or ServerUnavailable when it would pass the deadline."""
        if not is_transient(error):
            raise error
        self.count += 1
        wait = next(self.waits)
        elapsed = self.clock() - self.started
        if elapsed + wait > self.deadline_s:
            raise ServerUnavailable(
                f"no episode could be started at {self.url} within {self.deadline_s:.0f} s ({self.count} "
                f"attempt(s); {RETRY_DEADLINE_VAR} sets the deadline); last error: {describe(error)}"
            ) from error
        logger.warning(
            "metric_tracker_rl: %s did not start an episode (%s); attempt %d, retrying in %.1f s (%.0f s left of %.0f)",
            self.url,
            describe(error),
            self.count,
            wait,
            self.deadline_s - elapsed,
            self.deadline_s,
        )
        return wait


def reset_until_served(
    reset: Callable[[], T],
    drop_connection: Callable[[], None],
    url: str,
    *,
    deadline_s: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """`reset()`, retried on connection errors until it answers or the deadline passes (then ServerUnavailable).
    `drop_connection()` discards a dead connection before each new attempt."""
    attempts = _Attempts(url, deadline_s, clock)
    while True:
        try:
            return reset()
        except Exception as error:  # sorted by is_transient: the rest is raised as it came
            wait = attempts.next_wait(error)
        with contextlib.suppress(Exception):  # a connection that is already dead may refuse to close
            drop_connection()
        sleep(wait)


async def areset_until_served(
    reset: Callable[[], Awaitable[T]],
    drop_connection: Callable[[], Awaitable[None]],
    url: str,
    *,
    deadline_s: float,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """`reset_until_served` for asyncio clients (the Inspect solver)."""
    attempts = _Attempts(url, deadline_s, clock)
    while True:
        try:
            return await reset()
        except Exception as error:  # as above
            wait = attempts.next_wait(error)
        with contextlib.suppress(Exception):  # as above
            await drop_connection()
        await asyncio.sleep(wait)


def lost_connection_text(error: BaseException) -> str:
    """What a tool call answers when its connection died mid-episode: the episode is lost with the connection."""
    code = error.code if isinstance(error, SessionLost) else getattr(getattr(error, "rcvd", None), "code", None)
    reason = "the server is stopping" if code == GOING_AWAY else "the connection to the server was lost"
    return (
        f"error: {reason} ({describe(error)}); this episode is over and its steps are lost. Stop calling "
        "tools: the next reset starts a new episode."
    )
