"""Whether a busy machine costs a warehouse episode: --sessions concurrent sessions replay the statements real models
wrote (the shared warehouse transcripts, the lost ones included) against a server on loopback, beside --busy
pure-Python busy loops at normal priority, while a victim session of another address times a cheap statement.

    uv run python -m lab.speed.warehouse_load --column before                      # this checkout's server
    uv run python -m lab.speed.warehouse_load --server-root ../main --column after  # another checkout's

Each session resets a transcript's episode (its seed, difficulty warehouse) and sends its calls in order, back to
back (the queries, the metrics layer, the report), then takes the next transcript, until --seconds have passed; a
step in flight then is still waited for. The sessions' first episodes, and the victim's, are opened before the load
begins (the busy loops started, the first step sent), as sessions already at work would be. An episode is lost when
a step or reset gets no reply within --message-timeout (the clients' default) or its connection closes. A step's
wall time is set against its CPU time: each statement is run once beforehand in this process by the SQL engine on
one thread, on a fresh episode's own tables, in its transcript's order (the CPU time per statement is the
warehouse's statement budget). The server is `python -m server.app` of --server-root with its default settings (the
debugger off), driven through /ws only.
Progress goes to stderr; the figures into lab/artifacts/warehouse_load.json under --column.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import httpx
from websockets.exceptions import ConnectionClosed

from lab.speed.loopback_server import (
    ROOT,
    ask,
    busy_processes,
    checkout,
    load_average_sampled,
    loopback_server,
    observation,
    read_artifact,
    spread,
    write_column,
    ws_from,
)

ARTIFACT = ROOT / "lab" / "artifacts" / "warehouse_load.json"
COMMAND = "uv run python -m lab.speed.warehouse_load"
TRANSCRIPT_DIRS = (ROOT / "lab" / "artifacts" / "model_transcripts", ROOT.parent / "shared" / "model_transcripts")
SESSIONS_FROM, VICTIM_FROM = "127.0.0.2", "127.0.0.3"  # the trainer's address, another visitor's
VICTIM_SQL = "SELECT 1"
VICTIM_SEED = 910_500  # a seed no transcript, tier calibration or split uses
VICTIM_PAUSE_S = 0.5
VICTIM_SETUP_TIMEOUT_S = 300.0  # its episode's opening, before the load: not measured
CPU_FLOOR_MS = 10.0  # a statement's CPU time counts as at least this much in the ratio: a loopback round trip
STEP_BOUND_WORDS = ("bound", "busy")  # in an error observation's message: the server's step bound answered it
STATEMENT_BUDGET_P50_MS = 250.0


def progress(message: str) -> None:
    print(f"[warehouse_load {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Transcript:
    name: str
    seed: int
    calls: list[tuple[str, dict[str, Any]]]


def transcript_dir() -> Path:
    return next((d for d in TRANSCRIPT_DIRS if any(d.glob("warehouse-*.json"))), TRANSCRIPT_DIRS[-1])


def read_transcripts(directory: Path) -> list[Transcript]:
    kept = []
    for path in sorted(directory.glob("warehouse-*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        assert data["difficulty"] == "warehouse", path
        kept.append(
            Transcript(path.stem, int(data["seed"]), [(call["tool"], call["arguments"]) for call in data["calls"]])
        )
    if not kept:
        raise SystemExit(f"no warehouse-*.json transcripts in {directory}")
    return kept


def step_message(tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """The /ws step message of a model's tool call (as the TRL class and the client send it)."""
    if tool == "submit_report":
        return {"type": "step", "data": {"classifications": arguments["rows"]}}
    return {"type": "step", "data": {"analysis_method": tool, "analysis_args": arguments}}


# --- the statements' CPU time, in process --------------------------------------------------------------------


def statement_cpu_ms(transcripts: list[Transcript]) -> dict[str, list[float | None]]:
    """Each call's CPU time in ms when it is a query (None otherwise), run by the engine on one thread on a fresh
    episode's tables in the transcript's order, as the server would run them."""
    from lab.speed.warehouse_statement_cpu import served_tables
    from metric_tracker_rl.sql.engine import EpisodeTables, open_database

    spent: dict[str, list[float | None]] = {}
    for seed, group in itertools.groupby(sorted(transcripts, key=lambda t: t.seed), key=lambda t: t.seed):
        tables = served_tables(seed)
        for transcript in group:
            episode = EpisodeTables(open_database(), tables)
            spent[transcript.name] = [calls_cpu_ms(episode, tool, arguments) for tool, arguments in transcript.calls]
            episode.close()
            progress(f"CPU of {transcript.name}: {sum(t for t in spent[transcript.name] if t is not None):.0f} ms")
    return spent


