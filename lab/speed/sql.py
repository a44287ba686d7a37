"""Measure the SQL tool `query`: latency of typical queries and memory per session.

    uv run python -m lab.speed.sql                # 300 calls per query
    uv run python -m lab.speed.sql --repeats 50   # a quicker run
    uv run python -m lab.speed.sql --difficulty deep   # the segment tables too, at deep's targets

Sections:
- open: the first query of an episode, which sends its tables to a SQL worker process (metric_tracker_rl.sql.pool)
  and serves them there as read-only views of a connection of their own;
- latency: p50/p95 of `env.step` with typical queries on an open database (a GROUP BY weekday, a filter on one
  date's hours, a self-join for a same-weekday median), and of a refusal, and at a segmented difficulty of the
  segment tables (a breakdown by two dimensions, one country's hours, a segment's same-weekday median); the
  targets are p50 <= 10 ms (deep: 20 ms);
- memory: RSS of this process and of the SQL workers before and after 64 sessions (environments) have each run
  one query (at a segmented difficulty, one that reads both segment tables), per session, then after they close
  (target <= 8 MB a session; deep: 16 MB);
- overhead: what a worker process adds to a query: the same statement run by the engine in this process and
  through the pool.
Run it on an idle machine, once: it is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time

from metric_tracker_rl.catalog.published import SEGMENTED_DIFFICULTIES
from metric_tracker_rl.models import MetricTrackerRlAction
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.sql.engine import EpisodeTables, open_database
from metric_tracker_rl.sql.pool import pool
from metric_tracker_rl.sql.sandbox import SqlSandbox

SESSIONS = 64
TARGET_P50_MS = 10.0
TARGET_MB_PER_SESSION = 8.0
QUERIES = {
    "group_by_weekday": "SELECT weekday, avg(orders_placed) AS orders, median(app_opens) AS opens FROM daily "
    "GROUP BY weekday ORDER BY weekday",
    "one_date_hours": "SELECT hour, app_opens, orders_placed, orders_placed / app_opens AS rate FROM hourly "
    "WHERE date = '2026-03-10' ORDER BY hour",
    "same_weekday_median": "SELECT d.date, d.orders_placed, median(o.orders_placed) AS baseline, "
    "d.orders_placed / median(o.orders_placed) - 1 AS change FROM daily d JOIN daily o "
    "ON o.weekday = d.weekday AND o.date <> d.date GROUP BY d.date, d.orders_placed "
    "ORDER BY abs(change) DESC",
    "refused_drop": "DROP TABLE daily",
}
SEGMENT_QUERIES = {
    "segment_two_dimensions": "SELECT platform, country, sum(orders_placed) / sum(app_opens) AS rate "
    "FROM daily_by_segment WHERE date = '2026-03-10' GROUP BY ALL ORDER BY rate",
    "segment_hours": "SELECT hour, sum(app_opens) AS opens FROM hourly_by_segment WHERE date = '2026-03-10' "
    "AND country = 'IN' GROUP BY hour ORDER BY hour",
    "segment_same_weekday_median": "WITH d AS (SELECT date, country, sum(orders_placed) AS o FROM daily_by_segment "
    "GROUP BY ALL) SELECT a.country, a.o, median(b.o) AS base FROM d a JOIN d b ON "
    "b.country = a.country AND dayofweek(b.date) = dayofweek(a.date) AND b.date <> "
    "a.date WHERE a.date = '2026-03-10' GROUP BY a.country, a.o ORDER BY a.o / base",
}
BOTH_SEGMENT_TABLES = "SELECT (SELECT count(*) FROM daily_by_segment) + (SELECT count(*) FROM hourly_by_segment) AS n"
# The issue's budgets for the deep tier (p50 of a typical query, MB a session); other difficulties' are above.
TARGETS = {"deep": (20.0, 16.0)}


def queries_of(difficulty: str) -> dict[str, str]:
    return {**QUERIES, **(SEGMENT_QUERIES if difficulty in SEGMENTED_DIFFICULTIES else {})}


def rss_mb() -> float:
    """Resident memory of this process now (Linux /proc)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def query_action(sql: str) -> MetricTrackerRlAction:
    return MetricTrackerRlAction(analysis_method="query", analysis_args={"sql": sql, "limit": 120})


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": 1e3 * statistics.median(ordered),
        "p95_ms": 1e3 * ordered[int(0.95 * (len(ordered) - 1))],
        "n": len(ordered),
    }


def bench_open(repeats: int, difficulty: str) -> dict[str, float]:
    """The first query of fresh episodes: opening the database and loading the tables included."""
    env = MetricTrackerRlEnvironment()
    samples = []
    for i in range(repeats):
        env.reset(seed=i, difficulty=difficulty)
        start = time.perf_counter()
        observation = env.step(query_action(QUERIES["group_by_weekday"]))
        samples.append(time.perf_counter() - start)
        assert observation.status == "ok", observation.message
    env.close()
    return percentiles(samples)


def bench_latency(repeats: int, difficulty: str) -> dict[str, dict[str, float]]:
    env = MetricTrackerRlEnvironment()
    env.reset(seed=7, difficulty=difficulty, max_steps=500)
    env.step(query_action("SELECT 1"))  # opens the database
    results = {}
    for name, sql in queries_of(difficulty).items():
        samples = []
        for _ in range(repeats):
            if env.state.step_count >= 499:
                env.reset(seed=7, difficulty=difficulty, max_steps=500)
                env.step(query_action("SELECT 1"))
            start = time.perf_counter()
            observation = env.step(query_action(sql))
            samples.append(time.perf_counter() - start)
            assert observation.status == ("error" if name.startswith("refused") else "ok"), observation.message
        results[name] = percentiles(samples)
    env.close()
    return results


