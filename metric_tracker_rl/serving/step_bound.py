"""A step belongs to its connection, and answers within a wall-clock bound.

Two ways a step can be given up, one mechanism: the server's step bound (STEP_TIMEOUT_S) passes, or the connection
that sent the step closes. Either way the step's work is cancelled where it waits or runs (a queued statement leaves
the fair gate, a running one is stopped in its SQL worker, which serves the next at once) and nothing of it counts:
under the bound the client reads an error observation that says why, and its episode goes on; a closed connection
reads nothing, and its place and worker are free at once.

`Connection` watches a socket for its close while the app is busy with a step: it reads the socket's messages ahead
of the app, up to `LOOKAHEAD_BYTES` of them (and `LOOKAHEAD_MESSAGES`), so a close that follows a step, or a
step and a pipelined message, is seen while the step runs. A socket that sends more than that ahead of the app is
closed (code 1008) and its running step given up: a close hidden behind a padded message is seen all the same. The
session middleware gives each socket one (`watched`), and each HTTP tool call on a session one over its request (a
client that hangs up is seen as a close); the step reads it from `CONNECTION`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Coroutine
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from metric_tracker_rl.serving.asgi_types import Message, Receive
from metric_tracker_rl.settings import DEFAULT_STEP_TIMEOUT_S

T = TypeVar("T")
# Messages read ahead of the app at most: small ones are cheap to hold (a client may pipeline a storm of resets), and
# the bytes are what is bounded; the count bounds messages with no text.
LOOKAHEAD_MESSAGES = 1024
LOOKAHEAD_BYTES = 64 * 1024
DISCONNECTS = ("websocket.disconnect", "http.disconnect")
OVERRUN_CODE = 1008  # policy violation: the close code of a socket that sent past the read-ahead bound
OVERRUN_REASON = "more messages were sent ahead of a running step than the server reads ahead"


class Connection:
    """One socket's messages, read ahead of the app so that its close is known while a step runs (`closed`)."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._ahead: collections.deque[Message] = collections.deque()
        self._ahead_bytes = 0
        self._arrived = asyncio.Event()
        self.closed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._reader = asyncio.get_running_loop().create_task(self._read_ahead())

    def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()

    async def receive(self) -> Message:
        """The next message, as the socket's own receive gives it; cancellable without losing one."""
        while not self._ahead:
            if self._reader is None or self._reader.done():
                return await self._receive()  # not reading ahead (stopped, or ended on a close already taken)
            self._arrived.clear()
            await self._arrived.wait()
        message = self._ahead.popleft()
        self._ahead_bytes -= _size(message)
        return message

    async def _read_ahead(self) -> None:
        """Read the socket's messages as they come. One that arrives while the app has LOOKAHEAD_MESSAGES or
        LOOKAHEAD_BYTES of them unread ends the connection (`OVERRUN_CODE`): no client sends that much ahead of a
        step still running, and a reader that stopped there would never see the close behind it, so the step would
        outlive its client."""
        while True:
            message = await self._receive()
            if message.get("type") not in DISCONNECTS and self._full():
                message = {"type": "websocket.disconnect", "code": OVERRUN_CODE, "reason": OVERRUN_REASON}
            self._ahead.append(message)
            self._ahead_bytes += _size(message)
            self._arrived.set()
            if message.get("type") in DISCONNECTS:
                self.closed.set()
                return

    def _full(self) -> bool:
        return len(self._ahead) >= LOOKAHEAD_MESSAGES or (bool(self._ahead) and self._ahead_bytes >= LOOKAHEAD_BYTES)


def _size(message: Message) -> int:
    return len(message.get("text") or message.get("bytes") or b"")


CONNECTION: ContextVar[Connection | None] = ContextVar("connection", default=None)
# Set for the work `within_bound` runs: its first item turns True just before the work is cancelled, so that work
# which catches a cancellation of its own (a demoted statement's stop) can tell that the step itself was given up.
GIVING_UP: ContextVar[list[bool] | None] = ContextVar("giving_up", default=None)
_BOUND_S = [DEFAULT_STEP_TIMEOUT_S]


def configure(bound_s: float) -> None:
    """Set the server's step bound (STEP_TIMEOUT_S), read by every step that may wait."""
    _BOUND_S[0] = bound_s


def step_bound_s() -> float:
    return _BOUND_S[0]


def step_given_up() -> bool:
    """Whether the step this code runs for (under `within_bound`) has been given up."""
    giving_up = GIVING_UP.get()
    return giving_up is not None and giving_up[0]


@contextlib.asynccontextmanager
async def watched(receive: Receive) -> AsyncIterator[Receive]:
    """A socket's receive, read ahead by a `Connection` that the steps of this task see as `CONNECTION`."""
    connection = Connection(receive)
    connection.start()
    token = CONNECTION.set(connection)
    try:
        yield connection.receive
    finally:
        CONNECTION.reset(token)
        connection.stop()


@dataclass(frozen=True)
class GivenUp:
    """A step the server gave up: `reason` "bound" (its time bound passed) or "closed" (its connection closed)."""

    reason: str
    bound_s: float
    seconds: float


async def uncancelled(work: Awaitable[T]) -> T:
    """`work`'s result even when the step is given up meanwhile: for work that cannot be stopped halfway (a step on
    a thread), whose result then stands and is answered."""
    inner = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(inner)
    except asyncio.CancelledError:
        if inner.cancelled():
            raise
        return await inner


async def within_bound(work: Coroutine[Any, Any, T], bound_s: float) -> T | GivenUp:
    """`work`'s result, or GivenUp once `bound_s` has passed or the step's connection closed, `work` cancelled.
    Work that finishes anyway (a part it shields, such as grading on a thread) keeps its result."""
    began = time.monotonic()
    giving_up = [False]
    token = GIVING_UP.set(giving_up)
    try:
        task = asyncio.ensure_future(work)  # in a copy of this context: it sees `giving_up`
    finally:
        GIVING_UP.reset(token)
    connection = CONNECTION.get()
    closed = None if connection is None else asyncio.ensure_future(connection.closed.wait())
    try:
        done, _ = await asyncio.wait(
            {task} if closed is None else {task, closed}, timeout=bound_s, return_when=asyncio.FIRST_COMPLETED
        )
    except asyncio.CancelledError:
        giving_up[0] = True
        task.cancel()
        raise
    finally:
        if closed is not None:
            closed.cancel()
    if task in done:
        return task.result()
    giving_up[0] = True
    task.cancel()
    try:
        return await task
    except asyncio.CancelledError:
        if not task.cancelled():
            raise  # this task itself is being cancelled
        reason = "closed" if closed is not None and closed.done() and not closed.cancelled() else "bound"
        return GivenUp(reason, bound_s, time.monotonic() - began)
