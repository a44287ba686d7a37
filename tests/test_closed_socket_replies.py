"""A reply that meets a socket its client closed is dropped quietly and counted: the server's log gets one line a
minute at most, never a traceback per reply (an attacker closing sockets mid-statement logged 1,200 of them)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import IO, Any

import pytest
import uvicorn
from conftest import ROOT
from sql_helpers import SLOW, query
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from metric_tracker_rl.server_process import free_port, serving
from metric_tracker_rl.serving.app import websocket_options
from metric_tracker_rl.serving.hardening import Message, Receive, Scope, Send
from metric_tracker_rl.serving.sessions import DROPPED_LOG_EVERY_S, DroppedReplies, SessionLimits


def connect_from(port: int, source: str, path: str = "/ws") -> ClientConnection:
    sock = socket.create_connection(("127.0.0.1", port), timeout=60, source_address=(source, 0))
    return connect(f"ws://127.0.0.1:{port}{path}", sock=sock, open_timeout=60)


@contextlib.contextmanager
def logged_server(env: dict[str, str]) -> Iterator[tuple[int, IO[bytes]]]:
    """`python -m server.app` on a free loopback port: its port and its log (stdout and stderr)."""
    port = free_port()
    command = [sys.executable, "-m", "server.app", "--host", "127.0.0.1", "--port", str(port)]
    settings = {**os.environ, "ENABLE_WEB_INTERFACE": "false", **env}
    with tempfile.TemporaryFile() as log, serving(command, port, settings, log, cwd=ROOT):
        yield port, log


def session_when_free(port: int, source: str, deadline_s: float = 120) -> ClientConnection:
    """A reset session from `source`, once the per-client cap (1) has a place: its earlier session has ended."""
    deadline = time.monotonic() + deadline_s
    while True:
        ws = connect_from(port, source)
        with contextlib.suppress(ConnectionClosed):  # refused: an error, then the close
            ws.send(json.dumps({"type": "reset", "data": {"seed": 3, "difficulty": "easy", "max_steps": 400}}))
            if json.loads(ws.recv(timeout=120))["type"] == "observation":
                return ws
        ws.close()
        assert time.monotonic() < deadline, "the closed session never ended"
        time.sleep(0.2)


def read_log(log: IO[bytes]) -> str:
    log.flush()
    log.seek(0)
    return log.read().decode(errors="replace")


@pytest.mark.slow  # a statement that runs into its time limit
def test_closing_the_socket_during_a_slow_statement_logs_no_traceback() -> None:
    """A session sends a slow statement and closes its socket while it runs; once the session has ended (the
    address's one place is free again), the server's log holds no traceback."""
    with logged_server({"SQL_WORKERS": "2", "MAX_SESSIONS_PER_CLIENT": "1"}) as (port, log):
        ws = session_when_free(port, "127.0.0.7")
        ws.send(json.dumps(query(SLOW)))
        time.sleep(0.3)  # the statement runs
        ws.close()
        session_when_free(port, "127.0.0.7").close()
        text = read_log(log)
    assert "Traceback" not in text and "Cannot call" not in text, text[-3000:]


# --- the mechanism, on uvicorn over loopback -------------------------------------------------------------------


class LateReplies:
    """A WebSocket app that answers each message only after its client has left (`client_left` is set by the
    test once its socket is closed), then keeps receiving, as OpenEnv's session loop does."""

    def __init__(self) -> None:
        self.client_left = threading.Event()
        self.errors: list[BaseException] = []
        self.ended = threading.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "websocket"
        await receive()
        await send({"type": "websocket.accept"})
        try:
            while (message := await receive())["type"] == "websocket.receive":
                await asyncio.to_thread(self.client_left.wait, 30)
                await asyncio.sleep(0.2)  # the close has reached the server
                for _ in range(3):  # the reply, then what OpenEnv sends after a failed one
                    await send({"type": "websocket.send", "text": message.get("text") or ""})
            await send({"type": "websocket.close", "code": 1000})
        except BaseException as error:
            self.errors.append(error)
            raise
        finally:
            self.ended.set()


@contextlib.contextmanager
def uvicorn_serving(app: Any) -> Iterator[int]:
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", **websocket_options()
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_a_reply_to_a_closed_socket_is_dropped_counted_and_the_app_sees_its_client_leave(
    caplog: pytest.LogCaptureFixture,
) -> None:
    inner = LateReplies()
    limits = SessionLimits(
        inner, per_client=None, unreset_grace_s=60, idle_timeout_s=300, server=inner, capacity=10, full_idle_s=120
    )
    with caplog.at_level(logging.WARNING, logger="metric_tracker_rl.sessions"), uvicorn_serving(limits) as port:
        for round_ in range(2):
            with connect_from(port, "127.0.0.8", "/mcp") as ws:
                ws.send("{}")
            inner.client_left.set()
            assert inner.ended.wait(30)
            assert not inner.errors, inner.errors  # no send raised: the app left through its receive
            assert limits.dropped_replies.count == 3 * (round_ + 1)
            inner.client_left.clear()
            inner.ended.clear()
    lines = [record.getMessage() for record in caplog.records if record.name == "metric_tracker_rl.sessions"]
    assert lines == [
        "1 reply met a socket its client had closed, and was dropped (this is logged at most once a minute)"
    ]


def test_the_dropped_count_is_logged_at_most_once_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    dropped = DroppedReplies(clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="metric_tracker_rl.sessions"):
        for _ in range(500):
            dropped.note()
            now[0] += 0.5
    logged = [record.getMessage() for record in caplog.records]
    assert len(logged) == int(500 * 0.5 // DROPPED_LOG_EVERY_S) + 1
    assert logged[1].startswith("121 replies") and dropped.count == 500


def test_a_send_that_fails_otherwise_still_raises() -> None:
    async def broken(message: Message) -> None:
        raise RuntimeError("a programming error")

    guarded = DroppedReplies().guard(broken)
    with pytest.raises(RuntimeError):
        asyncio.run(guarded({"type": "websocket.send", "text": "x"}))
