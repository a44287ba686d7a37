"""Where a reset's time goes: each stage's inclusive wall time per reset, measured without a profiler.

    uv run python -m lab.speed.reset_profile [task_id] [--resets N]

Each stage function is wrapped in a timer (a fraction of a microsecond per call) and the resets of seeds 0..N-1
are run twice, the first time as a warm-up. Stages nest (the panel's hour profiles are part of the panel), so
the rows do not add up to the total.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from metric_tracker_rl.catalog.tasks import DEFAULT_TASK_ORDER
from metric_tracker_rl.generation import aggregate
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.world import daily_panel, funnel

# (module, function name, label): the stages of build_episode and the parts of the two largest.
STAGES = [
    (aggregate, "baseline_plan", "baseline plan"),
    (aggregate, "_draw_day", "scheduling: draw an open date"),
    (aggregate, "_plan_anomalies", "scheduling: incidents"),
    (aggregate, "draw_counts", "draw counts"),
    (funnel, "derive_rng", "  draw counts: make streams"),
    (funnel, "stage_means", "  draw counts: stage means"),
    (aggregate, "build_panel", "metric panel"),
    (daily_panel, "hourly_profiles", "  metric panel: hour profiles"),
    (aggregate, "build_ground_truth", "ground truth"),
]


def _timed(function: Callable[..., Any], label: str, totals: Counter[str], calls: Counter[str]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter_ns()
        try:
            return function(*args, **kwargs)
        finally:
            totals[label] += time.perf_counter_ns() - start
            calls[label] += 1

    return wrapper


def _timed_table(table: dict[str, Callable[..., Any]], prefix: str, totals: Counter[str], calls: Counter[str]) -> None:
    for name, function in list(table.items()):
        table[name] = _timed(function, f"{prefix}{name}", totals, calls)


def profile_resets(task_id: str, resets: int) -> tuple[float, list[tuple[str, float, float]]]:
    """Mean ms per reset, and per stage its mean ms and calls per reset. The timers are removed afterwards."""
    totals: Counter[str] = Counter()
    calls: Counter[str] = Counter()
    originals = [(module, name, getattr(module, name)) for module, name, _ in STAGES]
    tables = [(table, dict(table)) for table in (aggregate.FLUCTUATIONS, aggregate.DISTRACTORS)]
    try:
        for module, name, label in STAGES:
            setattr(module, name, _timed(getattr(module, name), label, totals, calls))
        _timed_table(aggregate.FLUCTUATIONS, "fluctuation: ", totals, calls)
        _timed_table(aggregate.DISTRACTORS, "distractor: ", totals, calls)
        env = MetricTrackerRlEnvironment()
        for _ in range(2):  # the first pass warms up
            totals.clear()
            calls.clear()
            start = time.perf_counter_ns()
            for seed in range(resets):
                env.reset(task_id=task_id, seed=seed)
            elapsed = time.perf_counter_ns() - start
    finally:
        for module, name, function in originals:
            setattr(module, name, function)
        for table, saved in tables:
            table.update(saved)
    rows = [
        (label, totals[label] / resets / 1e6, calls[label] / resets)
        for label in sorted(totals, key=totals.__getitem__, reverse=True)
    ]
    return elapsed / resets / 1e6, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task_id", nargs="?", default="hard_mixed_multi", choices=DEFAULT_TASK_ORDER)
    parser.add_argument("--resets", type=int, default=300)
    args = parser.parse_args()
    total, rows = profile_resets(args.task_id, args.resets)
    print(f"{args.task_id}: {total:.3f} ms per reset (mean of {args.resets})")
    for label, ms, per_reset in rows:
        print(f"  {label:38s} {ms:6.3f} ms  {ms / total:4.0%}  ({per_reset:.1f} calls)")


if __name__ == "__main__":
    main()
