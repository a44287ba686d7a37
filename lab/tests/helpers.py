"""What several of the lab's tests share: the repository's root, a Markdown table a page shows, the episode a reset
builds, sessions held open."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from pathlib import Path
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.generation import build_episode
from metric_tracker_rl.generation.episode import Episode

ROOT = Path(__file__).resolve().parents[2]
RELEASE_WAIT_S = 30.0  # only bounds the polling


def markdown_table_with_header(text: str, header: str) -> str | None:
    """The Markdown table of `text` whose first line is `header`, as its lines joined; None if there is none."""
    lines = text.splitlines()
    for number, line in enumerate(lines):
        if line == header:
            rows = [header]
            for following in lines[number + 1 :]:
                if not following.startswith("|"):
                    break
                rows.append(following)
            return "\n".join(rows)
    return None


def reset_episode(**reset: Any) -> Episode:
    """The episode a reset with these arguments builds, at the tier its difficulty names."""
    config = resolve_episode_config(**reset)
    return build_episode(config)


def open_session(url: str, source: str) -> ClientConnection:
    """A WebSocket connection to `url` from the loopback address `source`."""
    port = int(url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=30, source_address=(source, 0))
    return connect(url.replace("http", "ws", 1) + "/ws", sock=sock, open_timeout=30)


def refused(ws: ClientConnection) -> bool:
    """Reset once: whether the server refused the session (and then closed it)."""
    with contextlib.suppress(ConnectionClosed):  # a refused session may be closed before this is sent
        ws.send(json.dumps({"type": "reset", "data": {}}))
    return json.loads(ws.recv(timeout=60))["type"] == "error"


def hold(stack: contextlib.ExitStack, url: str, source: str, count: int) -> list[ClientConnection]:
    """Open and reset `count` sessions from `source`, waiting for sessions just closed to give their places back."""
    held: list[ClientConnection] = []
    deadline = time.monotonic() + RELEASE_WAIT_S
    while len(held) < count:
        ws = stack.enter_context(open_session(url, source))
        if not refused(ws):
            held.append(ws)
            continue
        assert time.monotonic() < deadline, f"only {len(held)} of {count} sessions could be opened"
        time.sleep(0.1)
    return held
