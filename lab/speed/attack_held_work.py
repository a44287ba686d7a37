"""What a stranger's work holds of the server after it should have let go: statements whose sockets closed, a fast
lane bought by one quick statement, warehouse builds queued ahead of a visitor's cheap reset, and memory kept after a
warehouse load. Each row's victim is a client of its own address, idle and then under the attack, back to back.

    uv run python -m lab.speed.attack_held_work --column before                       # this checkout's server
    uv run python -m lab.speed.attack_held_work --server-root ../main --column after   # another checkout's
    uv run python -m lab.speed.attack_held_work --only orphans --column after          # one row, the others kept

The server is `python -m server.app` of --server-root as the image runs it (the debugger on, 8 sessions a client,
3 SQL workers), with room for 80 sessions so that admission is not what a row measures; it is driven through /ws
only. Attackers and victims are processes of their own on loopback addresses (127.0.0.x and up); every loop ends
by itself. Rows (idle → under attack; the victim's cheap query is lab.speed.attack_latency's):

- orphans: 8 addresses x 8 sockets each reset, send a runaway statement and close 0.2 s later; the victim's cheap
  query during, then a newcomer's `SELECT 1` from 5 s after the last socket closed, again until one answers within
  FREE_S: how long the workers stayed held. The server's logged tracebacks are counted.
- fast_lane: 6 loops, each turn from a fresh address: `SELECT 1`, then a runaway; the victim's cheap query.
- warehouse_resets: 8 addresses x 8 sessions reset warehouse episodes back to back, each followed by a first
  statement (which ships the tables to a worker); another visitor's frontier reset. audit_resets: the same at the audit.
- debugger_audit_resets: 8 addresses x 4 tabs of the /web debugger reset audit episodes back to back; the same
  victim.
- memory: the server's resident memory with its workers before, at the peak and 60 s after 39 warehouse sessions
  (reset, a first statement, held) closed.

It writes lab/artifacts/attack_held_work.json, each row into --column (attack_held_work_table.py renders it for the
docs). Run it on a quiet machine: it is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import itertools
import json
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from websockets.exceptions import ConnectionClosed

from lab.speed.attack_latency import CHEAP, RESET, SERVER_ENV, SLOW_SQL, peak_memory, tree_rss_mb
from lab.speed.loopback_server import (
    ROOT,
    ask,
    checkout,
    load_average_sampled,
    loopback_server,
    observation,
    read_artifact,
    spread,
    write_column,
    ws_from,
)

ARTIFACT = ROOT / "lab" / "artifacts" / "attack_held_work.json"
COMMAND = "uv run python -m lab.speed.attack_held_work"
HELD_ENV = {**SERVER_ENV, "MAX_CONCURRENT_ENVS": "80"}
VICTIM = "127.0.0.3"
ATTACKERS = [f"127.0.0.{host}" for host in range(10, 18)]
TIMEOUT_S = 300.0
RUNAWAY = {"type": "step", "data": {"analysis_method": "query", "analysis_args": {"sql": SLOW_SQL}}}
SELECT_1 = {"type": "step", "data": {"analysis_method": "query", "analysis_args": {"sql": "SELECT 1"}}}
FIRST_STATEMENT = {
    "type": "step",
    "data": {"analysis_method": "query", "analysis_args": {"sql": "SELECT count(*) AS n FROM events"}},
}
SEED_BASE = 920_000  # seeds no tier's calibration or split uses
ORPHAN_CLOSE_AFTER_S = 0.2
NEWCOMER_FIRST_S = 5.0  # the first newcomer comes this long after the attacker left
FREE_S = 1.0  # a newcomer's `SELECT 1` answered within this: the workers are free again
FREE_LIMIT_S = 240.0  # newcomers stop trying after this long
MEMORY_SESSIONS = 39
SESSIONS_PER_ADDRESS = 8  # the image's cap of sessions a client
FAST_LANE_LOOPS = 6
MEMORY_SETTLE_S = 60.0
DEBUGGER_TABS = 4  # a tab holds a session, and its reset a second one for the charts: within the cap of 8


def progress(message: str) -> None:
    print(f"[attack_held_work {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def status(reply: dict[str, Any]) -> str:
    return observation(reply)["status"] if reply.get("type") == "observation" else f"{reply.get('type')}"


def _threads(targets: list[Callable[[], None]]) -> None:
    threads = [threading.Thread(target=target, daemon=True) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _counted(answers: Counter[str], action: Callable[[], None]) -> None:
    """Run `action`, counting a dropped connection or a silent server instead of raising."""
    try:
        action()
    except (ConnectionClosed, OSError) as exc:  # TimeoutError is an OSError
        answers[type(exc).__name__] += 1
        time.sleep(0.2)


# --- victims ----------------------------------------------------------------------------------------------------


def cheap_victim(url: str, seconds: float) -> dict[str, Any]:
    """A cheap query over the victim's own session, one at a time, for `seconds` after its reset (every query
    timed: the first is the one an attack already under way holds longest)."""
    walls, answers = [], Counter[str]()
    with ws_from(url, VICTIM, TIMEOUT_S) as ws:
        ask(ws, RESET, TIMEOUT_S)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            start = time.perf_counter()
            reply = ask(ws, CHEAP, TIMEOUT_S)
            walls.append(time.perf_counter() - start)
            answers[status(reply)] += 1
            if observation(reply).get("steps_remaining", 2) < 2:
                ask(ws, RESET, TIMEOUT_S)
            time.sleep(0.01)
    return {"query_ms": spread(walls, (50, 99), scale=1000, digits=1), "answers": dict(answers)}


def reset_victim(url: str, seconds: float) -> dict[str, Any]:
    """Frontier resets of fresh seeds over the victim's own session, one at a time, for `seconds`."""
    walls, answers = [], Counter[str]()
    seeds = itertools.count(SEED_BASE + 50_000)
    with ws_from(url, VICTIM, TIMEOUT_S) as ws:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            start = time.perf_counter()
            reply = ask(ws, {"type": "reset", "data": {"difficulty": "frontier", "seed": next(seeds)}}, TIMEOUT_S)
            walls.append(time.perf_counter() - start)
            answers[status(reply)] += 1
    return {"reset_ms": spread(walls, (50, 99), scale=1000, digits=1), "answers": dict(answers)}


