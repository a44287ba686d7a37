"""Where the eval's environment server comes from, decided as inference.py decides it: a URL (the task's
`base_url` argument, else METRIC_TRACKER_URL), else a local server process on a loopback port (the task's `port`, or a
free one; `server_process.child_server`), started when the first sample needs it and stopped when the Inspect run
ends (or at interpreter exit)."""

from __future__ import annotations

import atexit
import secrets
import threading
from contextlib import ExitStack

import anyio
from inspect_ai.hooks import Hooks, RunEnd, hooks

from metric_tracker_rl.server_process import child_server
from metric_tracker_rl.settings import ClientSettings, ServerSettings


def configured_url(base_url: str | None, settings: ClientSettings) -> str | None:
    """The URL of a running server, if one was named: the task argument first, then METRIC_TRACKER_URL."""
    url = (base_url or settings.server_url or "").strip()
    return url.rstrip("/") or None


class LocalServers:
    """At most one local server per mode (standard, held-out) and port asked for (0: any) for the process, shared by
    every sample."""

    def __init__(self) -> None:
        self._servers: dict[tuple[bool, int], tuple[str, ExitStack]] = {}
        self._lock = threading.Lock()

    async def url(self, held_out: bool, start_timeout_s: float, port: int = 0) -> str:
        """The URL of the local server for this mode on `port` (0: a free one), starting it on first use (in a
        worker thread, since starting waits for /health)."""
        return await anyio.to_thread.run_sync(self._ensure, held_out, start_timeout_s, port)

    def _ensure(self, held_out: bool, start_timeout_s: float, port: int) -> str:
        with self._lock:
            if (held_out, port) not in self._servers:
                self._servers[held_out, port] = self._start(held_out, start_timeout_s, port)
            return self._servers[held_out, port][0]

    @staticmethod
    def _start(held_out: bool, start_timeout_s: float, port: int) -> tuple[str, ExitStack]:
        # Held out: the deployment's secret when this process has one (episodes comparable across runs), else a
        # fresh one; the public package cannot rebuild an episode from its seed either way.
        secret = (ServerSettings.load().held_out_secret or secrets.token_hex(16)) if held_out else ""
        with ExitStack() as stack:
            url = stack.enter_context(child_server(held_out_secret=secret, timeout_s=start_timeout_s, port=port))
            return url, stack.pop_all()

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


async def server_url(base_url: str | None, held_out: bool, settings: ClientSettings, port: int = 0) -> str:
    return configured_url(base_url, settings) or await LOCAL_SERVERS.url(
        held_out, settings.server_start_timeout_s, port
    )
