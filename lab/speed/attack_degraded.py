"""Attacks that slowed a second client or kept the server's memory without breaking anything: each measured on an
old checkout's server and on this one's, back to back in one run, the victim idle and then under the attack.

    uv run python -m lab.speed.attack_degraded --before-root ../old            # every row, both columns
    uv run python -m lab.speed.attack_degraded --only debugger_tabs --column after   # one row, one column

The server is `python -m server.app` of the checkout (the debugger on, 8 sessions a client, 3 SQL workers, room for
80 sessions), or plain `uvicorn server.app:app` for the frame row. Attackers and the victim are processes of their
own on loopback addresses. Rows:

- fresh_address_slow_sql: a fresh address for every runaway statement, 3 at a time; the victim's cheap query
  (lab.speed.attack_latency's) over its own /ws session.
- eight_addresses_short: 8 addresses, one session each, looping a statement of about 0.1 s of CPU: quick, to a gate that
  counts only how long a statement holds its worker; the same victim.
- debugger_tabs: lab.speed.debugger_attacks's `busy_tabs` (16 tabs of one address firing a cheap page event back to
  back); another visitor's same event, from joining the queue to its result.
- unfinished_frames: lab.speed.attack_latency's row (8 addresses x 7 sessions each holding most of a 1 MiB frame);
  the server's memory with its workers before, at the peak and SETTLE_S after the attack ended.
- big_frames_uvicorn: plain uvicorn, 2, 8 and 15 MiB frames, reconnecting; the same memory figures.

It writes lab/artifacts/attack_degraded.json, each row into its column. Run it on a quiet machine: it is a
measurement, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from lab.speed import attack_latency, debugger_attacks
from lab.speed.loopback_server import ROOT, checkout, commit_cells, load_average_sampled, read_artifact, write_column
from metric_tracker_rl import server_process

ARTIFACT = ROOT / "lab" / "artifacts" / "attack_degraded.json"
COMMAND = "uv run python -m lab.speed.attack_degraded"
SERVER_ENV = {**attack_latency.SERVER_ENV, "MAX_CONCURRENT_ENVS": "80", "METRIC_TRACKER_DEBUG": ""}
SETTLE_S = 60.0  # after the attack's last connection closed
SHORT_SQL = "SELECT sum(range % 7) AS s FROM range(20000000)"  # about 0.1 s of one core
SHORT_ADDRESSES = [f"127.0.0.{host}" for host in range(10, 18)]


# --- attacks (each in the attacker's process until its deadline, counting what it was answered) ---------------------


def eight_addresses_short(url: str, deadline: float, answers: Counter[str]) -> None:
    """8 addresses, one session each, looping SHORT_SQL."""
    step = {"type": "step", "data": {"analysis_method": "query", "analysis_args": {"sql": SHORT_SQL}}}

    def one(address: str) -> None:
        with attack_latency.ws_from(url, address) as ws:
            attack_latency.ask(ws, attack_latency.RESET)
            while time.monotonic() < deadline:
                reply = attack_latency.ask(ws, step)
                answers["short " + attack_latency.outcome(reply)] += 1
                if reply.get("data", {}).get("observation", {}).get("steps_remaining", 2) < 2:
                    attack_latency.ask(ws, attack_latency.RESET)

    attack_latency._threads([functools.partial(one, address) for address in SHORT_ADDRESSES])


ATTACKS: dict[str, tuple[str, Callable[[str, float, Counter[str]], None]]] = {
    "fresh_address_slow_sql": attack_latency.ATTACKS["fresh_address_slow_sql"],
    "eight_addresses_short": (
        "8 addresses, one session each, looping a statement of about 0.1 s of CPU",
        eight_addresses_short,
    ),
    "debugger_tabs": debugger_attacks.ATTACKS["busy_tabs"][:2],
    "unfinished_frames": attack_latency.ATTACKS["unfinished_frames"],
    "big_frames_uvicorn": attack_latency.ATTACKS["big_frames_uvicorn"],
}
VICTIMS: dict[str, str] = {"debugger_tabs": "page_event"}  # the others: the cheap query and /health
PLAIN_UVICORN = frozenset({"big_frames_uvicorn"})
MEMORY_ROWS = frozenset({"unfinished_frames", "big_frames_uvicorn"})


def run_victim(kind: str, url: str, seconds: float) -> dict[str, Any]:
    if kind == "page_event":
        debugger_attacks.Page(url, debugger_attacks.VICTIM).call(
            "select_difficulty", ["hard"], debugger_attacks.new_tab()
        )  # the page is warm
        return {"event": debugger_attacks.cheap_event_latencies(url, seconds)}
    return attack_latency.victim(url, seconds)


# --- orchestration ---------------------------------------------------------------------------------------------------


def role(*arguments: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "lab.speed.attack_degraded", *arguments], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )


@contextlib.contextmanager
def server(root: Path, plain_uvicorn: bool) -> Iterator[tuple[str, int]]:
    """A server of the checkout at `root` (its code first on the path), as the image configures it."""
    port = server_process.free_port()
    module = ["uvicorn", "server.app:app"] if plain_uvicorn else ["server.app"]
    command = [sys.executable, "-m", *module, "--host", "127.0.0.1", "--port", str(port)]
    env = {**os.environ, **SERVER_ENV}
    env.pop(server_process.SECRET_VARIABLE, None)
    with (
        tempfile.TemporaryFile() as log,
        server_process.serving(command, port, env, log, cwd=root, timeout_s=180) as process,
    ):
        yield f"http://127.0.0.1:{port}", process.pid


def measure(root: Path, attack: str, seconds: float) -> dict[str, Any]:
    kind = VICTIMS.get(attack, "query")
    with load_average_sampled() as load, server(root, attack in PLAIN_UVICORN) as (url, pid):
        idle = attack_latency.result_of(
            role("--role", "victim", "--victim", kind, "--url", url, "--seconds", str(seconds))
        )
        before_mb = attack_latency.tree_rss_mb(pid)
        with attack_latency.peak_memory(pid) as peak:
            attacking = role("--role", "attacker", "--only", attack, "--url", url, "--seconds", str(seconds + 4))
            time.sleep(2)  # the attack is under way
            under = attack_latency.result_of(
                role("--role", "victim", "--victim", kind, "--url", url, "--seconds", str(seconds))
            )
            answers = attack_latency.result_of(attacking)
        row: dict[str, Any] = {
            "attack": ATTACKS[attack][0],
            "attacker_answers": answers,
            "idle": idle,
            "under_attack": under,
            "peak_mb": peak["mb"],
            "before_mb": round(before_mb, 1),
        }
        if attack in MEMORY_ROWS:
            time.sleep(SETTLE_S)
            row["after_mb"] = round(attack_latency.tree_rss_mb(pid), 1)
    first = next(iter(idle))
    row["ratio_p50"] = round(under[first]["p50_ms"] / idle[first]["p50_ms"], 2)
    row["load_average"] = load
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=sorted(ATTACKS), action="append", help="a row (all by default)")
    parser.add_argument("--seconds", type=float, default=8.0, help="each victim measurement's length")
    parser.add_argument("--server-root", type=Path, default=ROOT, help="the checkout whose server is the `after`")
    parser.add_argument("--before-root", type=Path, help="an older checkout, each row measured on it just before")
    parser.add_argument(
        "--column",
        choices=["before", "after"],
        default="after",
        help="the column --server-root's rows go to (without --before-root)",
    )
    parser.add_argument("--role", choices=["victim", "attacker"], help=argparse.SUPPRESS)
    parser.add_argument("--victim", default="query", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "victim":
        print(json.dumps(run_victim(args.victim, args.url, args.seconds)))
        return
    if args.role == "attacker":
        answers: Counter[str] = Counter()
        ATTACKS[args.only[0]][1](args.url, time.monotonic() + args.seconds, answers)
        print(json.dumps(dict(answers)))
        return
    columns = (
        [("before", args.before_root), ("after", args.server_root)]
        if args.before_root
        else [(args.column, args.server_root)]
    )
    command = (
        COMMAND
        if args.before_root is None
        else f"{COMMAND} --before-root <a checkout of {checkout(args.before_root.resolve())['commit']}>"
    )
    for name in args.only or list(ATTACKS):
        for column, root in columns:
            row = measure(root.resolve(), name, args.seconds)
            print(json.dumps({column: {name: row}}), flush=True)
            rows = (read_artifact(ARTIFACT)[column] or {}).get("rows", {})
            write_column(ARTIFACT, column, {**checkout(root.resolve()), "rows": {**rows, name: row}}, command)


# --- the docs' table --------------------------------------------------------------------------------------------------


def _latency(row: dict[str, Any]) -> str:
    kind = next(iter(row["idle"]))
    idle, under = row["idle"][kind], row["under_attack"][kind]
    return (
        f"{idle['p50_ms']:,.0f} / {idle['p99_ms']:,.0f} → {under['p50_ms']:,.0f} / {under['p99_ms']:,.0f} "
        f"({row['ratio_p50']:.1f}×; {idle['n']} → {under['n']} answered)"
    )


def _memory(row: dict[str, Any]) -> str:
    return f"{row['before_mb']:,.0f} → {row['peak_mb']:,.0f} → {row['after_mb']:,.0f} MB"


QUERY_MEASURE = "victim's cheap query, p50 / p99 ms, idle → under attack (p50 ratio; how many answered)"
TABLE: tuple[tuple[str, str, Callable[[dict[str, Any]], str]], ...] = (
    ("fresh_address_slow_sql", QUERY_MEASURE, _latency),
    ("eight_addresses_short", QUERY_MEASURE, _latency),
    ("debugger_tabs", "another visitor's page event" + QUERY_MEASURE.removeprefix("victim's cheap query"), _latency),
    ("unfinished_frames", f"server and workers' memory: before → peak → {SETTLE_S:.0f} s after", _memory),
    ("big_frames_uvicorn", f"server and workers' memory: before → peak → {SETTLE_S:.0f} s after", _memory),
)


def _cell(column: dict[str, Any] | None, row: str, render: Callable[[dict[str, Any]], str]) -> str:
    kept = (column or {}).get("rows", {}).get(row)
    return "—" if kept is None else render(kept)


def _load(column: dict[str, Any] | None, row: str) -> str:
    kept = (column or {}).get("rows", {}).get(row)
    return "" if kept is None else f", load {kept['load_average']['mean']:.1f}"


def table(kept: dict[str, Any] | None = None) -> str:
    """The docs' table of the kept run: the old code's figures beside the new code's, each with the machine's load
    average over its measurement."""
    kept = kept or read_artifact(ARTIFACT)
    before, after = kept["before"], kept["after"]
    commit = commit_cells(before, after)
    lines = [
        "| attack | measure | before | after |",
        "| --- | --- | --- | --- |",
        f"| (the server's code: commit) | | {commit} |",
    ]
    for row, measure, render in TABLE:
        cells = [_cell(column, row, render) + _load(column, row) for column in (before, after)]
        lines.append(f"| {ATTACKS[row][0]} | {measure} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