# --- attacks (each in the attacker's process; each returns what it was answered) ---------------------------------


def orphans(url: str, seconds: float) -> dict[str, Any]:
    """8 addresses x 8 sockets: reset, a runaway statement, the socket closed 0.2 s later."""
    answers: Counter[str] = Counter()

    def one(address: str) -> None:
        def orphan() -> None:
            with ws_from(url, address, TIMEOUT_S, close_timeout_s=0.5) as ws:
                answers["reset " + status(ask(ws, RESET, TIMEOUT_S))] += 1
                ws.send(json.dumps(RUNAWAY))
                time.sleep(ORPHAN_CLOSE_AFTER_S)
            answers["closed with its statement sent"] += 1

        _counted(answers, orphan)

    _threads([functools.partial(one, address) for address in ATTACKERS for _ in range(SESSIONS_PER_ADDRESS)])
    return {"answers": dict(answers), "left_at": time.time()}


def fast_lane(url: str, seconds: float) -> dict[str, Any]:
    """6 loops, each turn from an address never seen before: `SELECT 1`, then a runaway."""
    answers: Counter[str] = Counter()
    deadline = time.monotonic() + seconds
    hosts = itertools.count()
    lock = threading.Lock()

    def one() -> None:
        while time.monotonic() < deadline:
            with lock:
                host = next(hosts)

            def turn(address: str = f"127.0.{3 + host // 250}.{1 + host % 250}") -> None:
                with ws_from(url, address, TIMEOUT_S) as ws:
                    ask(ws, RESET, TIMEOUT_S)
                    answers["quick " + status(ask(ws, SELECT_1, TIMEOUT_S))] += 1
                    answers["runaway " + status(ask(ws, RUNAWAY, TIMEOUT_S))] += 1

            _counted(answers, turn)

    _threads([one] * FAST_LANE_LOOPS)
    return {"answers": dict(answers), "addresses": next(hosts)}


def warehouse_resets(url: str, seconds: float, difficulty: str = "warehouse") -> dict[str, Any]:
    """8 addresses x 8 sessions: a reset of a fresh seed (a warehouse one unless named), then a first statement,
    back to back."""
    answers: Counter[str] = Counter()
    deadline = time.monotonic() + seconds
    seeds = itertools.count(SEED_BASE)
    lock = threading.Lock()

    def one(address: str) -> None:
        while time.monotonic() < deadline:

            def session() -> None:
                with ws_from(url, address, TIMEOUT_S) as ws:
                    while time.monotonic() < deadline:
                        with lock:
                            seed = next(seeds)
                        reset = {"type": "reset", "data": {"difficulty": difficulty, "seed": seed}}
                        answers["reset " + status(ask(ws, reset, TIMEOUT_S))] += 1
                        answers["first statement " + status(ask(ws, FIRST_STATEMENT, TIMEOUT_S))] += 1

            _counted(answers, session)

    _threads([functools.partial(one, address) for address in ATTACKERS for _ in range(SESSIONS_PER_ADDRESS)])
    return {"answers": dict(answers)}


