"""What waits in the server's queues under a stranger's load: many audit episodes asked for at once, the event loop
while workers are killed on demand, and a known client's new session on a server that never-seen addresses fill.

    uv run python -m lab.speed.attack_queues --server-root ../before --column before   # another checkout's
    uv run python -m lab.speed.attack_queues --column after                            # this checkout's

The server is lab.speed.attack_held_work's (`python -m server.app` of --server-root, 3 SQL workers, 8 sessions a
client, room for 80). Attackers and the victim are processes of their own on loopback addresses. Rows:

- audit_builds: AUDIT_SESSIONS sessions over AUDIT_ADDRESSES addresses each reset an audit episode of its own seed at
  once and hold it: each reset's latency, the order the builds finished in, the server's memory (with its SQL
  workers) while all are held; another visitor's frontier resets, idle and during the builds.
- kills_lag: attack_strangers' kills (6 addresses x 3 sockets loop: reset, the stop-ignoring statement, drop 0.6 s
  later) with the server's loop-lag probe on (`metric_tracker_rl/serving/loop_lag.py`): `/health` from another
  address beside the probe's stalls, each split into the loop thread's own CPU (the loop blocked) and the rest
  (the loop waiting for a core or for the GIL).
- full_parade: a parade of never-seen addresses, each holding sessions, fills a server with room for FULL_ROOM; a
  client the server knows then opens a new session.

It writes lab/artifacts/attack_queues.json, each row into --column (attack_queues_table.py renders it for the docs).
A measurement, not a test (tests/test_reset_wait.py, tests/test_startup_heap.py and
tests/test_full_server_seniority.py hold the behaviour; tests/test_loop_lag.py the probe).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from websockets.exceptions import ConnectionClosed, InvalidStatus

from lab.speed.attack_held_work import HELD_ENV, RUNAWAY, SEED_BASE, TIMEOUT_S, VICTIM, reset_victim, status
from lab.speed.attack_latency import CHEAP, RESET, tree_rss_mb
from lab.speed.attack_strangers import PROBE
from lab.speed.attack_strangers import role as strangers_role
from lab.speed.loopback_server import (
    ROOT,
    ask,
    attack_arguments,
    checkout,
    load_average_sampled,
    loopback_server,
    never_seen_address,
    read_artifact,
    spread,
    visitor_parade,
    write_column,
    ws_from,
)

ARTIFACT = ROOT / "lab" / "artifacts" / "attack_queues.json"
COMMAND = "uv run python -m lab.speed.attack_queues"
AUDIT_SESSIONS = 43
AUDIT_ADDRESSES = 6
LAG_FILE = "METRIC_TRACKER_LOOP_LAG_FILE"
SLOW_HEALTH_S = 0.2
PARADE_EVERY_S = 0.1
PARADE_HOLD_S = 5.0  # about 50 never-seen addresses at a time: more than the room
FULL_ROOM = 24
KNOWN_EVERY_S = 1.0


def progress(message: str) -> None:
    print(f"[attack_queues {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- roles (each in a process of its own) --------------------------------------------------------------------------


def audit_builds(url: str, seconds: float) -> dict[str, Any]:
    """AUDIT_SESSIONS sockets reset audit episodes of fresh seeds at once; each is held until all are answered."""
    walls: list[float] = []
    order: list[int] = []
    answers: Counter[str] = Counter()
    ready, done = threading.Barrier(AUDIT_SESSIONS), threading.Barrier(AUDIT_SESSIONS + 1)
    lock = threading.Lock()

    def one(index: int) -> None:
        try:
            with ws_from(url, f"127.0.2.{1 + index % AUDIT_ADDRESSES}", TIMEOUT_S) as ws:
                ready.wait()
                began = time.perf_counter()
                reset = {"type": "reset", "data": {"difficulty": "audit", "seed": SEED_BASE + 70_000 + index}}
                answer = status(ask(ws, reset, TIMEOUT_S))
                with lock:
                    walls.append(time.perf_counter() - began)
                    order.append(index % AUDIT_ADDRESSES)
                    answers[answer] += 1
                done.wait()
        except OSError as exc:
            answers[type(exc).__name__] += 1
            done.wait()

    threads = [threading.Thread(target=one, args=(index,), daemon=True) for index in range(AUDIT_SESSIONS)]
    for thread in threads:
        thread.start()
    done.wait()  # all answered and still held: the parent reads the server's memory now
    print(json.dumps({"held": True}), flush=True)
    sys.stdin.readline()  # until the parent has read it
    for thread in threads:
        thread.join()
    return {
        "sessions": AUDIT_SESSIONS,
        "addresses": AUDIT_ADDRESSES,
        "reset_s": spread(walls, (50, 90), digits=2),
        "answers": dict(answers),
        "finish_order": order,
    }


def health_times(url: str, seconds: float) -> dict[str, Any]:
    """GET /health every 0.1 s from PROBE for `seconds`; the answers slower than SLOW_HEALTH_S with when they were
    asked (to be matched with the loop's stalls)."""
    walls, slow = [], []
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=url, timeout=TIMEOUT_S, transport=httpx.HTTPTransport(local_address=PROBE)) as client:
        while time.monotonic() < deadline:
            asked, began = time.time(), time.perf_counter()
            client.get("/health")
            walls.append(time.perf_counter() - began)
            if walls[-1] > SLOW_HEALTH_S:
                slow.append([round(asked, 3), round(walls[-1], 3)])
            time.sleep(0.1)
    return {"health_ms": spread(walls, (50, 99), scale=1000, digits=1), "slow": slow}


