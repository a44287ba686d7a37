"""What a victim's cheap queries get while SQL workers are SIGKILLed from outside (as the OOM killer would): one
worker of a pool of three killed every --every seconds for --seconds, whether it is starting, idle or busy, then
the same queries for --after seconds more (the victim asks again 0.1 s after each answer). Each answer is counted
as ok, "no SQL worker is ready" (refused while workers start again) or another error (a statement whose worker was
killed under it).

    uv run python -m lab.speed.worker_kills --label after

In process (the environment's own pool, no server): the pool's healing is measured, not a transport. It writes
lab/artifacts/worker_kills.json (merged under --label); a measurement, not a test (tests/test_worker_kills.py).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import random
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from metric_tracker_rl import MetricTrackerRlAction
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.sql import pool as sql_pool
from metric_tracker_rl.sql.sandbox import NOT_READY_MESSAGE

ARTIFACT = Path(__file__).resolve().parents[2] / "lab" / "artifacts" / "worker_kills.json"
CHEAP = "SELECT count(*) AS n FROM daily"
PACE_S = 0.1  # between a victim's answer and its next query (a refusal comes back at once)


def outcome(answer: Any) -> str:
    if answer.status == "ok":
        return "ok"
    return "not_ready" if NOT_READY_MESSAGE in answer.message else "other_error"


def kill_every(pool: sql_pool.SqlPool, every_s: float, until: float, killed: list[int]) -> None:
    chooser = random.Random(0)
    while time.monotonic() < until:
        pids = pool.worker_pids()
        if pids:
            pid = chooser.choice(pids)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        time.sleep(every_s)


def measure(seconds: float, every_s: float, after_s: float) -> dict[str, Any]:
    pool = sql_pool.SqlPool(size=3)
    sql_pool._POOL = pool
    env = MetricTrackerRlEnvironment()
    env.reset(seed=3, difficulty="easy", max_steps=500)
    action = MetricTrackerRlAction(analysis_method="query", analysis_args={"sql": CHEAP})
    assert env.step(action).status == "ok"
    killed: list[int] = []
    start = time.monotonic()
    killer = threading.Thread(target=kill_every, args=(pool, every_s, start + seconds, killed))
    killer.start()
    during: collections.Counter[str] = collections.Counter()
    after: collections.Counter[str] = collections.Counter()
    while (now := time.monotonic()) < start + seconds + after_s:
        if env.state.step_count >= 490:  # a fresh episode before the budget runs out
            env.reset(seed=3, difficulty="easy", max_steps=500)
        (during if now < start + seconds else after)[outcome(env.step(action))] += 1
        time.sleep(PACE_S)
    killer.join()
    env.close()
    pool.close()
    return {
        "kills": len(killed),
        "every_s": every_s,
        "seconds": seconds,
        "after_s": after_s,
        "during": dict(during),
        "after": dict(after),
        "start_failures_at_end": pool.start_failures,
        "cores": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--every", type=float, default=1.0)
    parser.add_argument("--after", type=float, default=10.0)
    parser.add_argument("--label", default="run")
    args = parser.parse_args()
    results = measure(args.seconds, args.every, args.after)
    print(json.dumps(results, indent=2))
    stored = json.loads(ARTIFACT.read_text()) if ARTIFACT.exists() else {}
    ARTIFACT.write_text(json.dumps({**stored, args.label: results}, indent=2) + "\n")
    sys.exit(0)


if __name__ == "__main__":
    main()