def debugger_audit_resets(url: str, seconds: float) -> dict[str, Any]:
    """8 addresses x DEBUGGER_TABS tabs of the /web debugger, each resetting audit episodes of fresh seeds back to
    back over Gradio's queue, reading each result (as a person's tab does)."""
    from lab.speed.debugger_attacks import Page, new_tab, status_line  # httpx: the attacker's process alone

    answers: Counter[str] = Counter()
    deadline = time.monotonic() + seconds
    seeds = itertools.count(SEED_BASE + 20_000)
    lock = threading.Lock()

    def tab(address: str) -> None:
        page, session = Page(url, address), new_tab()
        try:
            while time.monotonic() < deadline:
                with lock:
                    seed = next(seeds)
                form = [None, "(default)", str(seed), "(default)", "audit", "", "", "app_opens"]
                reply = page.call("do_reset", form, session)
                answer = status_line(reply)
                answers[answer.split(" — ")[0] if reply.get("success") else "failed: " + answer] += 1
                if answer.startswith("refused"):
                    time.sleep(0.5)
        finally:
            page.close()

    _threads([functools.partial(tab, address) for address in ATTACKERS for _ in range(DEBUGGER_TABS)])
    return {"answers": dict(answers)}


ATTACKS: dict[str, Callable[[str, float], dict[str, Any]]] = {
    "orphans": orphans,
    "fast_lane": fast_lane,
    "warehouse_resets": warehouse_resets,
    "audit_resets": functools.partial(warehouse_resets, difficulty="audit"),
    "debugger_audit_resets": debugger_audit_resets,
}
ROLES: dict[str, Callable[[str, float], dict[str, Any]]] = {
    "victim": cheap_victim,
    "reset_victim": reset_victim,
    **ATTACKS,
}


def role(name: str, url: str, seconds: float) -> subprocess.Popen[str]:
    command = [
        sys.executable,
        "-m",
        "lab.speed.attack_held_work",
        "--role",
        name,
        "--url",
        url,
        "--seconds",
        str(seconds),
    ]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)