def parade_holders(url: str, seconds: float) -> dict[str, Any]:
    """Every PARADE_EVERY_S a never-seen address opens a session, resets, sends a runaway and holds it
    PARADE_HOLD_S."""
    answers: Counter[str] = Counter()
    deadline = time.monotonic() + seconds

    def visit(index: int) -> None:
        try:
            with ws_from(url, never_seen_address(index), TIMEOUT_S, 0.5) as ws:
                answers["reset " + status(ask(ws, RESET, TIMEOUT_S))] += 1
                ws.send(json.dumps(RUNAWAY))
                time.sleep(PARADE_HOLD_S)
        except InvalidStatus as exc:
            answers[f"refused {exc.response.status_code}"] += 1
        except (ConnectionClosed, OSError) as exc:
            answers[type(exc).__name__] += 1

    visitors = visitor_parade(visit, lambda _: time.monotonic() < deadline, PARADE_EVERY_S)
    return {"answers": dict(answers), "visitors": visitors}


def known_client(url: str, seconds: float) -> dict[str, Any]:
    """The victim, known to the server (a session of its ran the cheap query before the parade), opens a session
    every KNOWN_EVERY_S for `seconds`: reset and the cheap query, then closes it (it holds none when it asks)."""
    tries: Counter[str] = Counter()
    walls = []
    with ws_from(url, VICTIM, TIMEOUT_S) as first:
        ask(first, RESET, TIMEOUT_S)
        ask(first, CHEAP, TIMEOUT_S)
    print(json.dumps({"known": True}), flush=True)
    sys.stdin.readline()  # the parade is under way
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        began = time.perf_counter()
        try:
            with ws_from(url, VICTIM, TIMEOUT_S, 0.5) as ws:
                reply = ask(ws, RESET, TIMEOUT_S)
                outcome = reply["type"] if reply["type"] == "error" else status(ask(ws, CHEAP, TIMEOUT_S))
        except ConnectionClosed as exc:
            outcome = f"closed {exc.rcvd.code if exc.rcvd else None}"
        except InvalidStatus as exc:
            outcome = f"refused {exc.response.status_code}"
        tries[outcome] += 1
        if outcome == "ok":
            walls.append(time.perf_counter() - began)
        time.sleep(KNOWN_EVERY_S)
    return {"tries": dict(tries), "served_s": spread(walls, (50,), digits=2)}


ROLES: dict[str, Callable[[str, float], dict[str, Any]]] = {
    "audit_builds": audit_builds,
    "reset_victim": reset_victim,
    "health_times": health_times,
    "parade_holders": parade_holders,
    "known_client": known_client,
}