def calls_cpu_ms(episode: Any, tool: str, arguments: dict[str, Any]) -> float | None:
    """A query's CPU time on the episode (a model's broken statement costs what it costs before it fails)."""
    from metric_tracker_rl.sql.engine import Refusal

    if tool != "query":
        return None
    start = time.process_time()
    with contextlib.suppress(Refusal, duckdb.Error):
        episode.run(arguments["sql"], int(arguments.get("offset", 0)), int(arguments.get("limit", 50)))
    return 1000 * (time.process_time() - start)


# --- the load --------------------------------------------------------------------------------------------------


@dataclass
class Tally:
    """What the sessions saw, shared by their threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    steps: list[dict[str, Any]] = field(default_factory=list)
    first_resets: list[float] = field(default_factory=list)  # before the load
    resets: list[float] = field(default_factory=list)  # under the load
    episodes: Counter[str] = field(default_factory=Counter)
    lost: list[dict[str, Any]] = field(default_factory=list)
    reset_errors: Counter[str] = field(default_factory=Counter)


@dataclass
class Start:
    """The load begins once every session's first episode is open (or lost): then the busy loops start and
    `deadline` is set; no session sends a step before."""

    begun: threading.Event = field(default_factory=threading.Event)
    opened: int = 0
    deadline: float = math.inf


def play(
    url: str, transcript: Transcript, cpu: list[float | None], start: Start, first: bool, timeout_s: float, tally: Tally
) -> None:
    """One episode of the transcript's calls on a connection of its own; a step past the deadline is not sent."""
    sent, counted, stepping = 0, not first, False

    def count_opened() -> None:
        nonlocal counted
        if not counted:
            counted = True
            with tally.lock:
                start.opened += 1

    try:
        with ws_from(url, SESSIONS_FROM) as ws:
            began = time.perf_counter()
            reply = observation(
                ask(ws, {"type": "reset", "data": {"seed": transcript.seed, "difficulty": "warehouse"}}, timeout_s)
            )
            with tally.lock:
                (tally.first_resets if first else tally.resets).append(time.perf_counter() - began)
            count_opened()
            if reply["status"] != "ready":
                with tally.lock:
                    tally.reset_errors[reply["message"][:120]] += 1
                    tally.episodes["refused at reset"] += 1
                return
            start.begun.wait()
            stepping = True
            for (tool, arguments), cpu_ms in zip(transcript.calls, cpu, strict=True):
                if time.monotonic() > start.deadline:
                    with tally.lock:
                        tally.episodes["cut by the deadline"] += 1
                    return
                began = time.perf_counter()
                try:
                    reply = observation(ask(ws, step_message(tool, arguments), timeout_s))
                except TimeoutError:  # the step's wall time is at least the timeout: counted as that
                    with tally.lock:
                        tally.steps.append(
                            {
                                "transcript": transcript.name,
                                "tool": tool,
                                "wall_s": timeout_s,
                                "cpu_ms": cpu_ms,
                                "status": "no reply",
                                "message": "",
                            }
                        )
                    raise
                wall = time.perf_counter() - began
                sent += 1
                with tally.lock:
                    tally.steps.append(
                        {
                            "transcript": transcript.name,
                            "tool": tool,
                            "wall_s": wall,
                            "cpu_ms": cpu_ms,
                            "status": reply["status"],
                            "message": reply["message"][:200] if reply["status"] == "error" else "",
                        }
                    )
        with tally.lock:
            tally.episodes["finished"] += 1
    except (TimeoutError, ConnectionClosed, OSError) as exc:
        reason = "no reply" if isinstance(exc, TimeoutError) else f"closed ({type(exc).__name__})"
        with tally.lock:
            tally.episodes["lost"] += 1
            tally.lost.append(
                {
                    "transcript": transcript.name,
                    "after_steps": sent,
                    "reason": reason,
                    "first": first,
                    "at": "a step" if stepping else "the reset",
                }
            )
        progress(f"lost {transcript.name} after {sent} steps: {reason}")
    finally:
        count_opened()


