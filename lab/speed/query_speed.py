"""Where a query's time goes: the `query` statements the expert and the scan analyst send (the reference agents'
row of lab.speed.rung_budgets), or with --model a capable model's (its typical-query row), timed by kind in three
ways side by side, so a change to the SQL engine can be judged on the statements that matter:

- engine: the statement run by the engine in this process (metric_tracker_rl.sql.engine, the worker's own code and
  configuration), wall and CPU milliseconds: what DuckDB and the engine's checks cost, with no worker;
- plan: the same statement with DuckDB's profiler, split into binding, optimising and the operators' CPU time;
- step: the statement through env.step (a SQL worker process), wall milliseconds, as rung_budgets times it.

    uv run python -m lab.speed.query_speed --save-statements artifacts/statements.json   # record, then time
    uv run python -m lab.speed.query_speed --statements artifacts/statements.json        # the same statements again
    uv run python -m lab.speed.query_speed --compare BEFORE.json AFTER.json              # two runs side by side
    uv run python -m lab.speed.query_speed --model      # a capable model's statements (the typical-query budget's)

Statements are recorded on the tiers' calibration episodes (from offset 120), as rung_budgets records them; a saved
file lets two commits time exactly the same statements. Each run also checks that every statement's result (its
columns, rows and count) is the same as the saved one's, when the file holds them. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from lab.speed.run import _commit
from lab.speed.rung_budgets import measured_tiers, model_queries, recorded_queries, spread, time_queries
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.sql import engine

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUTPUT = ROOT / "artifacts" / "query_speed.json"
WAYS = ("engine_wall", "engine_cpu", "bind", "optimize", "operators_cpu", "step_wall")


def progress(message: str) -> None:
    print(f"[query_speed] {message}", file=sys.stderr, flush=True)


def result_digest(result: tuple[list[str], list[list[Any]], int]) -> str:
    return hashlib.sha256(json.dumps(result, sort_keys=True).encode()).hexdigest()[:16]


def episode_tables(reset: dict[str, Any]) -> dict[str, Any]:
    env = MetricTrackerRlEnvironment()
    env.reset(**reset)
    tables = env._episode.public.sql_tables()  # noqa: SLF001 - the benchmark reads the episode the tool would open
    env.close()
    return tables


def profiled(episode: engine.EpisodeTables, sql: str, profile: Path) -> dict[str, float]:
    """Binding, optimising and the operators' CPU milliseconds of one run, from DuckDB's JSON profile (read on an
    unlocked connection: the engine's configuration is locked)."""
    episode.con.execute("PRAGMA enable_profiling='json'")
    episode.con.execute(f"PRAGMA profiling_output='{profile}'")
    episode.con.execute(sql).fetchall()
    episode.con.execute("PRAGMA disable_profiling")
    report = json.loads(profile.read_text())
    return {
        "bind": report["planner"]["total_time"] * 1e3,
        "optimize": report["optimizer"]["total_time"] * 1e3,
        "operators_cpu": report["query"]["cpu_time"] * 1e3,
    }


def time_engine(queries: list[dict], repeats: int) -> list[dict[str, Any]]:
    """Each statement in process, episode by episode: wall and CPU of `EpisodeTables.run` (the best of
    `repeats`, after one warm-up run), the profile's phases, and a digest of the result."""
    database = engine.open_database()
    unlocked = duckdb.connect(":memory:", config={"threads": 1})
    timings: list[dict[str, Any]] = [{} for _ in queries]
    by_episode: dict[str, list[int]] = {}
    for index, query in enumerate(queries):
        by_episode.setdefault(json.dumps(query["reset"], sort_keys=True), []).append(index)
    with tempfile.TemporaryDirectory() as scratch:
        for key, indices in by_episode.items():
            tables = episode_tables(json.loads(key))
            episode, profiling = engine.EpisodeTables(database, tables), engine.EpisodeTables(unlocked, tables)
            episode.view()
            profiling.view()
            for index in indices:
                arguments = queries[index]["arguments"]
                run = (arguments["sql"], int(arguments.get("offset", 0)), int(arguments.get("limit", engine.ROW_CAP)))
                result = episode.run(*run)
                wall, cpu = [], []
                for _ in range(repeats):
                    start, start_cpu = time.perf_counter(), time.process_time()
                    episode.run(*run)
                    wall.append((time.perf_counter() - start) * 1e3)
                    cpu.append((time.process_time() - start_cpu) * 1e3)
                timings[index] = {
                    "engine_wall": min(wall),
                    "engine_cpu": min(cpu),
                    "digest": result_digest(result),
                    **profiled(profiling, arguments["sql"], Path(scratch) / "profile.json"),
                }
            episode.close()
            profiling.close()
    database.close()
    unlocked.close()
    return timings


def by_kind(statements: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """p50 and p95 of every way of timing, for each kind of statement and for all of them."""
    kinds = sorted({s["kind"] for s in statements})
    return {
        kind: {
            way: spread([s[way] for s in statements if kind in ("all", s["kind"]) and way in s])
            for way in WAYS
            if any(way in s for s in statements)
        }
        for kind in [*kinds, "all"]
    }


def measure(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    load_at_start = list(os.getloadavg())
    if args.statements is not None:
        saved = json.loads(args.statements.read_text(encoding="utf-8"))
    elif args.model:
        saved = {tier: model_queries(tier) for tier in measured_tiers()}
    else:
        saved = {tier: recorded_queries(tier, args.first_offset, args.query_episodes) for tier in measured_tiers()}
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "commit": _commit(),
        "command": " ".join(["python -m lab.speed.query_speed", *argv]),
        "duckdb": duckdb.__version__,
        "load_average_at_start": load_at_start,
        "repeats": args.repeats,
        "tiers": {},
    }
    for tier, queries in saved.items():
        progress(f"{tier}: {len(queries)} statements in process")
        timings = time_engine(queries, args.repeats)
        steps = np.array([time_queries(queries) for _ in range(args.step_repeats)]) if args.step_repeats else None
        changed = [
            i
            for i, (q, t) in enumerate(zip(queries, timings, strict=True))
            if q.get("digest") not in (None, t["digest"])
        ]
        statements = [
            {**{k: q[k] for k in ("agent", "kind")}, **t, "step_wall": float(np.min(steps[:, i]))}
            if steps is not None
            else {**{k: q[k] for k in ("agent", "kind")}, **t}
            for i, (q, t) in enumerate(zip(queries, timings, strict=True))
        ]
        for query, timing in zip(queries, timings, strict=True):
            query.setdefault("digest", timing["digest"])
        report["tiers"][tier] = {"statements": statements, "by_kind": by_kind(statements), "results_changed": changed}
    report["load_average_at_end"] = list(os.getloadavg())
    if args.save_statements is not None:
        args.save_statements.parent.mkdir(parents=True, exist_ok=True)
        args.save_statements.write_text(json.dumps(saved, indent=1) + "\n", encoding="utf-8")
    return report


def table(reports: list[dict[str, Any]]) -> str:
    """p50 (p95) milliseconds by tier, kind and way; with two reports, each cell reads `before -> after`."""
    lines = ["| tier | kind | n | " + " | ".join(WAYS) + " |", "| --- | --- | --- |" + " --- |" * len(WAYS)]
    first = reports[0]
    for tier, figures in first["tiers"].items():
        for kind, ways in figures["by_kind"].items():
            cells = []
            for way in WAYS:
                values = [r["tiers"][tier]["by_kind"][kind].get(way) for r in reports]
                cells.append(
                    " -> ".join("-" if v is None else f"{v['p50_ms']:.1f} ({v['p95_ms']:.1f})" for v in values)
                )
            n = next(iter(ways.values()))["n"]
            lines.append(f"| {tier} | {kind} | {n} | " + " | ".join(cells) + " |")
    loads = "; ".join(
        f"{', '.join(f'{v:.1f}' for v in r['load_average_at_start'])} at the start, "
        f"{', '.join(f'{v:.1f}' for v in r['load_average_at_end'])} at the end"
        for r in reports
    )
    changed = {tier: [len(r["tiers"][tier]["results_changed"]) for r in reports] for tier in first["tiers"]}
    return "\n".join(lines) + f"\n\nload average: {loads}\nresults changed against the saved statements: {changed}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    chosen = parser.add_mutually_exclusive_group()
    chosen.add_argument("--statements", type=Path, help="time the statements saved in this file")
    chosen.add_argument(
        "--model",
        action="store_true",
        help="a capable model's statements (its deep transcripts' queries) instead of the agents'",
    )
    parser.add_argument("--save-statements", type=Path, help="save the statements (and their results' digests)")
    parser.add_argument("--query-episodes", type=int, default=6, help="episodes per agent whose statements are timed")
    parser.add_argument("--first-offset", type=int, default=120, help="first calibration episode of each tier")
    parser.add_argument("--repeats", type=int, default=3, help="in-process runs of each statement (the best counts)")
    parser.add_argument("--step-repeats", type=int, default=1, help="replays through env.step (0: none)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--compare", type=Path, nargs=2, metavar=("BEFORE", "AFTER"), help="print two runs")
    arguments = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(arguments)
    if args.compare is not None:
        print(table([json.loads(path.read_text(encoding="utf-8")) for path in args.compare]))
        return
    report = measure(args, arguments)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(table([report]))
    progress(f"wrote {args.output}")


if __name__ == "__main__":
    main()