def result_of(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = process.communicate(timeout=1800)
    return json.loads(out.strip().splitlines()[-1])


# --- rows -------------------------------------------------------------------------------------------------------


def newcomers(url: str, left_at: float, limit_s: float) -> dict[str, Any]:
    """`SELECT 1` from a new address each time, from NEWCOMER_FIRST_S after `left_at` until one is answered within
    FREE_S (or `limit_s` has passed)."""
    time.sleep(max(0.0, left_at + NEWCOMER_FIRST_S - time.time()))
    probes: list[dict[str, Any]] = []
    for index in itertools.count(1):
        offset = time.time() - left_at
        if offset > limit_s:
            break
        start = time.perf_counter()
        try:
            with ws_from(url, f"127.0.2.{index}", TIMEOUT_S) as ws:
                ask(ws, RESET, TIMEOUT_S)
                start = time.perf_counter()
                answer = status(ask(ws, SELECT_1, limit_s))
        except (ConnectionClosed, OSError) as exc:
            answer = type(exc).__name__
        probes.append({"offset_s": round(offset, 1), "wall_s": round(time.perf_counter() - start, 2), "status": answer})
        progress(f"newcomer {index}: {probes[-1]}")
        if probes[-1]["wall_s"] <= FREE_S and probes[-1]["status"] == "ok":
            break
        time.sleep(1.0)
    freed = probes[-1]["wall_s"] <= FREE_S and probes[-1]["status"] == "ok"
    return {
        "first_wall_s": probes[0]["wall_s"],
        "probes": probes,
        "free_after_s": round(probes[-1]["offset_s"] + probes[-1]["wall_s"], 1) if freed else None,
        "free_limit_s": limit_s,
    }


def row_orphans(url: str, seconds: float) -> dict[str, Any]:
    idle = result_of(role("victim", url, seconds))
    attacking = role("orphans", url, seconds)
    time.sleep(2)  # the orphans' statements are sent
    during = role("victim", url, seconds)
    attack = result_of(attacking)
    after = newcomers(url, attack["left_at"], FREE_LIMIT_S)
    return {"idle": idle, "under_attack": result_of(during), "attacker_answers": attack["answers"], "newcomer": after}


def row_under(victim: str, attack: str, settle_s: float) -> Callable[[str, float], dict[str, Any]]:
    """A row whose victim is measured idle, then from `settle_s` into an attack that outlasts it."""

    def measure(url: str, seconds: float) -> dict[str, Any]:
        idle = result_of(role(victim, url, seconds))
        attacking = role(attack, url, seconds + settle_s + 4)
        time.sleep(settle_s)
        under = result_of(role(victim, url, seconds))
        return {"idle": idle, "under_attack": under, "attacker_answers": result_of(attacking)["answers"]}

    return measure


def warm_up(url: str) -> None:
    """A reset, a cheap query and a frontier reset, so that no victim's first figure pays for the SQL workers'
    start or the server's first imports, as on any server in use."""
    with ws_from(url, VICTIM, TIMEOUT_S) as ws:
        ask(ws, RESET, TIMEOUT_S)
        ask(ws, CHEAP, TIMEOUT_S)
        ask(ws, {"type": "reset", "data": {"difficulty": "frontier", "seed": SEED_BASE - 1}}, TIMEOUT_S)
    time.sleep(5)


def row_memory(url: str, pid: int) -> dict[str, Any]:
    """Server memory before, at the peak and MEMORY_SETTLE_S after MEMORY_SESSIONS warehouse sessions closed."""
    before = tree_rss_mb(pid), process_rss_mb(pid)
    answers: Counter[str] = Counter()
    opened, close = threading.Barrier(MEMORY_SESSIONS + 1), threading.Event()

    def hold(index: int) -> None:
        with contextlib.ExitStack() as stack:
            try:
                ws = stack.enter_context(ws_from(url, f"127.0.1.{1 + index // SESSIONS_PER_ADDRESS}", TIMEOUT_S))
                reset = {"type": "reset", "data": {"difficulty": "warehouse", "seed": SEED_BASE + 90_000 + index}}
                answers["reset " + status(ask(ws, reset, TIMEOUT_S))] += 1
                answers["first statement " + status(ask(ws, FIRST_STATEMENT, TIMEOUT_S))] += 1
            except (ConnectionClosed, OSError) as exc:
                answers[type(exc).__name__] += 1
            opened.wait()
            close.wait()

    with peak_memory(pid) as peak:
        holders = [threading.Thread(target=hold, args=(index,), daemon=True) for index in range(MEMORY_SESSIONS)]
        for thread in holders:
            thread.start()
        opened.wait()
        held = tree_rss_mb(pid), process_rss_mb(pid)
        progress(f"memory: {MEMORY_SESSIONS} sessions held, {held[0]:.0f} MB")
        close.set()
        for thread in holders:
            thread.join()
    time.sleep(MEMORY_SETTLE_S)
    after = tree_rss_mb(pid), process_rss_mb(pid)
    return {
        "sessions": MEMORY_SESSIONS,
        "answers": dict(answers),
        "before_mb": round(before[0], 1),
        "held_mb": round(held[0], 1),
        "peak_mb": peak["mb"],
        "after_mb": round(after[0], 1),
        "server_process_mb": {"before": round(before[1], 1), "held": round(held[1], 1), "after": round(after[1], 1)},
        "settle_s": MEMORY_SETTLE_S,
    }


def process_rss_mb(pid: int) -> float:
    """The resident memory of the server process alone, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure_row(root: Path, name: str, seconds: float) -> dict[str, Any]:
    with load_average_sampled() as load, loopback_server(root, HELD_ENV) as served:
        progress(f"{name}: server of {root} at {served.url}")
        warm_up(served.url)
        row = row_memory(served.url, served.pid) if name == "memory" else ROWS[name](served.url, seconds)
        tracebacks = served.tracebacks()
    return {**row, "seconds": seconds, "server_tracebacks": tracebacks, "load_average": load}


ROWS: dict[str, Callable[[str, float], dict[str, Any]]] = {
    "orphans": row_orphans,
    "fast_lane": row_under("victim", "fast_lane", settle_s=2),
    "warehouse_resets": row_under("reset_victim", "warehouse_resets", settle_s=5),
    "audit_resets": row_under("reset_victim", "audit_resets", settle_s=5),
    "debugger_audit_resets": row_under("reset_victim", "debugger_audit_resets", settle_s=5),
}
ROW_NAMES = (*ROWS, "memory")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=ROW_NAMES, action="append", help="a row to measure (all by default)")
    parser.add_argument("--seconds", type=float, default=15.0, help="each victim measurement's length")
    parser.add_argument("--server-root", type=Path, default=ROOT, help="the checkout whose server is attacked")
    parser.add_argument(
        "--column",
        choices=["before", "after"],
        default="after",
        help="the artifact's column the rows go to (the other column, and other rows, kept)",
    )
    parser.add_argument("--role", choices=sorted(ROLES), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role is not None:
        print(json.dumps(ROLES[args.role](args.url, args.seconds)))
        return
    root = args.server_root.resolve()
    code = checkout(root)
    for name in args.only or ROW_NAMES:
        row = measure_row(root, name, args.seconds)
        print(json.dumps({name: row}), flush=True)
        rows = (read_artifact(ARTIFACT)[args.column] or {}).get("rows", {})
        write_column(ARTIFACT, args.column, {**code, "rows": {**rows, name: row}}, COMMAND)


if __name__ == "__main__":
    main()
