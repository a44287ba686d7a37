"""How the server process runs and stops: uvicorn, whose first SIGTERM starts a drain (see
metric_tracker_rl.serving.lifecycle), in one process or under uvicorn's worker supervisor (`--workers N`).

Light on imports, the application's are made lazily: a spawned worker must answer the supervisor's first health
check (5 s) before it imports the application, which takes longer than that on a busy two-core machine."""

from __future__ import annotations

import asyncio
import atexit
import copy
import logging
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

import uvicorn
from uvicorn.supervisors import multiprocess

if TYPE_CHECKING:
    from metric_tracker_rl.settings import ServerSettings


def serve_with_drain(app: str | Callable[[], Any], settings: ServerSettings, **options: Any) -> None:
    """`uvicorn.run(app, factory=True, ...)` with DrainingServer in every worker process. `app` is the factory, or
    with several workers its import string (each worker process imports it)."""
    config = uvicorn.Config(
        app,
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        forwarded_allow_ips=settings.trusted_proxies(),
        log_level=settings.log_level,
        log_config=log_config(),
        timeout_graceful_shutdown=CLOSE_AFTER_DRAIN_S,
        **options,
    )
    if settings.workers > 1:
        DrainingSupervisor(config, sockets=[config.bind_socket()]).run()
    else:
        DrainingServer(config, settings.drain_s).run()


# After the drain, how long uvicorn waits for connections that are still answering (a stream nobody ends) before it
# closes them: the drain has given every session its time already.
CLOSE_AFTER_DRAIN_S = 5

PROBE_PATHS = ("/health", "/ready")  # what a load balancer, Kubernetes or Docker's HEALTHCHECK asks every few seconds


class QuietProbes(logging.Filter):
    """Keeps answered probes out of the access log (they were most of a replica's lines); a failing one is kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if not isinstance(args, tuple) or len(args) != 5:  # uvicorn's access record: client, method, path, ...
            return True
        _, _, path, _, status = args
        return not (str(path).split("?", 1)[0] in PROBE_PATHS and status == 200)


def log_config() -> dict[str, Any]:
    """Uvicorn's logging configuration with QuietProbes on the access log. It is a configuration, not a filter
    added here, so each worker process of `--workers N` applies it as it configures its own logging."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["quiet_probes"] = {"()": f"{__name__}.QuietProbes"}
    config["handlers"]["access"]["filters"] = ["quiet_probes"]
    return config


class DrainingServer(uvicorn.Server):
    """Uvicorn, with the first SIGTERM or SIGINT starting a drain; the server exits when it is done."""

    def __init__(self, config: uvicorn.Config, drain_s: float) -> None:
        super().__init__(config)
        self.drain_s = drain_s
        self._drain_task: asyncio.Task[None] | None = None

    def run(self, sockets: Any = None) -> None:
        super().run(sockets)
        if self._drain_task is not None:
            exit_after_drain()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._drain_task is not None or sig not in (signal.SIGTERM, signal.SIGINT):
            self.force_exit = self._drain_task is not None
            super().handle_exit(sig, frame)
            return
        loop = asyncio.get_event_loop()
        self._drain_task = loop.create_task(self._drain_then_exit())

    async def _drain_then_exit(self) -> None:
        from metric_tracker_rl.serving.lifecycle import (
            LIFECYCLE,  # the application's module, loaded in this process by now
        )

        try:
            await LIFECYCLE.drain(self.drain_s)
        finally:
            self.should_exit = True


def exit_after_drain() -> None:
    """End a drained process at once: the exit functions run (the SQL workers stop, logs are flushed), the
    interpreter's teardown does not. Freeing a served process's heap object by object took about 2 s after the drain,
    with the port still held and the supervisor (a Space, Kubernetes, a test) waiting for nothing."""
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


class DrainingWorker(multiprocess.Process):
    """One worker process whose server is a DrainingServer where uvicorn would build a plain Server.

    The worker reads its settings itself: it inherits the environment the supervisor checked."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            from metric_tracker_rl.settings import ServerSettings

            self._server = DrainingServer(self.config, ServerSettings.load().drain_s)
        return self._server


class DrainingSupervisor(multiprocess.Multiprocess):
    """Restarts dead workers and passes SIGTERM on to them, like uvicorn's, but starts DrainingWorker processes.

    uvicorn looks its worker class up as a module global each time it starts one, so the global is swapped for
    the length of run(), in the supervisor's own process only."""

    def run(self) -> None:
        globals_of_uvicorn = vars(multiprocess)
        plain_worker = globals_of_uvicorn["Process"]
        globals_of_uvicorn["Process"] = DrainingWorker
        try:
            super().run()
        finally:
            globals_of_uvicorn["Process"] = plain_worker
