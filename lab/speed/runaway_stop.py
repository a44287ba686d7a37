"""What stopping a runaway statement costs once its requester is gone: the interrupt the pool sends first (the
worker keeps its episode's tables and serves the next statement) against a kill and a new worker.

In one run, on the environment's own SqlPool (no server, no transport):
- interrupt: each runaway shape is sent --runs times over a warehouse episode's tables, its caller cancelled after
  --after seconds (as a closed connection cancels its step); measured: the wall time from the cancel until the
  worker is free again (the cancelled call returns then), the workers' CPU seconds in that time, and whether the
  pool had to kill and replace a worker;
- kill: --starts new workers, each from its start until it says it is ready (wall and its CPU), then the episode's
  first statement on it, which sends its tables again (wall), against the same statement on a warm worker.

    uv run python -m lab.speed.runaway_stop

It writes lab/artifacts/runaway_stop.json; lab/docs/attacks.md cites it. A measurement, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.generation import build_episode
from metric_tracker_rl.sql import pool as sql_pool
from metric_tracker_rl.sql.columns import ServedTable
from metric_tracker_rl.sql.worker_process import WorkerProcess

ARTIFACT = Path(__file__).resolve().parents[2] / "lab" / "artifacts" / "runaway_stop.json"
# Runaways of three kinds: one the engine recurses in, one that aggregates a large product, one that joins without
# end. Each runs far past the cancel.
RUNAWAYS = {
    "recursive CTE": "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) SELECT count(*) FROM t",
    "1M x 200 group-by": "SELECT a % 977 AS k, count(*) AS n FROM range(1000000) x(a), range(200) y(b) GROUP BY k",
    "100M x 1000 cross join": "SELECT count(*) FROM range(100000000) x(a), range(1000) y(b) WHERE a + b < 0",
}
FIRST_STATEMENT = "SELECT count(*) AS n FROM events"


def warehouse_tables() -> Mapping[str, ServedTable]:
    """A warehouse episode's tables, as its SQL tool serves them."""
    episode = build_episode(resolve_episode_config(seed=3, difficulty="warehouse"))
    return episode.public.sql_tables()


def cpu_of(pid: int) -> float:
    """The CPU seconds process `pid` has used so far (user and system, from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def workers_cpu(pool: sql_pool.SqlPool) -> float:
    """The CPU seconds every live worker of the pool has used so far."""
    total = 0.0
    for pid in pool.worker_pids():
        with contextlib.suppress(OSError):  # a worker that just exited
            total += cpu_of(pid)
    return total


async def stop_once(
    pool: sql_pool.SqlPool, tables: Mapping[str, ServedTable], sql: str, after_s: float
) -> dict[str, float]:
    """One runaway cancelled after `after_s`: the wall time until its worker is free, the CPU spent meanwhile."""
    replaced = pool.replaced
    call = asyncio.ensure_future(pool.run_async(1, lambda: tables, sql, 0, 10))
    await asyncio.sleep(after_s)
    began, cpu = time.monotonic(), workers_cpu(pool)
    call.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await call
    return {
        "free_ms": (time.monotonic() - began) * 1000,
        "cpu_ms": (workers_cpu(pool) - cpu) * 1000,
        "killed": float(pool.replaced - replaced),
    }


async def interrupts(tables: Mapping[str, ServedTable], runs: int, after_s: float) -> dict[str, Any]:
    pool = sql_pool.SqlPool(size=1)
    try:
        await pool.run_async(1, lambda: tables, FIRST_STATEMENT, 0, 10)  # the tables are in the worker
        shapes = {}
        for name, sql in RUNAWAYS.items():
            stops = [await stop_once(pool, tables, sql, after_s) for _ in range(runs)]
            shapes[name] = {
                "free_ms_median": statistics.median(s["free_ms"] for s in stops),
                "free_ms_max": max(s["free_ms"] for s in stops),
                "cpu_ms_max": max(s["cpu_ms"] for s in stops),
                "workers_killed": int(sum(s["killed"] for s in stops)),
                "runs": runs,
            }
            print(f"interrupt, {name}: {shapes[name]}", flush=True)
        return shapes
    finally:
        pool.close()


def worker_starts(starts: int) -> dict[str, float]:
    """A new worker's start: wall and CPU until it is ready."""
    walls, cpus = [], []
    for _ in range(starts):
        began = time.monotonic()
        worker = WorkerProcess()
        worker.wait_ready()
        walls.append((time.monotonic() - began) * 1000)
        cpus.append(cpu_of(worker.process.pid) * 1000)
        worker.kill()
    return {
        "start_ms_median": statistics.median(walls),
        "start_ms_max": max(walls),
        "cpu_ms_median": statistics.median(cpus),
        "starts": starts,
    }


async def first_statements(tables: Mapping[str, ServedTable], runs: int) -> dict[str, float]:
    """The episode's first statement on a fresh worker (its tables sent again) against the same on a warm one."""
    cold, warm = [], []
    for _ in range(runs):
        pool = sql_pool.SqlPool(size=1)
        try:
            for times in (cold, warm):
                began = time.monotonic()
                await pool.run_async(1, lambda: tables, FIRST_STATEMENT, 0, 10)
                times.append((time.monotonic() - began) * 1000)
        finally:
            pool.close()
    return {"cold_ms_median": statistics.median(cold), "warm_ms_median": statistics.median(warm), "runs": runs}


def table(kept: dict[str, Any] | None = None) -> str:
    """The docs' table of the kept run: each runaway's interrupt beside what a kill and a new worker cost."""
    kept = kept or json.loads(ARTIFACT.read_text(encoding="utf-8"))
    kill = kept["kill"]
    lines = [
        f"| stop (a runaway cancelled {kept['cancel_after_s']:g} s after it began) | worker free again, median / "
        "worst ms | CPU after the cancel, worst ms (10 ms ticks) | workers killed |",
        "| --- | --- | --- | --- |",
    ]
    for name, shape in kept["interrupt"].items():
        lines.append(
            f"| interrupt, {name} ({shape['runs']} runs) | {shape['free_ms_median']:.1f} / {shape['free_ms_max']:.1f}"
            f" | {shape['cpu_ms_max']:.0f} | {shape['workers_killed']} |"
        )
    lines.append(
        f"| kill and a new worker ({kill['starts']} starts) | {kill['start_ms_median']:.0f} / "
        f"{kill['start_ms_max']:.0f}, then the episode's first statement {kill['cold_ms_median']:.0f} "
        f"(warm: {kill['warm_ms_median']:.1f}) | {kill['cpu_ms_median']:.0f} (median, the start) | every stop |"
    )
    low, high = kept["load_average"]
    lines.append(f"| (load average, start and end) | {low:.1f} – {high:.1f} | | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=6, help="runaways of each shape (default 6)")
    parser.add_argument("--after", type=float, default=0.3, help="seconds before the cancel (default 0.3)")
    parser.add_argument("--starts", type=int, default=8, help="new workers started (default 8)")
    args = parser.parse_args(argv)
    tables = warehouse_tables()
    load = os.getloadavg()[0]
    result = {
        "interrupt": asyncio.run(interrupts(tables, args.runs, args.after)),
        "kill": {**worker_starts(args.starts), **asyncio.run(first_statements(tables, 3))},
        "cancel_after_s": args.after,
        "load_average": [round(load, 2), round(os.getloadavg()[0], 2)],
    }
    print(json.dumps(result["kill"]), flush=True)
    ARTIFACT.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {ARTIFACT}")


if __name__ == "__main__":
    main()
