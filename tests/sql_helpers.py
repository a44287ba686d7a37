"""Shared by the SQL pool's and the SQL tool's tests: cheap and slow statements, a fake clock and turns held on a
fair gate, worker kills, an episode's public tables, and a real server with sessions over its socket."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from conftest import ROOT
from core_helpers import reset_episode
from websockets.sync.client import ClientConnection, connect

from metric_tracker_rl import MetricTrackerRlAction
from metric_tracker_rl.server_process import free_port, serving
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.sql.fair_gate import FairGate
from metric_tracker_rl.world.public_episode import PublicEpisode

CHEAP = "SELECT count(*) AS n FROM daily"
# Runs into the time limit: TIME_LIMIT_S of a worker's CPU (killed at the limit, or stopped by the interrupt).
SLOW = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def started(gate: FairGate, clients: list[str]) -> tuple[list[str], list[asyncio.Task[None]], asyncio.Event]:
    """Ask for a turn for each client in order; return who got one at once, the holders, and their release."""
    release = asyncio.Event()
    order: list[str] = []

    async def hold(client: str) -> None:
        async with gate.turn(client):
            order.append(client)
            await release.wait()

    tasks = [asyncio.create_task(hold(client)) for client in clients]
    for _ in range(10):
        await asyncio.sleep(0)
    return list(order), tasks, release


def kill_new_workers(pids: Any, kills: int) -> list[int]:
    """SIGKILL each worker process that appears (`pids()` lists them), as soon as it appears, `kills` times."""
    killed: list[int] = []
    deadline = time.monotonic() + 120
    while len(killed) < kills and time.monotonic() < deadline:
        for pid in pids():
            if pid not in killed and len(killed) < kills:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        time.sleep(0.002)
    return killed


def sql_step(env: MetricTrackerRlEnvironment, sql: str = CHEAP) -> Any:
    return env.step(MetricTrackerRlAction(analysis_method="query", analysis_args={"sql": sql}))


@contextlib.contextmanager
def server_process(env: dict[str, str]) -> Iterator[tuple[str, int]]:
    """A server (python -m server.app) on a free loopback port: its URL and process id."""
    port = free_port()
    command = ["python", "-m", "server.app", "--host", "127.0.0.1", "--port", str(port)]
    settings = {**os.environ, "ENABLE_WEB_INTERFACE": "false", "MAX_SESSIONS_PER_CLIENT": "16", **env}
    with tempfile.TemporaryFile() as log, serving(command, port, settings, log, cwd=ROOT) as process:
        yield f"http://127.0.0.1:{port}", process.pid


def ws_ask(ws: ClientConnection, message: dict[str, Any]) -> dict[str, Any]:
    ws.send(json.dumps(message))
    return json.loads(ws.recv(timeout=120))


def query(sql: str) -> dict[str, Any]:
    return {"type": "step", "data": {"analysis_method": "query", "analysis_args": {"sql": sql}}}


def open_session(url: str, source: str = "127.0.0.1") -> ClientConnection:
    ws = ws_session(url, source)
    reply = ws_ask(ws, {"type": "reset", "data": {"seed": 3, "difficulty": "easy", "max_steps": 400}})
    assert reply["type"] == "observation", reply
    return ws


def ws_session(url: str, source: str = "127.0.0.1") -> ClientConnection:
    """A WebSocket session from `source` (another loopback address is another client)."""
    sock = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=60, source_address=(source, 0))
    return connect(url.replace("http", "ws", 1) + "/ws", sock=sock, open_timeout=60)


PUBLIC_TABLES = {"daily", "hourly", "annotations"}


def public_episode(seed: int = 3, difficulty: str = "medium") -> PublicEpisode:
    return reset_episode(seed=seed, difficulty=difficulty).public


def worker_children(parent: int) -> list[int]:
    """The SQL worker processes of `parent` (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError):
            if (
                int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == parent
                and b"metric_tracker_rl.sql.worker" in (entry / "cmdline").read_bytes()
            ):
                found.append(int(entry.name))
    return found
