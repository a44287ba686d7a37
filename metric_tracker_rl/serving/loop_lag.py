"""The event loop's lag, for the benchmarks only: how late a callback scheduled every INTERVAL_S ran, and whose time
the lateness was.

A client's slow answer has two causes that look alike from outside: the loop was blocked (its own thread was busy
with one piece of work) or the loop was starved (it was ready, but waited for a core, or for the GIL while another
thread of the server ran Python). Each stall is recorded with the loop thread's CPU time and the whole process's
over the same interval: loop CPU of a good part of the stall is blocking; little loop CPU and much process CPU is the
server's own threads holding the GIL; little of either is the machine's other work.

It runs only when METRIC_TRACKER_LOOP_LAG_FILE names a file (the lab's attack benchmarks set it); each stall over
REPORT_S is appended there as a JSON line. No client can read it.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from metric_tracker_rl.serving.asgi_types import ASGIApp, Receive, Scope, Send

LAG_FILE_VARIABLE = "METRIC_TRACKER_LOOP_LAG_FILE"
INTERVAL_S = 0.02
REPORT_S = 0.05  # stalls shorter than this are not written down
# A stall during which the loop's thread ran this share of it was the loop's own work (on a busy machine a blocked
# loop still waits for a core part of the time; a starved one runs next to nothing).
BLOCKED_SHARE = 0.25


def stall(lag_s: float, loop_cpu_s: float, process_cpu_s: float) -> dict[str, Any]:
    """One stall's record, with what it most likely was: the loop's own work, the server's other threads (the GIL),
    or the machine (a core)."""
    other_threads = max(process_cpu_s - loop_cpu_s, 0.0)
    share = BLOCKED_SHARE * lag_s
    cause = "loop" if loop_cpu_s >= share else "threads" if other_threads >= share else "machine"
    return {
        "at": round(time.time(), 3),
        "lag_s": round(lag_s, 4),
        "loop_cpu_s": round(loop_cpu_s, 4),
        "process_cpu_s": round(process_cpu_s, 4),
        "cause": cause,
    }


class Collections:
    """Seconds the loop's thread spent in the garbage collector's full collections (a full collection runs on
    whichever thread allocates past its threshold, and holds the GIL throughout)."""

    def __init__(self) -> None:
        self.thread, self.seconds, self.began = threading.get_ident(), 0.0, 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if info.get("generation") != 2 or threading.get_ident() != self.thread:
            return
        if phase == "start":
            self.began = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self.began


async def watch_loop(path: Path, interval_s: float = INTERVAL_S, report_s: float = REPORT_S) -> None:
    """Sleep `interval_s` over and over on the running loop; append each wake-up later than `report_s` to `path`
    (after a first line that says the probe runs)."""
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps({"started": round(time.time(), 3), "interval_s": interval_s}) + "\n")
    collections = Collections()
    gc.callbacks.append(collections)
    try:
        while True:
            began, loop_cpu, process_cpu = time.perf_counter(), time.thread_time(), time.process_time()
            collected = collections.seconds
            await asyncio.sleep(interval_s)
            lag = time.perf_counter() - began - interval_s
            if lag > report_s:
                record = stall(lag, time.thread_time() - loop_cpu, time.process_time() - process_cpu)
                record["full_gc_s"] = round(collections.seconds - collected, 4)
                with path.open("a", encoding="utf-8") as out:
                    out.write(json.dumps(record) + "\n")
    finally:
        gc.callbacks.remove(collections)


class LoopLag:
    """ASGI middleware that starts `watch_loop` with the server (on the lifespan's startup)."""

    def __init__(self, app: ASGIApp, path: Path) -> None:
        self.app, self.path = app, path
        self.task: asyncio.Task[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" and self.task is None:
            self.task = asyncio.get_running_loop().create_task(watch_loop(self.path))
        await self.app(scope, receive, send)


def watch_when_asked(app: FastAPI) -> FastAPI:
    """Add LoopLag to `app` when METRIC_TRACKER_LOOP_LAG_FILE is set."""
    path = os.environ.get(LAG_FILE_VARIABLE)
    if path:
        app.add_middleware(LoopLag, path=Path(path))
    return app
