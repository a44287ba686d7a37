"""What a stranger still got from the SQL workers: quick standing bought before runaways, runaways from many addresses
against a newcomer, and runaways that outlive their requesters. Each row's victim is a client of its own address,
measured idle and then under the attack, back to back, on a fresh server.

    uv run python -m lab.speed.attack_requesters --server-root ../before --column before   # another checkout's
    uv run python -m lab.speed.attack_requesters --column after                            # this checkout's

The server is lab.speed.attack_held_work's (`python -m server.app` of --server-root, 3 SQL workers, 8 sessions a
client, room for 80). Attackers run in threads of this process on loopback addresses of their own. Rows:

- burst: every BURST_EVERY_S, three fresh addresses each run `SELECT 1`, then send a runaway at the same instant; the
  victim's cheap query (lab.speed.attack_latency's) idle → under attack.
- newcomer: 8 addresses loop runaways; a fresh address's first `SELECT 1` every NEWCOMER_EVERY_S while they do.
- padded_close: 8 addresses x 4 sockets each send a runaway, then a step padded with 65 KB of whitespace, then close;
  the workers' CPU seconds after the last socket closed (over AFTER_S, or until the newcomer was answered), and a
  newcomer's `SELECT 1` 1 s after.
- http_hangup: 8 addresses x 2 HTTP sessions each send 4 runaway `tools/call`s and hang up 0.3 s later; the same.

It writes lab/artifacts/attack_requesters.json, each row into --column. A measurement, not a test
(tests/test_worker_turn_attacks.py holds the bounds).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import connect

from lab.speed.attack_held_work import HELD_ENV, RUNAWAY, SELECT_1, TIMEOUT_S, VICTIM, _threads, status
from lab.speed.attack_latency import CHEAP, RESET, SLOW_SQL
from lab.speed.loopback_server import (
    ROOT,
    ask,
    before_after_table,
    checkout,
    load_average_sampled,
    loopback_server,
    observation,
    read_artifact,
    spread,
    write_column,
    ws_from,
)

ARTIFACT = ROOT / "lab" / "artifacts" / "attack_requesters.json"
COMMAND = "uv run python -m lab.speed.attack_requesters"
ATTACKERS = [f"127.0.5.{host}" for host in range(1, 9)]
BURST_EVERY_S = 4.0
NEWCOMER_EVERY_S = 3.0
PADDING = 65 * 1024
HANG_UP_S = 0.3
AFTER_S = 10.0
_TICKS = 100


def _victim(url: str, seconds: float) -> dict[str, Any]:
    walls, answers = [], Counter[str]()
    with ws_from(url, VICTIM, TIMEOUT_S) as ws:
        ask(ws, RESET, TIMEOUT_S)
        ask(ws, CHEAP, TIMEOUT_S)  # its tables in a worker: the victim is known, not new
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            began = time.perf_counter()
            reply = ask(ws, CHEAP, TIMEOUT_S)
            walls.append(time.perf_counter() - began)
            answers[status(reply)] += 1
            if observation(reply).get("steps_remaining", 2) < 2:
                ask(ws, RESET, TIMEOUT_S)  # a new episode before the step budget runs out
            time.sleep(0.01)
    return {"query_ms": spread(walls, (50, 99), scale=1000, digits=1), "answers": dict(answers)}


def _first_select(url: str, address: str) -> float:
    with ws_from(url, address, TIMEOUT_S) as ws:
        ask(ws, RESET, TIMEOUT_S)
        began = time.perf_counter()
        ask(ws, SELECT_1, TIMEOUT_S)
        return time.perf_counter() - began


def workers_cpu_s(pid: int) -> float:
    """The CPU seconds the server's children (its SQL workers) have used so far."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                total += int(fields[11]) + int(fields[12])
    return total / _TICKS


# --- attacks ------------------------------------------------------------------------------------------------------


