"""What every load benchmark shares: a server process on a loopback port, one request over a WebSocket, and a
start line that opens the measurement window once every session has arrived."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection

from metric_tracker_rl.server_process import free_port, serving

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Server:
    url: str
    pid: int

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/ws"

    def rss_mb(self) -> float:
        return _status_field(self.pid, "VmRSS") / 1024

    def threads(self) -> int:
        return int(_status_field(self.pid, "Threads"))

    def cpu_s(self) -> float:
        """User + system CPU time the server process has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def tree_cpu_s(self) -> float:
        """User + system CPU time of the server and of every process under it (its SQL workers), the ones it has
        reaped included."""
        parents: dict[int, int] = {}
        times: dict[int, int] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # ended while listed
            pid = int(stat.parent.name)
            parents[pid], times[pid] = int(fields[1]), sum(int(value) for value in fields[11:15])
        tree, found = {self.pid}, True
        while found:
            found = False
            for pid, parent in parents.items():
                if parent in tree and pid not in tree:
                    tree.add(pid)
                    found = True
        return sum(times.get(pid, 0) for pid in tree) / os.sysconf("SC_CLK_TCK")


def _status_field(pid: int, name: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return float(line.split()[1])
    raise KeyError(name)


@contextlib.contextmanager
def serve(module: str, max_sessions: int, log_name: str, tree: Path = ROOT) -> Iterator[Server]:
    """`python -m <module> --no-web` on a free loopback port, one worker; stopped on exit. `tree` is the checkout
    whose package it serves (another one, such as main's, for a side-by-side comparison)."""
    port = free_port()
    env = {**os.environ, "MAX_CONCURRENT_ENVS": str(max_sessions), "ENABLE_WEB_INTERFACE": "false"}
    if tree != ROOT:
        # The package comes from `tree`, for the server and for the SQL workers it starts (which add the server's
        # PYTHONPATH to their own), ahead of the editable install of this checkout.
        env["PYTHONPATH"] = str(tree)
    log_path = ROOT / "artifacts" / f"{log_name}.log"
    log_path.parent.mkdir(exist_ok=True)
    with log_path.open("w+b") as log:
        command = [sys.executable, "-m", module, "--host", "127.0.0.1", "--port", str(port), "--no-web"]
        with serving(command, port, env, log, cwd=tree, timeout_s=120) as process:
            yield Server(f"http://127.0.0.1:{port}", process.pid)


async def request(ws: ClientConnection, message: dict[str, Any]) -> dict[str, Any]:
    await ws.send(json.dumps(message))
    return json.loads(await ws.recv())


class StartLine:
    """Sessions connect and reset first; the measurement window opens once all of them have arrived.

    The server's CPU time is read when the window opens and when it closes, so connecting and resetting
    are not counted."""

    def __init__(
        self, server: Server, sessions: int, duration_s: float, cpu_s: Callable[[], float] | None = None
    ) -> None:
        self._server = server
        self._cpu_s = cpu_s or server.cpu_s  # the CPU clock the window reads (the server process's by default)
        self._waiting = sessions
        self._open = asyncio.Event()
        self._duration_s = duration_s
        self.end = float("inf")
        self.server_cpu_s = 0.0
        self.process_cpu_s = 0.0  # the server process's alone (server_cpu_s may count its SQL workers too)
        self.client_cpu_s = 0.0

    async def arrive(self) -> None:
        self._waiting -= 1
        if self._waiting == 0:
            self.end = time.perf_counter() + self._duration_s
            self._open.set()
        await self._open.wait()

    async def watch_cpu(self) -> None:
        await self._open.wait()
        before, process_before, client_before = self._cpu_s(), self._server.cpu_s(), time.process_time()
        await asyncio.sleep(max(self.end - time.perf_counter(), 0.0))
        self.server_cpu_s = self._cpu_s() - before
        self.process_cpu_s = self._server.cpu_s() - process_before
        self.client_cpu_s = time.process_time() - client_before
