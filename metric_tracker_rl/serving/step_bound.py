"""A step belongs to its connection, and answers within a wall-clock bound.

Two ways a step can be given up, one mechanism: the server's step bound (STEP_TIMEOUT_S) passes, or the connection
that sent the step closes. Either way the step's work is cancelled where it waits or runs (a queued statement leaves
the fair gate, a running one is stopped in its SQL worker, which serves the next at once) and nothing of it counts:
under the bound the client reads an error observation that says why, and its episode goes on; a closed connection
reads nothing, and its place and worker are free at once.

`Connection` watches a socket for its close while the app is busy with a step: it reads the socket's messages ahead
of the app, every frame the socket sends (those the frame guard then refuses unparsed too), so a close that follows
a step, or a step and pipelined messages, is seen while the step runs. Past the largest of them (one message of any
size the server accepts: a full report), the messages read ahead are bounded by LOOKAHEAD_BYTES,
LOOKAHEAD_MESSAGES and LOOKAHEAD_WORK_S of parse work (`message_cost`). A socket that sends more than that ahead of
the app is closed with OVERRUN_CODE and OVERRUN_REASON, what it sent ahead is dropped, and its running step is given
up as "overrun", its answer saying so: a close hidden behind padded or refused frames is seen all the same. The
frame guard gives each session socket one (`watched`, outside the guard, so no frame escapes it), the session
middleware each HTTP tool call on a session one over its request (a client that hangs up is seen as a close); the
step reads it from `CONNECTION`.
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
from metric_tracker_rl.serving.message_cost import parse_cost_s
from metric_tracker_rl.settings import DEFAULT_STEP_TIMEOUT_S

T = TypeVar("T")
# Messages read ahead of the app at most: small ones are cheap to hold (a client may pipeline a storm of resets), and
# the bytes are what is bounded; the count bounds messages with no text.
LOOKAHEAD_MESSAGES = 1024
LOOKAHEAD_BYTES = 64 * 1024
# The parse work (`message_cost.parse_cost_s`) of the messages read ahead past the largest: a frame refused for too
# many values costs as much as a few reports, and is counted whether or not it is ever parsed.
LOOKAHEAD_WORK_S = 0.25
DISCONNECTS = ("websocket.disconnect", "http.disconnect")
OVERRUN_CODE = 1008  # policy violation: the close code of a socket that sent past the read-ahead bound
OVERRUN_REASON = "more was sent ahead of a running step than the server reads ahead (64 KB or 1024 messages)"


class Connection:
    """One socket's messages, read ahead of the app so that its close is known while a step runs (`closed`);
    `overrun` once it sent past the read-ahead bound."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._ahead: collections.deque[tuple[Message, int, float]] = collections.deque()  # message, bytes, work
        self._ahead_bytes = 0
        self._ahead_work = 0.0
        self._arrived = asyncio.Event()
        self.closed = asyncio.Event()
        self.overrun = False
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
        message, size, work = self._ahead.popleft()
        self._ahead_bytes -= size
        self._ahead_work -= work
        return message

    async def _read_ahead(self) -> None:
        """Read the socket's messages as they come. One that arrives while the app has, past the largest one,
        LOOKAHEAD_MESSAGES, LOOKAHEAD_BYTES or LOOKAHEAD_WORK_S of them unread ends the connection (`OVERRUN_CODE`):
        no client sends that much ahead of a step still running, and a reader that stopped there would never see
        the close behind it, so the step would outlive its client. What it sent ahead is dropped unanswered."""
        while True:
            message = await self._receive()
            if message.get("type") not in DISCONNECTS and self._full():
                self.overrun = True
                self._ahead.clear()
                self._ahead_bytes, self._ahead_work = 0, 0.0
                message = {"type": "websocket.disconnect", "code": OVERRUN_CODE, "reason": OVERRUN_REASON}
            content = message.get("text") or message.get("bytes") or b""
            work = parse_cost_s(content) if content else 0.0
            self._ahead.append((message, len(content), work))
            self._ahead_bytes += len(content)
            self._ahead_work += work
            self._arrived.set()
            if message.get("type") in DISCONNECTS:
                self.closed.set()
                return

    def _full(self) -> bool:
        """Whether what is read ahead, past its largest message (a report, which may be any size the server
        accepts), is at a bound."""
        if not self._ahead:
            return False
        largest_bytes = max(size for _, size, _ in self._ahead)
        largest_work = max(work for _, _, work in self._ahead)
        return (
            len(self._ahead) > LOOKAHEAD_MESSAGES
            or self._ahead_bytes - largest_bytes >= LOOKAHEAD_BYTES
            or self._ahead_work - largest_work >= LOOKAHEAD_WORK_S
        )


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
    """A socket's receive, read ahead by a `Connection` that the steps of this task see as `CONNECTION`; `receive`
    as it is where one already reads this task's socket ahead (the frame guard's, outside the session's)."""
    if CONNECTION.get() is not None:
        yield receive
        return
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
    """A step the server gave up: `reason` "bound" (its time bound passed), "closed" (its connection closed) or
    "overrun" (its connection sent past the read-ahead bound, and is being closed for it)."""

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
        closed_now = closed is not None and closed.done() and not closed.cancelled()
        reason = "bound" if not closed_now else "overrun" if connection is not None and connection.overrun else "closed"
        return GivenUp(reason, bound_s, time.monotonic() - began)
