"""How the server process runs and stops: uvicorn, whose first SIGTERM starts a drain (see
metric_tracker_rl.server.lifecycle), in one process or under uvicorn's worker supervisor (`--workers N`).

Light on imports, the application's are made lazily: a spawned worker must answer the supervisor's first health
check (5 s) before it imports the application, which takes longer than that on a busy two-core machine."""

from __future__ import annotations

import asyncio
import os
import signal
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.supervisors import multiprocess

DRAIN_VAR = "METRIC_TRACKER_DRAIN_S"
DEFAULT_DRAIN_S = 10.0
FORWARDED_VAR = "FORWARDED_ALLOW_IPS"
# A Hugging Face Space's container is reached only through the Space's proxy, which sits on a private network.
SPACE_PROXY_NETWORKS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
LOOPBACK = ("127.0.0.1", "::1")


def trusted_proxies() -> list[str]:
    """The peers whose X-Forwarded-For header names the client (and so the per-client session cap's client).

    Loopback always, since the debugger's own sessions forward the browser's address from there; then the proxies
    the deployment names in FORWARDED_ALLOW_IPS. When it names none, on a Hugging Face Space only (SPACE_ID set),
    the private networks the Space's proxy connects from; anywhere else a peer on a LAN or in a cluster is
    counted as itself, whatever header it sends."""
    named = [item.strip() for item in os.getenv(FORWARDED_VAR, "").split(",") if item.strip()]
    if not named and os.getenv("SPACE_ID"):
        named = list(SPACE_PROXY_NETWORKS)
    return list(dict.fromkeys([*LOOPBACK, *named]))


def drain_seconds() -> float:
    """The drain period from the environment; a value that is not a number of seconds is a clear error."""
    raw = (os.getenv(DRAIN_VAR) or "").strip()
    if not raw:
        return DEFAULT_DRAIN_S
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{DRAIN_VAR} must be a number of seconds, got {raw!r}") from None
    if not value >= 0:
        raise ValueError(f"{DRAIN_VAR} must be 0 or more seconds, got {raw!r}")
    return value


def serve_with_drain(app: str, *, host: str, port: int, workers: int, **options: Any) -> None:
    """`uvicorn.run(app, factory=True, ...)` with DrainingServer in every worker process."""
    drain_s = drain_seconds()  # a bad value is an error before anything starts
    config = uvicorn.Config(app, factory=True, host=host, port=port, workers=workers,
                            forwarded_allow_ips=trusted_proxies(), **options)
    if workers > 1:
        DrainingSupervisor(config, sockets=[config.bind_socket()]).run()
    else:
        DrainingServer(config, drain_s).run()


class DrainingServer(uvicorn.Server):
    """Uvicorn, with the first SIGTERM or SIGINT starting a drain; the server exits when it is done."""

    def __init__(self, config: uvicorn.Config, drain_s: float) -> None:
        super().__init__(config)
        self.drain_s = drain_s
        self._drain_task: asyncio.Task[None] | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._drain_task is not None or sig not in (signal.SIGTERM, signal.SIGINT):
            self.force_exit = self._drain_task is not None
            super().handle_exit(sig, frame)
            return
        loop = asyncio.get_event_loop()
        self._drain_task = loop.create_task(self._drain_then_exit())

    async def _drain_then_exit(self) -> None:
        from metric_tracker_rl.server.lifecycle import (
            LIFECYCLE,  # the application's module, loaded in this process by now
        )

        try:
            await LIFECYCLE.drain(self.drain_s)
        finally:
            self.should_exit = True


class DrainingWorker(multiprocess.Process):
    """One worker process whose server is a DrainingServer where uvicorn would build a plain Server.

    The worker reads METRIC_TRACKER_DRAIN_S itself: it inherits the environment the supervisor checked."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = DrainingServer(self.config, drain_seconds())
        return self._server


class DrainingSupervisor(multiprocess.Multiprocess):
    """Restarts dead workers and passes SIGTERM on to them, like uvicorn's, but starts DrainingWorker processes.

    uvicorn looks its worker class up as a module global each time it starts one, so the global is swapped for
    the length of run(), in the supervisor's own process only."""

    def run(self) -> None:
        plain_worker = multiprocess.Process
        multiprocess.Process = DrainingWorker
        try:
            super().run()
        finally:
            multiprocess.Process = plain_worker