def _burst(url: str, seconds: float, stop: threading.Event) -> dict[str, Any]:
    answers: Counter[str] = Counter()
    wave = 0
    while not stop.is_set():
        sockets = [
            ws_from(url, f"127.0.{10 + wave // 80}.{3 * (wave % 80) + host + 1}", TIMEOUT_S, 0.5) for host in range(3)
        ]
        for ws in sockets:
            ask(ws, RESET, TIMEOUT_S)
            answers["quick " + status(ask(ws, SELECT_1, TIMEOUT_S))] += 1
        for ws in sockets:
            ws.send(json.dumps(RUNAWAY))
        stop.wait(BURST_EVERY_S)
        for ws in sockets:
            ws.close()
        wave += 1
    return {"answers": dict(answers), "waves": wave}


def _looping(url: str, seconds: float, stop: threading.Event) -> dict[str, Any]:
    answers: Counter[str] = Counter()

    def loop(address: str) -> None:
        with ws_from(url, address, TIMEOUT_S, 0.5) as ws:
            ask(ws, RESET, TIMEOUT_S)
            while not stop.is_set():
                answers["runaway " + status(ask(ws, RUNAWAY, TIMEOUT_S))] += 1

    _threads([functools.partial(loop, address) for address in ATTACKERS])
    return {"answers": dict(answers)}


def _padded_close(url: str) -> dict[str, Any]:
    answers: Counter[str] = Counter()

    def one(address: str) -> None:
        with ws_from(url, address, TIMEOUT_S, close_timeout_s=0.5) as ws:
            answers["reset " + status(ask(ws, RESET, TIMEOUT_S))] += 1
            ws.send(json.dumps(RUNAWAY))
            ws.send(" " * PADDING + json.dumps(SELECT_1))
            time.sleep(0.3)
        answers["closed behind a padded step"] += 1

    _threads([functools.partial(one, address) for address in ATTACKERS for _ in range(4)])
    return {"answers": dict(answers)}