def session(
    index: int,
    url: str,
    transcripts: list[Transcript],
    cpu: dict[str, list[float | None]],
    start: Start,
    timeout_s: float,
    tally: Tally,
) -> None:
    """Session `index` plays the transcripts in turn from the index-th, until the deadline."""
    for turn in itertools.count():
        if turn:
            start.begun.wait()
        if time.monotonic() > start.deadline:
            return
        transcript = transcripts[(index + turn) % len(transcripts)]
        with tally.lock:
            tally.episodes["started"] += 1
        play(url, transcript, cpu[transcript.name], start, turn == 0, timeout_s, tally)


def victim(url: str, seconds: float, timeout_s: float) -> dict[str, Any]:
    """Another visitor's cheap statement over its own warehouse episode, every VICTIM_PAUSE_S for `seconds` from
    when the load begins (a line on stdin). Its episode is open before (it says so on stdout), as a session already
    at work would be."""
    walls, failures = [], Counter[str]()
    with ws_from(url, VICTIM_FROM) as ws:
        reset = {"type": "reset", "data": {"seed": VICTIM_SEED, "difficulty": "warehouse", "max_steps": 500}}
        opened = observation(ask(ws, reset, VICTIM_SETUP_TIMEOUT_S))
        assert opened["status"] == "ready", opened["message"]
        cheap = step_message("query", {"sql": VICTIM_SQL})
        # The episode's tables are on a worker.
        assert observation(ask(ws, cheap, VICTIM_SETUP_TIMEOUT_S))["status"] == "ok"
        print("ready", flush=True)
        sys.stdin.readline()  # the load begins
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            start = time.perf_counter()
            try:
                reply = observation(ask(ws, cheap, timeout_s))
            except (TimeoutError, ConnectionClosed) as exc:
                failures[type(exc).__name__] += 1
                break
            walls.append(time.perf_counter() - start)
            if reply["status"] != "ok":
                failures[reply["message"][:120]] += 1
            if reply.get("steps_remaining", 2) < 2:
                failures["the episode's steps ran out"] += 1
                break
            time.sleep(VICTIM_PAUSE_S)
    return {"walls_s": walls, "failures": dict(failures)}


def run_load(
    url: str, args: argparse.Namespace, transcripts: list[Transcript], cpu: dict[str, list[float | None]]
) -> tuple[Tally, dict[str, Any]]:
    """The victim's episode opened, then the busy loops and the sessions until every session has stopped."""
    tally = Tally()
    command = [
        sys.executable,
        "-m",
        "lab.speed.warehouse_load",
        "--role",
        "victim",
        "--url",
        url,
        "--seconds",
        str(args.seconds),
        "--message-timeout",
        str(args.message_timeout),
    ]
    victim_process = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert victim_process.stdout is not None and victim_process.stdout.readline().strip() == "ready"
    start = Start()
    threads = [
        threading.Thread(
            target=session, args=(index, url, transcripts, cpu, start, args.message_timeout, tally), daemon=True
        )
        for index in range(args.sessions)
    ]
    for thread in threads:
        thread.start()
    while start.opened < args.sessions:
        time.sleep(1)
    progress(f"{len(tally.first_resets)} first episodes opened; the load begins")
    with busy_processes(args.busy):
        start.deadline = time.monotonic() + args.seconds
        start.begun.set()
        assert victim_process.stdin is not None
        victim_process.stdin.write("go\n")
        victim_process.stdin.flush()
        while any(thread.is_alive() for thread in threads):
            time.sleep(15)
            with tally.lock:
                progress(f"{len(tally.steps)} steps, {len(tally.resets)} resets, episodes {dict(tally.episodes)}")
        out, _ = victim_process.communicate(timeout=args.seconds + 2 * args.message_timeout)
    lines = out.strip().splitlines()
    return tally, (json.loads(lines[-1]) if lines else {"walls_s": [], "failures": {"the victim failed": 1}})


# --- the report ----------------------------------------------------------------------------------------------------

LEDGER_PHASES = ("gate_wait_s", "sandbox_open_s", "worker_wait_s", "send_s", "engine_cpu_s", "reply_wait_s", "rerun_s")


def statement_ledger(url: str) -> dict[str, float] | None:
    """The server's statement ledger (`GET /ready`), or None from a server that does not report one."""
    body = httpx.get(f"{url}/ready", timeout=30).json()
    return body.get("statements")


