"""The benchmarks' loop-lag probe tells a loop blocked by its own work from a loop that waited for something else,
and a server started with its file set writes its stalls there."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
import time
from pathlib import Path

import httpx
import pytest

from metric_tracker_rl import server_process
from metric_tracker_rl.serving.loop_lag import LAG_FILE_VARIABLE, watch_loop


def _stalls_after(block: object, path: Path, report_s: float = 0.1) -> list[dict[str, object]]:
    async def run() -> None:
        watcher = asyncio.create_task(watch_loop(path, interval_s=0.01, report_s=report_s))
        await asyncio.sleep(0.05)
        block()  # type: ignore[operator]
        await asyncio.sleep(0.05)
        watcher.cancel()

    asyncio.run(run())
    return [json.loads(line) for line in path.read_text().splitlines()[1:]]


def _spin() -> None:
    end = time.thread_time() + 0.3
    while time.thread_time() < end:
        pass


def test_a_loop_busy_with_its_own_work_is_told_from_one_that_waited(tmp_path: Path) -> None:
    busy = _stalls_after(_spin, tmp_path / "busy.jsonl")
    waited = _stalls_after(lambda: time.sleep(0.3), tmp_path / "waited.jsonl")
    assert [stall["cause"] for stall in busy] == ["loop"]
    assert [stall["cause"] for stall in waited] == ["machine"]
    assert all(stall["lag_s"] >= 0.25 for stall in busy + waited)


def test_a_full_collection_on_the_loop_is_counted(tmp_path: Path) -> None:
    stalls = _stalls_after(gc.collect, tmp_path / "gc.jsonl", report_s=-1.0)  # every wake-up recorded
    assert any(stall["full_gc_s"] > 0 for stall in stalls)  # type: ignore[operator]


@pytest.mark.slow
def test_the_server_probes_its_loop_when_told(tmp_path: Path) -> None:
    path = tmp_path / "lag.jsonl"
    port = server_process.free_port()
    env = {**os.environ, **server_process.STANDARD_MODE, LAG_FILE_VARIABLE: str(path)}
    command = [sys.executable, "-m", "server.app", "--host", "127.0.0.1", "--port", str(port)]
    with (tmp_path / "log").open("w+b") as log, server_process.serving(command, port, env, log):
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=30).status_code == 200
    assert "interval_s" in json.loads(path.read_text().splitlines()[0])