def _http_hangup(url: str) -> dict[str, Any]:
    answers: Counter[str] = Counter()

    def one(address: str) -> None:
        with httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=TIMEOUT_S) as client:
            session_id = client.post(
                f"{url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "openenv/session/create"}
            ).json()["result"]["session_id"]
            sock = socket.create_connection(
                ("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=TIMEOUT_S, source_address=(address, 0)
            )
            with connect(
                f"{url.replace('http', 'ws', 1)}/ws?session_id={session_id}", sock=sock, open_timeout=TIMEOUT_S
            ) as attached:
                ask(attached, RESET, TIMEOUT_S)
            call = {
                "jsonrpc": "2.0",
                "id": 2,
                "method": "tools/call",
                "params": {"name": "query", "arguments": {"sql": SLOW_SQL}, "session_id": session_id},
            }
            for _ in range(4):
                try:
                    client.post(f"{url}/mcp", json=call, timeout=HANG_UP_S)
                    answers["answered"] += 1
                except httpx.TimeoutException:
                    answers["hung up"] += 1

    _threads([functools.partial(one, address) for address in ATTACKERS for _ in range(2)])
    return {"answers": dict(answers)}


# --- rows -------------------------------------------------------------------------------------------------------


def _under(
    attack: Callable[[str, float, threading.Event], dict[str, Any]],
) -> Callable[[str, int, float], dict[str, Any]]:
    def measure(url: str, pid: int, seconds: float) -> dict[str, Any]:
        idle = _victim(url, seconds)
        stop, found = threading.Event(), {}
        attacker = threading.Thread(target=lambda: found.update(attack(url, seconds, stop)), daemon=True)
        attacker.start()
        time.sleep(2.0)
        newcomers = []
        under = _victim(url, seconds) if attack is _burst else None
        if attack is _looping:
            for index in range(4):
                newcomers.append(round(_first_select(url, f"127.0.6.{index + 1}"), 3))
                time.sleep(NEWCOMER_EVERY_S)
            under = _victim(url, seconds / 2)
        stop.set()
        attacker.join(timeout=600)
        return {"idle": idle, "under_attack": under, "newcomer_first_s": newcomers, "attacker": found}

    return measure


def _left(attack: Callable[[str], dict[str, Any]]) -> Callable[[str, int, float], dict[str, Any]]:
    def measure(url: str, pid: int, seconds: float) -> dict[str, Any]:
        found = attack(url)
        left = workers_cpu_s(pid)
        time.sleep(1.0)
        newcomer = _first_select(url, "127.0.7.1")
        time.sleep(max(0.0, AFTER_S - 1.0 - newcomer))
        return {
            "attacker": found,
            "workers_cpu_after_s": round(workers_cpu_s(pid) - left, 2),
            "newcomer_first_s": round(newcomer, 3),
        }

    return measure


ROWS: dict[str, Callable[[str, int, float], dict[str, Any]]] = {
    "burst": _under(_burst),
    "newcomer": _under(_looping),
    "padded_close": _left(_padded_close),
    "http_hangup": _left(_http_hangup),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=list(ROWS), action="append", help="a row to measure (all by default)")
    parser.add_argument("--seconds", type=float, default=12.0, help="each victim measurement's length")
    parser.add_argument("--server-root", type=Path, default=ROOT, help="the checkout whose server is attacked")
    parser.add_argument("--column", choices=["before", "after"], default="after")
    args = parser.parse_args()
    root = args.server_root.resolve()
    code = checkout(root)
    for name in args.only or list(ROWS):
        with load_average_sampled() as load, loopback_server(root, HELD_ENV) as served:
            row = {
                **ROWS[name](served.url, served.pid, args.seconds),
                "server_tracebacks": served.tracebacks(),
                "load_average": load,
            }
        print(json.dumps({name: row}), flush=True)
        rows = (read_artifact(ARTIFACT)[args.column] or {}).get("rows", {})
        write_column(ARTIFACT, args.column, {**code, "rows": {**rows, name: row}}, COMMAND)


# --- the docs' table ----------------------------------------------------------------------------------------------


def _victim_cell(row: dict[str, Any]) -> str:
    idle, under = row["idle"]["query_ms"], row["under_attack"]["query_ms"]
    return (
        f"{idle['p50']:,.0f} / {idle['max']:,.0f} → {under['p50']:,.0f} / {under['max']:,.0f} "
        f"({idle['n']} → {under['n']} answered)"
    )


AFTER_MEASURE = (
    f"the workers' CPU seconds after the attacker left, over the next {AFTER_S:.0f} s or until the "
    "newcomer below was answered"
)


def _cpu_after(row: dict[str, Any]) -> str:
    return f"{row['workers_cpu_after_s']:.1f} s in {max(AFTER_S, 1.0 + row['newcomer_first_s']):.0f} s"


TABLE: tuple[tuple[str, str, str, Callable[[dict[str, Any]], str]], ...] = (
    (
        "burst",
        "every 4 s, three fresh addresses each run `SELECT 1`, then send a runaway at the same instant",
        "victim's cheap query, p50 / max ms, idle → under attack",
        _victim_cell,
    ),
    (
        "newcomer",
        "8 addresses loop runaways",
        "a fresh address's first `SELECT 1`, s (4 of them)",
        lambda row: ", ".join(f"{wall:.2f}" for wall in row["newcomer_first_s"]),
    ),
    ("newcomer", "", "victim's cheap query, p50 / max ms, idle → under attack", _victim_cell),
    (
        "padded_close",
        "8 addresses × 4 sockets: a runaway, a step padded with 65 KB of whitespace, the close",
        AFTER_MEASURE,
        _cpu_after,
    ),
    ("padded_close", "", "a newcomer's `SELECT 1`, 1 s after", lambda row: f"{row['newcomer_first_s']:.2f} s"),
    (
        "http_hangup",
        "8 addresses × 2 HTTP sessions: 4 runaway `tools/call`s each, hung up after 0.3 s",
        AFTER_MEASURE,
        _cpu_after,
    ),
    ("http_hangup", "", "a newcomer's `SELECT 1`, 1 s after", lambda row: f"{row['newcomer_first_s']:.2f} s"),
)


def table(kept: dict[str, Any] | None = None) -> str:
    """The docs' table of the kept runs: the old code's figures beside the new code's."""
    return before_after_table(kept or read_artifact(ARTIFACT), TABLE)


if __name__ == "__main__":
    main()
