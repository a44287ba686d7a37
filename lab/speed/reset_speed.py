"""Reset latency per difficulty: p50 and p90 of MetricTrackerRlEnvironment.reset over seeds 0..N-1.

    uv run python -m lab.speed.reset_speed [--resets N] [--difficulties frontier,deep]

The resets of each difficulty (every tier) run twice, the first time as a warm-up.
The budgets are a p50 of 25 ms at frontier and 60 ms at deep on the project's 2-core machines; measure on an idle
machine (other processes inflate every wall-clock figure; the CPU time of this process, shown too, much less).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from metric_tracker_rl.catalog.published import RESET_DIFFICULTIES
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment


def reset_times(difficulty: str, resets: int) -> tuple[np.ndarray, np.ndarray]:
    """Wall-clock and CPU seconds of each reset."""
    env = MetricTrackerRlEnvironment()
    wall, cpu = [], []
    for seed in range(resets):
        start, start_cpu = time.perf_counter(), time.process_time()
        observation = env.reset(seed=seed, difficulty=difficulty)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        if observation.status != "ready":
            raise RuntimeError(f"reset failed: {observation.message}")
    return np.array(wall), np.array(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resets", type=int, default=200)
    parser.add_argument("--difficulties", default=",".join(RESET_DIFFICULTIES))
    args = parser.parse_args()
    for difficulty in args.difficulties.split(","):
        reset_times(difficulty, args.resets)  # warm-up
        times, cpu = (seconds * 1e3 for seconds in reset_times(difficulty, args.resets))
        print(
            f"{difficulty:>8}: reset p50 {np.median(times):6.2f} ms, p90 {np.percentile(times, 90):6.2f} ms "
            f"(CPU p50 {np.median(cpu):6.2f} ms; {args.resets} resets)"
        )


if __name__ == "__main__":
    main()