def role(name: str, url: str, seconds: float) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "lab.speed.attack_queues", "--role", name, "--url", url, "--seconds", str(seconds)]
    return subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def result_of(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = process.communicate(timeout=1800)
    return json.loads(out.strip().splitlines()[-1])


# --- rows -------------------------------------------------------------------------------------------------------


def row_audit_builds(url: str, pid: int, seconds: float, lag_file: Path) -> dict[str, Any]:
    idle = result_of(role("reset_victim", url, seconds))
    before_mb = tree_rss_mb(pid)
    flood = role("audit_builds", url, seconds)
    time.sleep(1.0)
    under = role("reset_victim", url, seconds)
    assert flood.stdout is not None and flood.stdin is not None
    held = json.loads(flood.stdout.readline())
    held_mb = tree_rss_mb(pid) if held.get("held") else None
    flood.stdin.write("\n")
    flood.stdin.flush()
    return {
        "victim_idle": idle,
        "victim_under": result_of(under),
        "builds": result_of(flood),
        "before_mb": round(before_mb, 1),
        "held_mb": None if held_mb is None else round(held_mb, 1),
    }


def row_kills_lag(url: str, pid: int, seconds: float, lag_file: Path) -> dict[str, Any]:
    """/health idle and under the kills, and the loop's stalls meanwhile (with this checkout's probe; an older
    server records none: `probe_ran` says whether it ran)."""
    idle = result_of(role("health_times", url, 5.0))
    attacking = strangers_role("kills", url, seconds + 5)
    time.sleep(3.0)
    under = result_of(role("health_times", url, seconds))
    result_of(attacking)
    lines = [json.loads(line) for line in lag_file.read_text().splitlines()] if lag_file.exists() else []
    stalls = [line for line in lines if "lag_s" in line]
    return {
        "health_idle": idle,
        "health_under": under,
        "probe_ran": bool(lines),
        "stalls": stalls,
        "slow_health_in_stalls": _slow_in_stalls(under["slow"], stalls),
    }


def _slow_in_stalls(slow: list[list[float]], stalls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each slow /health answer with the stalls that ended while it waited (a stall is logged as it ends)."""
    matched = []
    for asked, wall in slow:
        during = [stall for stall in stalls if asked <= stall["at"] <= asked + wall + 0.05]
        matched.append({"wall_s": wall, "stalls": [[stall["lag_s"], stall["cause"]] for stall in during]})
    return matched


def row_full_parade(url: str, pid: int, seconds: float, lag_file: Path) -> dict[str, Any]:
    known = role("known_client", url, seconds)
    assert known.stdout is not None and known.stdin is not None
    json.loads(known.stdout.readline())
    parading = role("parade_holders", url, seconds + 6)
    time.sleep(4.0)  # the server is full
    known.stdin.write("\n")
    known.stdin.flush()
    return {"known": result_of(known), "parade": result_of(parading), "room": FULL_ROOM}


ROWS: dict[str, Callable[[str, int, float, Path], dict[str, Any]]] = {
    "audit_builds": row_audit_builds,
    "kills_lag": row_kills_lag,
    "full_parade": row_full_parade,
}
ENV = {"full_parade": {"MAX_CONCURRENT_ENVS": str(FULL_ROOM)}}


def main() -> None:
    args = attack_arguments(__doc__.split("\n\n")[0], list(ROWS), ROLES)
    if args is None:
        return
    root = args.server_root.resolve()
    code = checkout(root)
    for name in args.only or list(ROWS):
        with tempfile.TemporaryDirectory() as directory:
            lag_file = Path(directory) / "loop_lag.jsonl"
            env = {**HELD_ENV, LAG_FILE: str(lag_file), **ENV.get(name, {})}
            with load_average_sampled() as load, loopback_server(root, env) as served:
                progress(f"{name}: server of {root} at {served.url}")
                measured = ROWS[name](served.url, served.pid, args.seconds, lag_file)
                row = {**measured, "server_tracebacks": served.tracebacks()}
        row["load_average"] = load
        print(json.dumps({name: row}), flush=True)
        rows = (read_artifact(ARTIFACT)[args.column] or {}).get("rows", {})
        write_column(ARTIFACT, args.column, {**code, "rows": {**rows, name: row}}, COMMAND)


if __name__ == "__main__":
    main()