def workers_rss_mb() -> float:
    """Resident memory of the SQL worker processes now."""
    total = 0.0
    for pid in pool().worker_pids():
        try:
            with open(f"/proc/{pid}/statm") as statm:
                total += int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        except FileNotFoundError:
            continue
    return total


def bench_overhead(repeats: int, difficulty: str) -> dict[str, dict[str, float]]:
    """One statement by the engine in this process (no worker) and through the pool (a worker process)."""
    from metric_tracker_rl.catalog.tasks import resolve_episode_config
    from metric_tracker_rl.generation import build_episode

    public = build_episode(resolve_episode_config(seed=7, difficulty=difficulty)).public
    database = open_database()
    local = EpisodeTables(database, public.sql_tables())
    sandbox = SqlSandbox(public.sql_tables())
    sql = QUERIES["group_by_weekday"]
    sandbox.run(sql)
    results = {}
    for name, run in (("in_process", lambda: local.run(sql, 0, 120)), ("worker", lambda: sandbox.run(sql, 0, 120))):
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            samples.append(time.perf_counter() - start)
        results[name] = percentiles(samples)
    sandbox.close()
    local.close()
    database.close()
    return results


def bench_memory(difficulty: str) -> dict[str, float]:
    """RSS per session, this process and the SQL workers together: 64 environments reset (what a reset holds),
    then each runs one query (what its tables add in the workers)."""
    warm = MetricTrackerRlEnvironment()  # the workers' start-up is not a session's cost
    warm.reset(seed=0, difficulty="easy")
    warm.step(query_action("SELECT 1"))
    warm.close()
    gc.collect()
    empty = rss_mb() + workers_rss_mb()
    environments = [MetricTrackerRlEnvironment() for _ in range(SESSIONS)]
    for i, env in enumerate(environments):
        env.reset(seed=i, difficulty=difficulty)
    gc.collect()
    before = rss_mb() + workers_rss_mb()
    sql = BOTH_SEGMENT_TABLES if difficulty in SEGMENTED_DIFFICULTIES else QUERIES["same_weekday_median"]
    for env in environments:
        assert env.step(query_action(sql)).status == "ok"
    gc.collect()
    opened = rss_mb() + workers_rss_mb()
    workers = workers_rss_mb()
    for env in environments:
        env.close()
    warm = MetricTrackerRlEnvironment()  # a statement delivers the closed episodes' release to the workers
    warm.reset(seed=0, difficulty="easy")
    for _ in range(pool().size):
        warm.step(query_action("SELECT 1"))
    warm.close()
    gc.collect()
    closed = rss_mb() + workers_rss_mb()
    return {
        "sessions": SESSIONS,
        "rss_empty_mb": empty,
        "rss_before_mb": before,
        "reset_mb_per_session": (before - empty) / SESSIONS,
        "total_mb_per_session": (opened - empty) / SESSIONS,
        "rss_open_mb": opened,
        "rss_closed_mb": closed,
        "workers_mb": workers,
        "workers": pool().size,
        "mb_per_session": (opened - before) / SESSIONS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeats", type=int, default=300, help="calls per query (default 300)")
    parser.add_argument(
        "--difficulty", default="hard", help="the episodes' difficulty (default hard; frontier adds the segment tables)"
    )
    args = parser.parse_args()
    target_ms, target_mb = TARGETS.get(args.difficulty, (TARGET_P50_MS, TARGET_MB_PER_SESSION))
    import duckdb

    print(f"duckdb {duckdb.__version__}")
    opening = bench_open(min(args.repeats, 50), args.difficulty)
    print(
        f"first query of an episode (opens its connection, loads its tables): p50 {opening['p50_ms']:.1f} ms, "
        f"p95 {opening['p95_ms']:.1f} ms (n={opening['n']})"
    )
    print("\n| query | p50 ms | p95 ms | target |\n| --- | --- | --- | --- |")
    for name, stats in bench_latency(args.repeats, args.difficulty).items():
        verdict = "ok" if stats["p50_ms"] <= target_ms else "MISSED"
        print(f"| {name} | {stats['p50_ms']:.2f} | {stats['p95_ms']:.2f} | p50 <= {target_ms:g} ms: {verdict} |")
    memory = bench_memory(args.difficulty)
    verdict = "ok" if memory["total_mb_per_session"] <= target_mb else "MISSED"
    print(
        f"\nmemory: RSS {memory['rss_before_mb']:.0f} MB with {SESSIONS} sessions reset, "
        f"{memory['rss_open_mb']:.0f} MB after one query each, {memory['rss_closed_mb']:.0f} MB after they "
        f"close: {memory['mb_per_session']:.2f} MB a session for its tables, "
        f"{memory['total_mb_per_session']:.2f} MB a session in all with its episode "
        f"(target <= {target_mb:g}: {verdict})"
    )
    print(f"of which the {memory['workers']} SQL workers hold {memory['workers_mb']:.0f} MB")
    overhead = bench_overhead(args.repeats, args.difficulty)
    print(
        f"a worker process per query: group_by_weekday p50 {overhead['worker']['p50_ms']:.2f} ms through the "
        f"pool, {overhead['in_process']['p50_ms']:.2f} ms by the engine in process "
        f"(+{overhead['worker']['p50_ms'] - overhead['in_process']['p50_ms']:.2f} ms)"
    )


if __name__ == "__main__":
    main()
