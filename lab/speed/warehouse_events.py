"""The warehouse's raw events against their budgets: how long an episode's world takes to build (its kinds placed
in the world's plan, the event log with its defects and benign bursts, the dashboard with and without the
defects, and the SQL tool's tables), how long statements over the events take in the SQL engine (the worker's own
code and configuration, in this process), and what an open episode holds: the log's arrays (needed only while its
tables are built), the events table as Arrow (what the server's sandbox keeps and a worker receives), and the
resident memory of this process with several episodes' tables registered in DuckDB and their logs dropped (a
worker's share; the server keeps one more copy of the tables).

    uv run python -m lab.speed.warehouse_events --seeds 8 --held 8

The statements are of two sets. A model's (the budget, `model_statement_ms_p50`): every statement the model-like
analyst sent in the kept example episode (lab/artifacts/warehouse_example.json, lab/docs/warehouse_episode.md), the
method a capable model used, on that episode's tables; the expert's statements there are reported beside them.
Short ones (TYPICAL: the export's own documentation's shapes, on the first seed's episode), with no budget, and the
dashboard's own statement (the metrics layer's SQL). Each statement's time is the median of --repeats runs after a
warm-up run. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.catalog.tiers import WAREHOUSE
from metric_tracker_rl.generation.warehouse.world import build_warehouse_world
from metric_tracker_rl.sql.engine import EpisodeTables, open_database
from metric_tracker_rl.sql.table_views import arrow_table
from metric_tracker_rl.world.events import EventLog
from metric_tracker_rl.world.metrics_layer import DASHBOARD_SQL

SEED_BASE = 900_000  # seeds no tier's calibration or split uses
EXAMPLE = Path(__file__).resolve().parents[2] / "lab" / "artifacts" / "warehouse_example.json"
# Statements a model sends over the events, in the shape of the export's own documentation.
TYPICAL: dict[str, str] = {
    "events by name": "SELECT event_name, count(*) FROM events GROUP BY 1 ORDER BY 2 DESC",
    "purchases by date": "SELECT event_date, count(*) FROM events WHERE event_name = 'payment_successful' "
    "GROUP BY 1 ORDER BY 1",
    "sessions by date": "SELECT event_date, count(DISTINCT (user_pseudo_id, list_filter(event_params, "
    "lambda p: p.key = 'session_id')[1].value.int_value)) FROM events "
    "WHERE event_name = 'app_open' GROUP BY 1 ORDER BY 1",
    "parameters by event": "SELECT event_name, p.key, count(*) FROM (SELECT event_name, unnest(event_params) AS p "
    "FROM events) GROUP BY ALL ORDER BY 1, 2",
    "segment by date": "SELECT event_date, platform, geo.country, count(*) FROM events "
    "WHERE event_name = 'menu_open' GROUP BY ALL ORDER BY ALL",
    "debug events": "SELECT event_date, count(*) FROM events WHERE list_contains(list_transform(event_params, "
    "lambda p: p.key), 'debug_mode') GROUP BY 1 ORDER BY 1",
    "a few rows": "SELECT * FROM events WHERE event_name = 'order_placed' LIMIT 20",
}


def progress(message: str) -> None:
    print(f"[warehouse_events] {message}", file=sys.stderr, flush=True)


def build(seed: int) -> tuple[EventLog, dict[str, Any], float]:
    """One episode's world (its kinds placed, events drawn, defects and benign bursts edited in, its dashboard
    with and without its defects) and its SQL tables, and the seconds they took."""
    config = resolve_episode_config(seed=seed, difficulty="warehouse")
    start = time.perf_counter()
    world = build_warehouse_world(WAREHOUSE, config)
    tables = world.log.sql_tables()
    return world.log, tables, time.perf_counter() - start


def resident_mb() -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return float(line.split()[1]) / 1024


def statement_ms(tables: EpisodeTables, sql: str, repeats: int) -> float:
    tables.run(sql, 0, 50)  # warm-up: the view is made on first use
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        tables.run(sql, 0, 50)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def example_statement_ms(repeats: int) -> dict[str, list[float]]:
    """Each query statement of the kept example's plays (by role: the expert, the model-like analyst), timed on
    that episode's tables (every table a model's statement may name)."""
    example = json.loads(EXAMPLE.read_text())
    world = build_warehouse_world(
        WAREHOUSE, resolve_episode_config(seed=example["expert"]["seed"], difficulty="warehouse")
    )
    episode = EpisodeTables(open_database(), world.sql_tables())
    times = {
        role: [
            statement_ms(episode, call["arguments"]["sql"], repeats)
            for call in example[role]["calls"]
            if call["tool"] == "query"
        ]
        for role in ("model_like", "expert")
    }
    episode.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=8, help="episodes built for the build time")
    parser.add_argument("--held", type=int, default=8, help="episodes whose tables are held at once for memory")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each statement")
    args = parser.parse_args()
    import pandas  # noqa: F401 - a server and a worker have it loaded; pyarrow's first conversion imports it

    build(SEED_BASE - 1)  # warm-up: imports and caches
    builds = []
    for index in range(args.seeds):
        log, tables, seconds = build(SEED_BASE + index)
        builds.append(seconds)
        progress(f"seed {SEED_BASE + index}: {len(log.events)} events built in {seconds:.3f} s")
    log, tables, _ = build(SEED_BASE)
    episode = EpisodeTables(open_database(), tables)
    statements = {name: statement_ms(episode, sql, args.repeats) for name, sql in TYPICAL.items()}
    progress("timing the kept example's statements")
    example = example_statement_ms(args.repeats)
    dashboard_ms = statement_ms(episode, DASHBOARD_SQL, max(1, args.repeats // 2))
    episode.close()
    del episode, log, tables
    gc.collect()
    before = resident_mb()
    held = []
    for index in range(args.held):
        _, tables, _ = build(SEED_BASE + index)  # the log is dropped once its tables are built
        episode = EpisodeTables(open_database(), tables)
        episode.run("SELECT count(*) FROM events", 0, 1)
        held.append(episode)
    gc.collect()
    after = resident_mb()
    log, tables, _ = build(SEED_BASE)
    flat = sum(getattr(log.events, name).nbytes for name in log.events.__dataclass_fields__)
    arrow = arrow_table(tables["events"]).nbytes
    report = {
        "events_per_episode": len(log.events),
        "build_s": {"p50": float(np.median(builds)), "p95": float(np.percentile(builds, 95))},
        "model_statement_ms_p50": float(np.median(example["model_like"])),
        "model_statement_ms": example["model_like"],
        "expert_statement_ms_p50": float(np.median(example["expert"])),
        "statement_ms": statements,
        "statement_ms_p50": float(np.median(list(statements.values()))),
        "dashboard_sql_ms": dashboard_ms,
        "log_arrays_mb": flat / 2**20,
        "events_arrow_mb": arrow / 2**20,
        "resident_mb_per_held_episode": (after - before) / args.held,
        "load_average": os.getloadavg()[0],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
