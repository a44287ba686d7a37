"""Bounds on the WebSocket frames a client has begun and not finished.

Uvicorn's WebSocket protocol (websockets' sans-I/O parser) keeps a frame's bytes until its last one arrives, up to
the message cap (1 MiB) a connection, and a message's frames until its last frame; the app hears of a message only
once it is whole, so nothing of ours sees those bytes. A client that opens its sessions and sends most of a frame
on each, then stops, would hold that much of the server's memory for as long as it keeps them open.
`BoundedWebSocketProtocol`, the protocol the server gives uvicorn (`app.websocket_options`), charges each client
(its address, grouped as every other limit groups it) for its connections' unfinished frames and messages, in the
ledger of unfinished request bodies (`hardening.UNFINISHED`: UNFINISHED_BYTES_PER_CLIENT for both together), and
closes a connection

- whose unfinished bytes would take its client past that share, with 1009 ("message too big");
- whose frame or message begun is not finished within BODY_DEADLINE_S, with 1008 ("policy violation").

Its bytes are then dropped with the connection, and the memory they took is returned to the system
(`memory_release`: freed in the middle of the heap, the allocator would keep it). Uvicorn stops reading a connection
as soon as one whole message waits for the app, so a client that sends its next step while a long one runs (queued
behind the SQL gate, say) has its pings unanswered until that step ends, and its keepalive closes the session. This
protocol reads on while fewer than QUEUED_MESSAGES messages wait, their bytes charged to the client in the same
ledger (without the deadline: a whole message waits for the app, not for the client).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from metric_tracker_rl.serving.client_address import address_group, client_of
from metric_tracker_rl.serving.hardening import (
    BODY_DEADLINE_S,
    MESSAGE_TOO_BIG,
    TRIM_AFTER_BYTES,
    UNFINISHED,
    UNFINISHED_BYTES_PER_CLIENT,
    BodyTooLarge,
)
from metric_tracker_rl.serving.memory_release import release_soon

POLICY_VIOLATION = 1008
QUEUED_MESSAGES = 4  # whole messages a connection may have waiting for the app while it still reads (and pongs)


class BoundedWebSocketProtocol(WebSocketsSansIOProtocol):
    """Uvicorn's sans-I/O WebSocket protocol, with the bounds of the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.charged = 0  # this connection's unfinished bytes, as charged to `charged_to`
        self.charged_to: str | None = None
        self.unfinished_since: asyncio.TimerHandle | None = None
        self.queued_sizes: deque[int] = deque()  # the bytes of each whole message waiting for the app

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self.transport.is_closing():
            self.charge(self.unfinished_bytes(), sum(self.queued_sizes))

    def unfinished_bytes(self) -> int:
        return len(self.conn.reader.buffer) + sum(len(frame) for frame in self.frames)

    def send_receive_event_to_app(self) -> None:
        size, waiting = sum(len(frame) for frame in self.frames), self.queue.qsize()
        super().send_receive_event_to_app()
        if self.queue.qsize() > waiting:
            self.queued_sizes.append(size)
        self.keep_reading()

    async def receive(self) -> Any:
        message = await super().receive()
        if message["type"] == "websocket.receive" and self.queued_sizes:
            self.queued_sizes.popleft()
            self.charge(self.unfinished_bytes(), sum(self.queued_sizes))
        self.keep_reading()
        return message

    def keep_reading(self) -> None:
        """Read on while fewer than QUEUED_MESSAGES messages wait (uvicorn pauses at the first)."""
        if self.read_paused and self.queue.qsize() < QUEUED_MESSAGES and not self.transport.is_closing():
            self.read_paused = False
            self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        dropped = self.unfinished_bytes()
        self.charge(0)
        super().connection_lost(exc)
        if dropped >= TRIM_AFTER_BYTES:
            release_soon()  # the frame's buffer was freed in the middle of the heap: give it back to the system

    def client_name(self) -> str:
        """The client the connection counts as: the forwarded one once the handshake has named it."""
        scope = getattr(self, "scope", None)
        return client_of(scope) if scope is not None else address_group(self.client[0] if self.client else "unknown")

    def charge(self, unfinished: int, queued: int = 0) -> None:
        """Hold the client to `unfinished` plus `queued` bytes for this connection now, and time the oldest
        unfinished frame (a whole message waiting for the app is not timed)."""
        client = self.charged_to or self.client_name()
        UNFINISHED.release(client, self.charged)
        self.charged, self.charged_to = 0, client
        if unfinished + queued:
            try:
                UNFINISHED.add(client, unfinished + queued)
            except BodyTooLarge:
                UNFINISHED.release(client, unfinished + queued)
                self.refuse(
                    MESSAGE_TOO_BIG,
                    f"unfinished frames of this client over {UNFINISHED_BYTES_PER_CLIENT} bytes together",
                )
                return
            self.charged = unfinished + queued
        if unfinished:
            if self.unfinished_since is None:
                self.unfinished_since = self.loop.call_later(BODY_DEADLINE_S, self.too_slow)
        elif self.unfinished_since is not None:
            self.unfinished_since.cancel()
            self.unfinished_since = None

    def too_slow(self) -> None:
        self.unfinished_since = None
        if self.charged and not self.conn.close_sent:
            self.refuse(POLICY_VIOLATION, f"frame not finished within {BODY_DEADLINE_S:g} s")

    def refuse(self, code: int, reason: str) -> None:
        """Close the connection with `code` and drop its unfinished bytes (the app hears that its client left)."""
        dropped = self.unfinished_bytes()  # more than it was charged, when its new bytes took it past the share
        self.charge(0)
        self.conn.fail(code, reason)
        self.handle_parser_exception()
        if dropped >= TRIM_AFTER_BYTES:
            release_soon()
