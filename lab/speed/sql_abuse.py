"""Measure the SQL tool under attack: what each abuse case costs, and whether one client starves another.

    uv run python -m lab.speed.sql_abuse                   # both sections
    uv run python -m lab.speed.sql_abuse --only starvation --requests 100

Sections:
- abuse: each case of the issue's table (and a few more) through `env.step` in this process, at frontier: the
  response, the wall time, and the peak resident memory of this process (what the server would hold) and of the
  SQL worker that ran it (sampled every 10 ms; a killed worker's last sample);
- starvation: a real server on loopback (SQL_WORKERS=3). A second client (127.0.0.1) times a cheap query over /ws,
  p50/p95, idle and while one client (127.0.0.2) runs slow queries back to back in 8 sessions: queries the
  interrupt stops at the time limit, then queries the pool must kill (each kill costs a worker start). Target: the
  cheap query's p50 under attack within 2x its idle p50.
Run it on an idle machine, once: it is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from typing import Any

from websockets.sync.client import ClientConnection, connect

from metric_tracker_rl import MetricTrackerRlAction
from metric_tracker_rl.serving import local_server
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.sql.pool import pool

S100K = "(SELECT string_agg(chr((97 + range % 26)::INTEGER), '') AS s FROM range(100000))"
S20K = "(SELECT string_agg('x', '') AS s FROM range(20000))"
ABUSE = {
    "DELETE in a CTE": "WITH x AS (DELETE FROM daily RETURNING *) SELECT * FROM x",
    "UPDATE in a CTE": "WITH x AS (UPDATE daily SET app_opens = 0 RETURNING *) SELECT * FROM x",
    "INSERT in a CTE (doubling hourly_by_segment)": "WITH x AS (INSERT INTO hourly_by_segment SELECT * FROM "
    "hourly_by_segment RETURNING 1) SELECT count(*) FROM x",
    "UPDATE EXTENSIONS": "UPDATE EXTENSIONS",
    "levenshtein over 100k characters": f"SELECT levenshtein(s, s) AS d FROM {S100K}",
    "200-way comma join": "SELECT count(*) AS n FROM " + ", ".join(f"range(2) t{i}" for i in range(200)),
    "replace(s, 'x', s) on 20k characters": f"SELECT length(replace(s, 'x', s)) AS n FROM {S20K}",
    "list(range) over 1M rows x range(200)": "SELECT b.range AS k, list(a.range) AS l FROM range(1000000) a, "
    "range(200) b GROUP BY b.range",
    "lists cast to text": "SELECT list(range)::VARCHAR AS t FROM range(100000000)",
    "concatenation chain": "WITH a AS (SELECT string_agg('x', '') AS s FROM range(100000)), b AS (SELECT "
    "s||s||s||s||s||s||s||s||s||s AS s FROM a), c AS (SELECT s||s||s||s||s||s||s||s||s||s AS s "
    "FROM b), d AS (SELECT s||s||s||s||s||s||s||s||s||s AS s FROM c) SELECT length(s) AS n "
    "FROM d",
    "recursive CTE without end": "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) "
    "SELECT count(*) FROM r",
    "duckdb_settings() rows naming a path": "SELECT name, value FROM duckdb_settings() WHERE value LIKE '%/%'",
}
CHEAP = "SELECT weekday, sum(orders_placed) AS o FROM daily GROUP BY weekday"
ATTACKS = {
    "interrupted at the time limit": "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) "
    "SELECT count(*) FROM r",
    "killed at the deadline": f"SELECT levenshtein(s, s) AS d FROM {S100K}",
}
TARGET_RATIO = 2.0


def peak_kb(pid: int | str) -> int:
    """VmHWM of a process, in KB (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
    except (FileNotFoundError, StopIteration, ProcessLookupError):
        return 0


def reset_peak(pid: int | str) -> None:
    """Linux resets VmHWM to the current RSS when 5 is written to clear_refs."""
    with contextlib.suppress(OSError), open(f"/proc/{pid}/clear_refs", "w") as refs:
        refs.write("5")


def bench_abuse() -> list[dict[str, Any]]:
    env = MetricTrackerRlEnvironment()
    env.reset(seed=7, difficulty="frontier", max_steps=500)
    env.step(MetricTrackerRlAction(analysis_method="query", analysis_args={"sql": "SELECT 1"}))
    rows = []
    for name, sql in ABUSE.items():
        for pid in ["self", *pool().worker_pids()]:
            reset_peak(pid)
        done = threading.Event()
        peaks = [0]

        def sample(done: threading.Event = done, peaks: list[int] = peaks) -> None:
            while not done.is_set():
                peaks[0] = max([peaks[0], *(peak_kb(pid) for pid in pool().worker_pids())])
                time.sleep(0.01)

        sampler = threading.Thread(target=sample)
        sampler.start()
        start = time.perf_counter()
        observation = env.step(MetricTrackerRlAction(analysis_method="query", analysis_args={"sql": sql}))
        elapsed = time.perf_counter() - start
        done.set()
        sampler.join()
        response = (
            f"{observation.status}: {observation.message[7:110]}"
            if observation.status == "error"
            else f"ok: {json.dumps(observation.analysis_result['rows'])[:100]}"
        )
        rows.append(
            {
                "case": name,
                "response": response,
                "seconds": elapsed,
                "server_peak_mb": peak_kb("self") / 1024,
                "worker_peak_mb": peaks[0] / 1024,
            }
        )
    env.close()
    return rows


@contextlib.contextmanager
def session(url: str, source: str) -> Iterator[ClientConnection]:
    sock = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=120, source_address=(source, 0))
    with connect(url.replace("http", "ws", 1) + "/ws", sock=sock, open_timeout=120) as ws:
        reset(ws)
        yield ws


