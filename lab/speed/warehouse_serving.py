"""The warehouse rung served: a fresh server holds --sessions WebSocket sessions at once, each reset to its own
warehouse episode and past statements over the events (so the SQL workers load its tables), and the process
tree's resident memory with all of them open is set against one session's coming and going
(rung_budgets_memory.hold_sessions). Each reset's time is its client's wall time, in turn on an otherwise idle
server, and beside it the CPU time of in-process resets (what a reset costs on any machine, however loaded). The
budgets are the rung's: reset p50 1 s (p95 2 s), 32 MB a session, 3 GB for 64 sessions.

    uv run python -m lab.speed.warehouse_serving --sessions 64
    uv run python -m lab.speed.warehouse_serving --sessions 64 --difficulty audit   # the audit, on the same budgets

Progress goes to stderr; the figures to stdout as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import numpy as np

from lab.speed.rung_budgets_memory import hold_sessions
from metric_tracker_rl.adapters.transcript import TaskRun
from metric_tracker_rl.models import MetricTrackerRlAction
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment

SEED_BASE = 910_000  # seeds no tier's calibration or split uses
BUDGETS = {"reset_p50_s": 1.0, "reset_p95_s": 2.0, "mb_per_session": 32.0, "held_mb_64": 3072.0}
# What a model's first statements read: the events (every worker that serves the episode loads its tables) and the
# dashboard.
PROBES = (
    "SELECT event_name, count(*) AS n FROM events GROUP BY 1 ORDER BY 2 DESC",
    "SELECT date, sum(sessions) AS sessions FROM dashboard GROUP BY 1 ORDER BY 1",
)


def progress(message: str) -> None:
    print(f"[warehouse_serving] {message}", file=sys.stderr, flush=True)


def reset_cpu_s(seeds: int, difficulty: str = "warehouse") -> list[float]:
    """The CPU time of in-process resets, one seed each after a warm-up: what a reset costs whatever the load."""
    env = MetricTrackerRlEnvironment()
    env.reset(difficulty=difficulty, seed=SEED_BASE - 1)
    spent = []
    for index in range(seeds):
        start = time.process_time()
        env.reset(difficulty=difficulty, seed=SEED_BASE + index)
        spent.append(time.process_time() - start)
    env.close()
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=64, help="sessions held open at once")
    parser.add_argument("--cpu-seeds", type=int, default=16, help="in-process resets whose CPU time is reported")
    parser.add_argument(
        "--difficulty",
        default="warehouse",
        choices=("warehouse", "audit"),
        help="the raw-event tier whose episodes are held",
    )
    args = parser.parse_args()
    cpu = reset_cpu_s(args.cpu_seeds, args.difficulty)
    progress(f"in-process reset CPU p50 {np.median(cpu):.2f} s")
    resets: list[float] = []

    def play(reset_kwargs: dict[str, Any], env: Any) -> TaskRun:
        run = TaskRun("warehouse_probe")
        start = time.perf_counter()
        observation = run.reset(env, **reset_kwargs)
        resets.append(time.perf_counter() - start)
        assert observation.status == "ready", observation.message
        for sql in PROBES:
            step = run.act(env, MetricTrackerRlAction(analysis_method="query", analysis_args={"sql": sql}))
            assert step.observation.status == "ok", step.observation.message
        progress(f"session {len(resets)}: reset in {resets[-1]:.2f} s")
        return run

    kwargs = [{"difficulty": args.difficulty, "seed": SEED_BASE + index} for index in range(args.sessions)]
    held = hold_sessions(kwargs, play)
    timed = resets[1:]  # the first session's reset pays the server's first imports
    p50, p95 = (float(value) for value in np.percentile(timed, [50, 95]))
    report = {
        "difficulty": args.difficulty,
        "sessions": args.sessions,
        "reset_p50_s": p50,
        "reset_p95_s": p95,
        "reset_cpu_p50_s": float(np.median(cpu)),
        "reset_cpu_p95_s": float(np.percentile(cpu, 95)),
        "mb_per_session": held.mb_per_session,
        **held.server_figures(),
        "server_process_mb_per_session": (held.server_held_mb - held.server_idle_mb) / args.sessions,
        "budgets": BUDGETS,
        "load_average": os.getloadavg()[0],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
