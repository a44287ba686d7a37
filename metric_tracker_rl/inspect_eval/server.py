"""Where the eval's environment server comes from, decided as inference.py decides it: a URL (the task's
`base_url` argument, else the BASE_URL environment variable), else a local server process on a loopback port,
started when the first sample needs it and stopped when the Inspect run ends (or at interpreter exit)."""

from __future__ import annotations

import atexit
import os
import secrets
import sys
import tempfile
import threading
from contextlib import ExitStack

import anyio
from inspect_ai.hooks import Hooks, RunEnd, hooks

from metric_tracker_rl.local_server import free_port, serving

# The held-out secret the server reads (mixed into every random stream so that the public package
# cannot rebuild an episode from its seed).
SECRET_VARIABLE = "METRIC_TRACKER_SECRET"
START_TIMEOUT_S = 120.0


def configured_url(base_url: str | None) -> str | None:
    """The URL of a running server, if one was named: the task argument first, then BASE_URL."""
    url = (base_url or os.getenv("BASE_URL") or "").strip()
    return url.rstrip("/") or None


class LocalServers:
    """At most one local server per mode (standard, held-out) for the process, shared by every sample."""

    def __init__(self) -> None:
        self._servers: dict[bool, tuple[str, ExitStack]] = {}
        self._lock = threading.Lock()

    async def url(self, held_out: bool) -> str:
        """The URL of the local server for this mode, starting it on first use (in a worker thread, since
        starting waits for /health)."""
        return await anyio.to_thread.run_sync(self._ensure, held_out)

    def _ensure(self, held_out: bool) -> str:
        with self._lock:
            if held_out not in self._servers:
                self._servers[held_out] = self._start(held_out)
            return self._servers[held_out][0]

    @staticmethod
    def _start(held_out: bool) -> tuple[str, ExitStack]:
        port = free_port()
        command = [sys.executable, "-m", "metric_tracker_rl.server.app", "--host", "127.0.0.1", "--port", str(port),
                   "--no-web"]
        env = {**os.environ, "ENABLE_WEB_INTERFACE": "false", "METRIC_TRACKER_DEBUG": ""}
        env.pop(SECRET_VARIABLE, None)
        if held_out:
            env[SECRET_VARIABLE] = os.getenv(SECRET_VARIABLE) or secrets.token_hex(16)
        with ExitStack() as stack:
            log = stack.enter_context(tempfile.TemporaryFile())
            stack.enter_context(serving(command, port, env, log, timeout_s=START_TIMEOUT_S))
            return f"http://127.0.0.1:{port}", stack.pop_all()

    def running(self) -> list[str]:
        with self._lock:
            return [url for url, _ in self._servers.values()]

    def stop_all(self) -> None:
        with self._lock:
            servers, self._servers = list(self._servers.values()), {}
        for _, stack in servers:
            stack.close()


LOCAL_SERVERS = LocalServers()
atexit.register(LOCAL_SERVERS.stop_all)


@hooks(name="metric_tracker_local_server", description="Stops the local metric_tracker_rl server at run end.")
class StopLocalServers(Hooks):
    """A local server lives for one Inspect run (one `inspect eval` or `eval()` call)."""

    async def on_run_end(self, data: RunEnd) -> None:
        await anyio.to_thread.run_sync(LOCAL_SERVERS.stop_all)


async def server_url(base_url: str | None, held_out: bool) -> str:
    return configured_url(base_url) or await LOCAL_SERVERS.url(held_out)

