"""Measure what attacks on the SQL workers cost another client: its cheap query's latency, idle and under attack,
and the peak memory of the server and its SQL workers.

    uv run python -m lab.speed.attack_latency_pool                      # every scenario, writes the artifact
    uv run python -m lab.speed.attack_latency_pool --only two_addresses --requests 40   # merged into it

A real server on loopback (SQL_WORKERS=3, room for 64 attacking sessions and the victim). Every attacker and the
victim are processes of their own, each on its own loopback address (127.0.0.2, 127.0.0.3, ...: another address is
another client to the server). The victim (127.0.0.100) times a cheap query over /ws, one at a time; p50 and p99
are read idle, then while the scenario's attackers loop their queries (from 10 s after every attacking session is
open: the first statement of an address never seen can hold the worker kept for quick queries once).
Memory is the sum of the resident sets of the server process and its SQL workers, sampled every 50 ms; the peak is
over the scenario. The last scenario SIGKILLs each new SQL worker before it is ready, six times, and times how long
SQL takes to come back.

Run it on an idle machine, once: it is a measurement, not a test. It writes lab/artifacts/attack_latency_pool.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

from metric_tracker_rl.server_process import free_port, serving

ROOT = Path(__file__).resolve().parents[2]
ARTIFACT = ROOT / "lab" / "artifacts" / "attack_latency_pool.json"
VICTIM = "127.0.0.100"
CHEAP = "SELECT weekday, sum(orders_placed) AS o FROM daily GROUP BY weekday"
QUERIES = {
    # Interrupted at the time limit: a second of a worker's CPU each.
    "slow": "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
    # Near the per-query memory limit: a quarter of a billion-row list, grouped (stopped at the limit).
    "memory": "SELECT b.range AS k, list(a.range) AS l FROM range(1000000) a, range(200) b GROUP BY b.range",
}
# name: (query, sessions per address, addresses)
SCENARIOS: dict[str, tuple[str, int, int]] = {
    "two_addresses": ("slow", 0, 2),  # the attack: 2 sessions from one address, 1 from another
    "eight_addresses": ("slow", 1, 8),
    "query_limit_64_sessions": ("memory", 8, 8),
}
SERVER_ENV = {
    "SQL_WORKERS": "3",
    "MAX_CONCURRENT_ENVS": "65",
    "MAX_SESSIONS_PER_CLIENT": "8",
    "ENABLE_WEB_INTERFACE": "false",
    "UNRESET_SESSION_GRACE_S": "600",
}
WARM_UP_S = 10.0  # after every attacking session is open: each address has run statements


# --- the client processes ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def session(url: str, source: str) -> Iterator[ClientConnection]:
    sock = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=300, source_address=(source, 0))
    with connect(url.replace("http", "ws", 1) + "/ws", sock=sock, open_timeout=300) as ws:
        reset(ws)
        yield ws


def reset(ws: ClientConnection) -> None:
    ws.send(json.dumps({"type": "reset", "data": {"seed": 7, "difficulty": "medium", "max_steps": 500}}))
    json.loads(ws.recv(timeout=300))


def ask(ws: ClientConnection, sql: str) -> dict[str, Any]:
    ws.send(json.dumps({"type": "step", "data": {"analysis_method": "query", "analysis_args": {"sql": sql}}}))
    reply = json.loads(ws.recv(timeout=300))
    return reply["data"]["observation"] if reply["type"] == "observation" else {"status": "protocol error"}


def run_victim(url: str, requests: int) -> None:
    """Time `requests` cheap queries one after another; print the latencies (ms) as JSON."""
    with session(url, VICTIM) as ws:
        for _ in range(5):
            ask(ws, CHEAP)  # its tables are in a worker
        samples, statuses = [], []
        for _ in range(requests):
            start = time.perf_counter()
            statuses.append(ask(ws, CHEAP)["status"])
            samples.append(1e3 * (time.perf_counter() - start))
    print(json.dumps({"ms": samples, "statuses": statuses}))


def run_attacker(url: str, source: str, sessions: int, sql: str) -> None:
    """Loop `sql` in `sessions` sessions from `source` until killed."""

    def loop() -> None:
        with session(url, source) as ws:
            print("ready", flush=True)  # its session is open
            while True:
                if ask(ws, sql).get("steps_remaining", 1) <= 0:
                    reset(ws)

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(sessions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


# --- the coordinator --------------------------------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    with contextlib.suppress(OSError, StopIteration, ValueError), open(f"/proc/{pid}/status") as status:
        return int(next(line for line in status if line.startswith("VmRSS")).split()[1]) / 1024
    return 0.0


def worker_pids(server: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == server:
                    found.append(int(entry.name))
    return found


class MemorySampler:
    """The peak of server + workers resident memory while it runs."""

    def __init__(self, server: int) -> None:
        self.server, self.peak, self.workers_peak = server, 0.0, 0.0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self.done.is_set():
            workers = sum(rss_mb(pid) for pid in worker_pids(self.server))
            self.peak = max(self.peak, rss_mb(self.server) + workers)
            self.workers_peak = max(self.workers_peak, workers)
            time.sleep(0.05)

    def __enter__(self) -> MemorySampler:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.done.set()
        self.thread.join()


def child(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "lab.speed.attack_latency_pool", *arguments]


def victim_run(url: str, requests: int) -> dict[str, Any]:
    result = subprocess.run(
        child("victim", url, str(requests)), capture_output=True, text=True, cwd=ROOT, timeout=1800, check=True
    )
    data = json.loads(result.stdout.strip().splitlines()[-1])
    ordered = sorted(data["ms"])
    return {
        "p50_ms": round(statistics.median(ordered), 1),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 1),
        "max_ms": round(ordered[-1], 1),
        "n": len(ordered),
        "not_ok": sum(status != "ok" for status in data["statuses"]),
    }


def attack(url: str, name: str, requests: int, server: int) -> dict[str, Any]:
    query, per_address, addresses = SCENARIOS[name]
    sessions = [2, 1] if per_address == 0 else [per_address] * addresses
    attackers = [
        subprocess.Popen(
            child("attack", url, f"127.0.0.{2 + index}", str(count), query),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for index, count in enumerate(sessions)
    ]
    try:
        with MemorySampler(server) as memory:
            for process, count in zip(attackers, sessions, strict=True):
                for _ in range(count):  # every attacking session is open: the attack is under way
                    process.stdout.readline()  # type: ignore[union-attr]
            time.sleep(WARM_UP_S)
            latency = victim_run(url, requests)
    finally:
        for process in attackers:
            process.kill()
            process.wait()
    return {
        "request": f"{QUERIES[query]!r} looped by {sum(sessions)} sessions from {len(sessions)} addresses",
        **latency,
        "peak_mb": round(memory.peak),
        "workers_peak_mb": round(memory.workers_peak),
    }


def heal_time(url: str, server: int, kills: int = 6) -> dict[str, Any]:
    """SIGKILL every new worker before it is ready, `kills` times; seconds from the last kill to SQL answering."""
    known = set(worker_pids(server))
    for pid in known:
        os.kill(pid, signal.SIGKILL)
    killed = 0
    with session(url, VICTIM) as ws:
        replies: list[str] = []
        asking = threading.Thread(target=lambda: replies.append(ask(ws, CHEAP)["status"]))
        asking.start()
        while killed < kills:
            for pid in set(worker_pids(server)) - known:
                os.kill(pid, signal.SIGKILL)
                known.add(pid)
                killed += 1
            time.sleep(0.002)
        last_kill = time.perf_counter()
        asking.join()
        while ask(ws, CHEAP)["status"] != "ok":
            time.sleep(0.05)
        return {
            "request": f"SIGKILL each new SQL worker before it is ready, {kills} times",
            "seconds_to_sql": round(time.perf_counter() - last_kill, 2),
            "first_reply": replies[0],
        }


def measure(requests: int, only: str | None) -> dict[str, Any]:
    port = free_port()
    command = [sys.executable, "-m", "server.app", "--host", "127.0.0.1", "--port", str(port)]
    results: dict[str, Any] = {"cores": os.cpu_count(), "requests": requests, "settings": SERVER_ENV}
    with tempfile.TemporaryFile() as log, serving(command, port, {**os.environ, **SERVER_ENV}, log, cwd=ROOT) as server:
        url = f"http://127.0.0.1:{port}"
        with MemorySampler(server.pid) as memory:
            results["idle"] = {**victim_run(url, requests)}
        results["idle"]["peak_mb"] = round(memory.peak)
        for name in SCENARIOS:
            if only in (None, name):
                results[name] = attack(url, name, requests, server.pid)
                print(name, results[name], file=sys.stderr)
        if only in (None, "heal"):
            results["heal"] = heal_time(url, server.pid)
    return results


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "victim":
        run_victim(sys.argv[2], int(sys.argv[3]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "attack":
        run_attacker(sys.argv[2], sys.argv[3], int(sys.argv[4]), QUERIES[sys.argv[5]])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--only", choices=[*SCENARIOS, "heal"], help="one scenario (merged into the artifact)")
    parser.add_argument("--requests", type=int, default=200, help="cheap queries per measurement")
    args = parser.parse_args()
    results = measure(args.requests, args.only)
    print(json.dumps(results, indent=2))
    if args.only is not None and ARTIFACT.exists():  # one scenario: merged into the artifact, idle included
        results = {**json.loads(ARTIFACT.read_text()), **results}
    ARTIFACT.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
