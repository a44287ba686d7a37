"""Reset latency per difficulty: p50 and p90 of MetricTrackerRlEnvironment.reset over seeds 0..N-1.

    uv run python -m benchmarks.reset_speed [--resets N] [--difficulties frontier,hard]

The resets of each difficulty run twice, the first time as a warm-up. The frontier budget is a p50 of 25 ms on
the project's 2-core machines; measure on an idle machine (other processes inflate every figure).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from metric_tracker_rl.catalog import DIFFICULTIES
from metric_tracker_rl.environment import MetricTrackerRlEnvironment


def reset_times(difficulty: str, resets: int) -> np.ndarray:
    env = MetricTrackerRlEnvironment()
    times = []
    for seed in range(resets):
        start = time.perf_counter()
        observation = env.reset(seed=seed, difficulty=difficulty)
        times.append(time.perf_counter() - start)
        if observation.status != "ready":
            raise RuntimeError(f"reset failed: {observation.message}")
    return np.array(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resets", type=int, default=200)
    parser.add_argument("--difficulties", default=",".join(DIFFICULTIES))
    args = parser.parse_args()
    for difficulty in args.difficulties.split(","):
        reset_times(difficulty, args.resets)  # warm-up
        times = reset_times(difficulty, args.resets) * 1e3
        print(f"{difficulty:>8}: reset p50 {np.median(times):6.2f} ms, p90 {np.percentile(times, 90):6.2f} ms "
              f"({args.resets} resets)")


if __name__ == "__main__":
    main()