def where_the_time_goes(before: dict[str, float] | None, after: dict[str, float] | None) -> dict[str, Any] | None:
    """The server's statement steps during the load (every session's, the victim's too): the seconds of each
    phase, and each phase's share of the steps' wall time; `event_loop_s` is what no phase explains."""
    if before is None or after is None:
        return None
    spent: dict[str, Any] = {name: round(after[name] - before[name], 3) for name in after}
    explained = sum(spent[phase] for phase in LEDGER_PHASES)
    spent["event_loop_s"] = round(max(0.0, spent["step_s"] - explained), 3)
    total = spent["step_s"] or 1.0
    spent["shares"] = {
        phase.removesuffix("_s"): round(spent[phase] / total, 3) for phase in (*LEDGER_PHASES, "event_loop_s")
    }
    return spent


def figures(tally: Tally, seen: dict[str, Any], cpu: dict[str, list[float | None]]) -> dict[str, Any]:
    steps = tally.steps
    queries = [s for s in steps if s["cpu_ms"] is not None]
    unanswered_resets = sum(lost["at"] == "the reset" and not lost["first"] for lost in tally.lost)
    ratios = [1000 * s["wall_s"] / max(s["cpu_ms"], CPU_FLOOR_MS) for s in queries]
    errors = [s for s in steps if s["status"] == "error"]
    bound = [s for s in errors if any(word in s["message"].lower() for word in STEP_BOUND_WORDS)]
    statement_ms = [ms for times in cpu.values() for ms in times if ms is not None]
    return {
        "episodes": {"started": 0, "finished": 0, "lost": 0, **tally.episodes},
        "lost": tally.lost,
        "first_reset_wall_s": spread(tally.first_resets, (50, 95)),
        "reset_wall_s": spread(tally.resets, (50, 95)),
        "resets_under_load": {"sent": len(tally.resets) + unanswered_resets, "unanswered": unanswered_resets},
        "reset_errors": dict(tally.reset_errors),
        "step_wall_s": spread([s["wall_s"] for s in steps], (50, 95)),
        "steps_by_status": dict(Counter(s["status"] for s in steps)),
        "steps_by_tool": dict(Counter(s["tool"] for s in steps)),
        "step_bound_errors": len(bound),
        "step_bound_messages": sorted({s["message"] for s in bound})[:5],
        "wall_over_cpu": {**spread(ratios, (50, 95), digits=1), "cpu_floor_ms": CPU_FLOOR_MS},
        "wall_over_cpu_unfloored": spread(
            [1000 * s["wall_s"] / max(s["cpu_ms"], 0.01) for s in queries], (50, 95), digits=1
        ),
        "victim_sql": VICTIM_SQL,
        "victim_wall_ms": spread(seen["walls_s"], (50, 99), scale=1000, digits=1),
        "victim_failures": seen["failures"],
        "statement_cpu_ms": {**spread(statement_ms, (50, 95), digits=1), "budget_p50_ms": STATEMENT_BUDGET_P50_MS},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=16, help="warehouse sessions replaying at once")
    parser.add_argument("--seconds", type=float, default=300.0, help="how long sessions start new steps")
    parser.add_argument("--busy", type=int, default=6, help="busy loops at normal priority beside the server")
    parser.add_argument(
        "--message-timeout",
        type=float,
        default=180.0,
        help="seconds a client waits for a reply before its episode counts as lost",
    )
    parser.add_argument("--server-root", type=Path, default=ROOT, help="the checkout whose server is measured")
    parser.add_argument("--transcripts", type=Path, default=None, help="a folder of warehouse-*.json transcripts")
    parser.add_argument(
        "--column",
        choices=["before", "after"],
        default="after",
        help="the artifact's column the figures go to (the other is kept)",
    )
    parser.add_argument("--role", choices=["victim"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "victim":
        print(json.dumps(victim(args.url, args.seconds, args.message_timeout)))
        return
    directory = args.transcripts or transcript_dir()
    transcripts = read_transcripts(directory)
    progress(f"{len(transcripts)} transcripts from {directory}; measuring each statement's CPU time")
    cpu = statement_cpu_ms(transcripts)
    root = args.server_root.resolve()
    code = checkout(root)
    with load_average_sampled() as load, loopback_server(root) as served:
        progress(
            f"server of {root} at {served.url}; {args.sessions} sessions and {args.busy} busy loops for "
            f"{args.seconds:.0f} s"
        )
        ledger_before = statement_ledger(served.url)
        tally, seen = run_load(served.url, args, transcripts, cpu)
        spent = where_the_time_goes(ledger_before, statement_ledger(served.url))
        tracebacks = served.tracebacks()
    report = {
        **code,
        "sessions": args.sessions,
        "seconds": args.seconds,
        "busy_processes": args.busy,
        "message_timeout_s": args.message_timeout,
        "transcripts": [t.name for t in transcripts],
        "statements": sum(tool == "query" for t in transcripts for tool, _ in t.calls),
        "load_average": load,
        "server_tracebacks": tracebacks,
        **figures(tally, seen, cpu),
        "where_the_time_goes": spent,
    }
    print(json.dumps(report, indent=2))
    write_column(ARTIFACT, args.column, report, COMMAND)


# --- the docs' table ----------------------------------------------------------------------------------------------


def _cell(run: dict[str, Any] | None, render: Any) -> str:
    return "—" if run is None else render(run)


def _spread(keys: str, spec: str, unit: str) -> Any:
    """A spread's figures `keys` (space-separated) as "a / b unit", or "none answered" when it has no samples."""

    def render(figures: dict[str, Any]) -> str:
        if not figures["n"]:
            return "none answered"
        return " / ".join(format(figures[key], spec) for key in keys.split()) + unit

    return render


def _shares(run: dict[str, Any]) -> str:
    spent = run.get("where_the_time_goes")
    if spent is None:
        return "not reported by this server"
    shares = spent["shares"]
    return " / ".join(
        f"{100 * shares[name]:.0f}%"
        for name in (
            "gate_wait",
            "sandbox_open",
            "worker_wait",
            "send",
            "engine_cpu",
            "reply_wait",
            "rerun",
            "event_loop",
        )
    )


def _counts(run: dict[str, Any]) -> str:
    spent = run.get("where_the_time_goes")
    return (
        "not reported by this server"
        if spent is None
        else f"{spent['stopped']}; {spent['replaced']}; {spent['demotions']}"
    )


ROWS: tuple[tuple[str, Any], ...] = (
    ("the server's code: commit", lambda r: f"{r['code_commit']}{' (changed)' if r['dirty'] else ''}"),
    (
        "sessions, busy loops, seconds of new steps",
        lambda r: f"{r['sessions']}, {r['busy_processes']}, {r['seconds']:.0f} s",
    ),
    ("episodes lost, of started", lambda r: f"{r['episodes']['lost']} of {r['episodes']['started']}"),
    (
        "steps sent, unanswered; resets under the load, unanswered",
        lambda r: (
            f"{r['step_wall_s']['n']}, {r['steps_by_status'].get('no reply', 0)}; "
            f"{r['resets_under_load']['sent']}, {r['resets_under_load']['unanswered']}"
        ),
    ),
    (
        "a step's wall time (an unanswered one: the timeout), p50 / p95 / max",
        lambda r: _spread("p50 p95 max", ".2f", " s")(r["step_wall_s"]),
    ),
    (
        "a reset's wall time under the load, p50 / p95 / max",
        lambda r: _spread("p50 p95 max", ".2f", " s")(r["reset_wall_s"]),
    ),
    ("another session's `SELECT 1`, p50 / p99", lambda r: _spread("p50 p99", ",.0f", " ms")(r["victim_wall_ms"])),
    (
        f"a statement's wall time over its CPU time (at least {CPU_FLOOR_MS:.0f} ms), p50 / p95",
        lambda r: _spread("p50 p95", ",.0f", "×")(r["wall_over_cpu"]),
    ),
    ("steps answered with the step bound's error", lambda r: str(r["step_bound_errors"])),
    (
        f"a statement's CPU time, p50 / p95 / max (budget: p50 ≤ {STATEMENT_BUDGET_P50_MS:.0f} ms)",
        lambda r: _spread("p50 p95 max", ".0f", " ms")(r["statement_cpu_ms"]),
    ),
    (
        "where the server's statement steps spent their wall time: a turn at the workers / opening the episode's "
        "tables / a worker / the hand-off / the engine's CPU / the reply beyond it / attempts run again / the event "
        "loop",
        _shares,
    ),
    ("statements stopped for a step given up; workers replaced; turns demoted", _counts),
    ("load average: at the start / mean during", lambda r: "{at_start:.1f} / {mean:.1f}".format(**r["load_average"])),
)


def table(kept: dict[str, Any] | None = None) -> str:
    """The docs' table of the kept run: the old code's figures beside the new code's."""
    kept = kept or read_artifact(ARTIFACT)
    lines = ["| measure | before | after |", "| --- | --- | --- |"]
    lines += [f"| {name} | {_cell(kept['before'], render)} | {_cell(kept['after'], render)} |" for name, render in ROWS]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