def reset(ws: ClientConnection) -> None:
    ws.send(json.dumps({"type": "reset", "data": {"seed": 7, "difficulty": "frontier", "max_steps": 500}}))
    observation = json.loads(ws.recv(timeout=120))["data"]["observation"]
    assert observation["status"] == "ready", observation["message"]


def query(ws: ClientConnection, sql: str) -> dict[str, Any]:
    ws.send(json.dumps({"type": "step", "data": {"analysis_method": "query", "analysis_args": {"sql": sql}}}))
    return json.loads(ws.recv(timeout=300))["data"]["observation"]


def cheap_latencies(ws: ClientConnection, requests: int) -> dict[str, float]:
    samples = []
    for _ in range(requests):
        start = time.perf_counter()
        observation = query(ws, CHEAP)
        samples.append(time.perf_counter() - start)
        assert observation["status"] == "ok", observation["message"]
    ordered = sorted(samples)
    return {
        "p50_ms": 1e3 * statistics.median(ordered),
        "p95_ms": 1e3 * ordered[int(0.95 * (len(ordered) - 1))],
        "n": len(ordered),
    }


def bench_starvation(requests: int) -> dict[str, dict[str, float]]:
    results = {}
    env = {"SQL_WORKERS": "3", "MAX_SESSIONS_PER_CLIENT": "16"}
    with local_server.local_server(env=env) as url, session(url, "127.0.0.1") as victim:
        query(victim, "SELECT 1")
        cheap_latencies(victim, 20)  # the victim's tables are in every worker it will meet
        results["idle"] = cheap_latencies(victim, requests)
        for attack, sql in ATTACKS.items():
            stop = threading.Event()
            answered = [0]

            def attacker(stop: threading.Event = stop, sql: str = sql, answered: list[int] = answered) -> None:
                with session(url, "127.0.0.2") as ws:
                    while not stop.is_set():
                        if query(ws, sql)["steps_remaining"] == 0:
                            reset(ws)
                        answered[0] += 1

            threads = [threading.Thread(target=attacker) for _ in range(8)]
            for thread in threads:
                thread.start()
            time.sleep(3.0)  # the attack is under way: every attacking session has a statement out
            reset(victim)  # a fresh step budget, the same tables
            results[attack] = cheap_latencies(victim, requests)
            results[attack]["attack_queries"] = answered[0]
            stop.set()
            for thread in threads:
                thread.join(timeout=600)
        reset(victim)
        results["idle again"] = cheap_latencies(victim, requests)  # the machine's own drift, for comparison
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--only", choices=["abuse", "starvation"], help="run one section")
    parser.add_argument("--requests", type=int, default=100, help="cheap queries per measurement (default 100)")
    args = parser.parse_args()
    import duckdb

    print(f"duckdb {duckdb.__version__}, {os.cpu_count()} cores")
    if args.only in (None, "abuse"):
        print(
            "\n| case | response | time s | server peak RSS MB | worker peak RSS MB |\n| --- | --- | --- | --- | --- |"
        )
        for row in bench_abuse():
            print(
                f"| {row['case']} | {row['response']} | {row['seconds']:.2f} | {row['server_peak_mb']:.0f} | "
                f"{row['worker_peak_mb']:.0f} |"
            )
    if args.only in (None, "starvation"):
        results = bench_starvation(args.requests)
        idle = results["idle"]["p50_ms"]
        print(
            f"\ncheap query of a second client over /ws ({CHEAP})\n\n| while | p50 ms | p95 ms | x idle p50 | "
            "target |\n| --- | --- | --- | --- | --- |"
        )
        for name, stats in results.items():
            ratio = stats["p50_ms"] / idle
            idle_row = name.startswith("idle")
            verdict = "" if idle_row else ("ok" if ratio <= TARGET_RATIO else "MISSED")
            label = name if idle_row else f"one client's 8 sessions run queries {name}"
            print(f"| {label} | {stats['p50_ms']:.1f} | {stats['p95_ms']:.1f} | {ratio:.2f} | {verdict} |")


if __name__ == "__main__":
    main()
