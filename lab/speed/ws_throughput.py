"""Analysis-step throughput over the WebSocket, side by side with the null OpenEnv environment.

    uv run python -m lab.speed.ws_throughput                       # 64 sessions, both workloads
    uv run python -m lab.speed.ws_throughput --baseline-tree ../main --output lab/artifacts/ws_throughput.json
    uv run python -m lab.speed.ws_throughput --render lab/artifacts/ws_throughput.json --write-doc

Both servers run at once on loopback ports (`python -m metric_tracker_rl.serving.app --no-web` and
`python -m lab.speed.null_env --no-web`, the same uvicorn settings); with `--baseline-tree`, a third serves the
package of another checkout (main's, say) so that a change is measured before and after in one run. For each
workload, N sessions are opened on each server, reset and warmed with one untimed step (a deep episode's first
query sends its tables to a SQL worker); then the load alternates between the servers in short rounds, so a
change in the machine's background load affects all alike. Each session sends its next step as soon as the reply
to the last one arrived, and the client reads every reply as JSON, as a client does. The report gives steps/s for
each server and their ratio to the null environment's, the round-trip latency, the bytes of a reply, and each
server's CPU time per step: the server process and the SQL workers under it, read from /proc. That last figure is
the one least affected by other load on the machine; the CPU ratio (the null environment's CPU per step over the
server's) is the throughput ratio the two would reach with a core each. A second table splits each workload's
step CPU into OpenEnv's loop, our plumbing, the tool's own work and the engine (the SQL workers), beside the
statement's in-process floor on a warm connection; targets: plumbing and OpenEnv's loop at most LOOP_TARGET times
the null environment's step, a SQL step in all at most FLOOR_TARGET times its floor.

Workloads:
- `hard_candidates`: hard's candidate tool, `get_rate_drop_from_median_rows` (a page of candidate rows);
- `deep_sql`: a SQL query over deep's segment table (a statement a model writes: per-date, per-platform sums).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from lab.speed.load import Server, StartLine, serve
from lab.speed.run import PERFORMANCE_DOC, replace_block
from metric_tracker_rl.server_process import SERVER_MODULE

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUTPUT = ROOT / "artifacts" / "ws_throughput.json"
# The kept run lab/docs/performance.md shows, between this marker and the next end marker
# (lab/tests/test_performance_doc.py).
PUBLISHED_RESULTS = ROOT / "lab" / "artifacts" / "ws_throughput.json"
BLOCK_MARKER = (
    "<!-- rendered by `python -m lab.speed.ws_throughput --render lab/artifacts/ws_throughput.json`: begin -->"
)
TARGET_RATIO = 0.8
LOOP_TARGET = 2.0  # our plumbing and OpenEnv's loop, at most this many times the null environment's step
FLOOR_TARGET = 1.3  # a SQL step in all, at most this many times its statement on a warm connection in process
MAX_STEPS = 500  # the largest step budget a reset accepts
RESET_MARGIN = 50  # a session with fewer steps left than this is reset between rounds, outside any window
DEEP_SQL = (
    "SELECT date, platform, sum(orders_placed) AS orders, sum(payment_successful) AS payments "
    "FROM daily_by_segment GROUP BY date, platform ORDER BY date, platform"
)


@dataclass(frozen=True)
class Workload:
    name: str
    reset: dict[str, Any]
    step: dict[str, Any]


WORKLOADS = {
    "hard_candidates": Workload(
        "hard_candidates",
        {"difficulty": "hard"},
        {"analysis_method": "get_rate_drop_from_median_rows", "analysis_args": {"threshold_multiplier": 3.0}},
    ),
    "deep_sql": Workload(
        "deep_sql", {"difficulty": "deep"}, {"analysis_method": "query", "analysis_args": {"sql": DEEP_SQL}}
    ),
}
NULL_RESET: dict[str, Any] = {}
NULL_STEP = {"note": "step"}


def progress(message: str) -> None:
    print(f"[ws_throughput] {message}", file=sys.stderr, flush=True)


def reply_problem(reply: dict[str, Any]) -> str | None:
    """What went wrong in a reply (a non-observation reply, or an error observation); None when nothing did."""
    if reply.get("type") != "observation":
        return f"{reply.get('type')}: {reply.get('data')}"
    observation = reply["data"]["observation"]
    return observation.get("message") if observation.get("status") == "error" else None


@dataclass
class Session:
    """One open WebSocket session and the steps its episode has left."""

    ws: ClientConnection
    reset: dict[str, Any]
    step: str  # the step message, as sent
    steps_left: int = 0
    errors: list[str] = field(default_factory=list)

    async def call(self, message: str) -> tuple[str | None, int]:
        await self.ws.send(message)
        text = await self.ws.recv()
        return reply_problem(json.loads(text)), len(text)

    async def start_episode(self) -> None:
        """A reset and one untimed step (which loads what the first call of a tool loads)."""
        for message in (json.dumps({"type": "reset", "data": self.reset}), self.step):
            problem, _ = await self.call(message)
            if problem is not None:
                raise RuntimeError(problem)
        self.steps_left = MAX_STEPS - 1


@dataclass
class Window:
    steps: int = 0
    reply_bytes: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


async def _open_sessions(server: Server, count: int, reset: dict[str, Any], step: dict[str, Any]) -> list[Session]:
    step_message = json.dumps({"type": "step", "data": step})

    async def open_one(index: int) -> Session:
        ws = await connect(server.ws_url, max_size=None, open_timeout=300)
        session = Session(ws, {**reset, "seed": index, "max_steps": MAX_STEPS}, step_message)
        await session.start_episode()
        return session

    sessions = []
    for first in range(0, count, 16):  # a few at a time: a deep reset takes a while
        sessions += await asyncio.gather(*(open_one(i) for i in range(first, min(first + 16, count))))
    return sessions


async def _drive(session: Session, start: StartLine, window: Window) -> None:
    await start.arrive()
    while time.perf_counter() < start.end:
        sent = time.perf_counter()
        problem, size = await session.call(session.step)
        received = time.perf_counter()
        session.steps_left -= 1
        if problem is not None:
            window.errors.append(problem)
            return
        if received <= start.end:
            window.steps += 1
            window.reply_bytes += size
            window.latencies.append(received - sent)
        if session.steps_left <= 1:
            await session.start_episode()  # rare; counted in the window's time, as a trainer's resets are


async def _window(server: Server, sessions: list[Session], duration_s: float) -> dict[str, Any]:
    for session in sessions:  # outside the window: no session runs out of steps inside it
        if session.steps_left < RESET_MARGIN:
            await session.start_episode()
    window = Window()
    start = StartLine(server, len(sessions), duration_s, cpu_s=server.tree_cpu_s)
    await asyncio.gather(start.watch_cpu(), *(_drive(session, start, window) for session in sessions))
    return {
        "steps": window.steps,
        "reply_bytes": window.reply_bytes,
        "latencies": window.latencies,
        "errors": window.errors,
        "server_cpu_s": start.server_cpu_s,
        "process_cpu_s": start.process_cpu_s,
        "client_cpu_s": start.client_cpu_s,
    }


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _merged(windows: list[dict[str, Any]], duration_s: float) -> dict[str, Any]:
    steps = sum(w["steps"] for w in windows)
    latencies = [x for w in windows for x in w["latencies"]]
    errors = [e for w in windows for e in w["errors"]]
    p50, p99 = _percentile(latencies, 0.5), _percentile(latencies, 0.99)
    return {
        "steps": steps,
        "steps_per_s": steps / (duration_s * len(windows)),
        "rounds_steps_per_s": [w["steps"] / duration_s for w in windows],
        "p50_ms": None if p50 is None else p50 * 1e3,
        "p99_ms": None if p99 is None else p99 * 1e3,
        "server_cpu_ms_per_step": 1e3 * sum(w["server_cpu_s"] for w in windows) / max(steps, 1),
        "process_cpu_ms_per_step": 1e3 * sum(w["process_cpu_s"] for w in windows) / max(steps, 1),
        "client_cpu_ms_per_step": 1e3 * sum(w["client_cpu_s"] for w in windows) / max(steps, 1),
        "reply_bytes": sum(w["reply_bytes"] for w in windows) / max(steps, 1),
        "errors": len(errors),
        "first_errors": errors[:3],
    }


async def _compare(
    servers: dict[str, Server],
    workload: Workload,
    sessions: int,
    duration_s: float,
    rounds: int,
    timing: InProcessTiming | None = None,
) -> dict[str, Any]:
    """One workload at one session count: every server's sessions open, then alternating rounds, each followed by
    a slice of the in-process timing (`timing`), if any."""
    opened = {
        label: await _open_sessions(
            server, sessions, *((NULL_RESET, NULL_STEP) if label == "null" else (workload.reset, workload.step))
        )
        for label, server in servers.items()
    }
    windows: dict[str, list[dict[str, Any]]] = {label: [] for label in servers}
    try:
        for _ in range(rounds):
            for label, server in servers.items():
                windows[label].append(await _window(server, opened[label], duration_s / rounds))
            if timing is not None:
                timing.time_slice(rounds)
    finally:
        await asyncio.gather(*(s.ws.close() for found in opened.values() for s in found), return_exceptions=True)
    measured = {label: _merged(found, duration_s / rounds) for label, found in windows.items()}
    null, compared = measured["null"], [label for label in servers if label != "null"]
    for label in compared:
        # The throughput ratio the two would reach with a core each, from CPU time per step: robust to other load.
        measured[label]["cpu_ratio"] = null["server_cpu_ms_per_step"] / max(
            measured[label]["server_cpu_ms_per_step"], 1e-9
        )
        measured[label]["ratio"] = measured[label]["steps_per_s"] / max(null["steps_per_s"], 1e-9)
    return {
        "workload": workload.name,
        "sessions": sessions,
        "step": workload.step,
        **measured,
        "ratio": measured["ours"]["ratio"],
        "cpu_ratio": measured["ours"]["cpu_ratio"],
    }


# --- where a step's CPU goes ------------------------------------------------------------------------------------

IN_PROCESS_STEPS = 640  # steps timed in this process for each workload's in-process figures (ten per episode at 64)


def _cpu_per_call_ms(call: Any, repeats: int) -> float:
    began = time.process_time()
    for _ in range(repeats):
        call()
    return 1e3 * (time.process_time() - began) / repeats


class InProcessTiming:
    """The workload's step in this process, once warm, over the episodes the served sessions play (seeds 0 to
    `episodes` - 1, in turn, as the server steps them): the tool's own work (its function, and for a statement the
    client side of the SQL pool) and, for a statement, the floor: the same statement on a warm DuckDB connection
    over each episode's views, as DuckDB runs it (execute and fetch), with none of the engine's checks; and the
    engine in this process, on that text and on texts it has not seen. The figures are timed a slice at a time,
    in turn, one slice after each served round, so the machine's other load of each moment weighs on the served
    steps and on these alike."""

    def __init__(self, workload: Workload, episodes: int, repeats: int = IN_PROCESS_STEPS) -> None:
        from metric_tracker_rl.analysis_tools.registry import run_tool
        from metric_tracker_rl.models import MetricTrackerRlAction
        from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
        from metric_tracker_rl.sql import engine

        self.repeats = repeats
        action = MetricTrackerRlAction(**workload.step)
        self.environments = []
        for seed in range(episodes):
            env = MetricTrackerRlEnvironment()
            env.reset(**workload.reset, seed=seed, max_steps=MAX_STEPS)
            env.step(action)  # warm: a statement's first call sends the episode's tables to a worker
            self.environments.append(env)
        publics = itertools.cycle([env._playing.public for env in self.environments])  # noqa: SLF001 - its tool
        name, arguments = workload.step["analysis_method"], workload.step["analysis_args"]
        self.calls: dict[str, Any] = {"tool_ms": lambda: run_tool(name, next(publics), arguments)}
        self.database = engine.open_database()
        if name == "query":
            tables = [
                engine.EpisodeTables(self.database, env._playing.public.sql_tables())  # noqa: SLF001
                for env in self.environments
            ]
            for episode in tables:
                episode.view()
                episode.con.execute(arguments["sql"]).fetchall()
            floors, engines, new_texts = (itertools.cycle(tables) for _ in range(3))
            # The served workload sends one text again and again, as a model paging a result does, so its parse
            # tree is checked once; a text the episode has not sent yet (the same statement, a comment apart) pays it.
            texts = iter(f"{arguments['sql']}\n-- {number}" for number in itertools.count())
            self.calls.update(
                {
                    "floor_ms": lambda: next(floors).con.execute(arguments["sql"]).fetchall(),
                    "engine_in_process_ms": lambda: next(engines).run(arguments["sql"], 0, 100),
                    "engine_new_text_ms": lambda: next(new_texts).run(next(texts), 0, 100),
                }
            )
        self.slices: dict[str, list[float]] = {figure: [] for figure in self.calls}

    def time_slice(self, slices: int) -> None:
        """One of `slices` slices: each figure's calls in turn, `repeats` / `slices` of them."""
        for figure, call in self.calls.items():
            self.slices[figure].append(_cpu_per_call_ms(call, max(1, self.repeats // slices)))

    def costs(self) -> dict[str, float | None]:
        """Each figure's median slice (the floor None for a tool that runs no statement)."""
        return {"floor_ms": None, **{figure: statistics.median(found) for figure, found in self.slices.items()}}

    def close(self) -> None:
        self.database.close()
        for env in self.environments:
            env.close()


def step_costs(row: dict[str, Any], in_process: dict[str, float | None]) -> dict[str, Any]:
    """A served step's CPU split: OpenEnv's loop (the null environment's whole step), the tool's own work (timed in
    process), the engine (the SQL workers' CPU per step), and our plumbing (what the server process spends beyond
    the other two); with the targets' two ratios."""
    ours, null = row["ours"], row["null"]
    openenv, tool = null["server_cpu_ms_per_step"], float(in_process["tool_ms"] or 0.0)
    engine_ms = ours["server_cpu_ms_per_step"] - ours["process_cpu_ms_per_step"]
    plumbing = ours["process_cpu_ms_per_step"] - tool - openenv
    floor = in_process.get("floor_ms")
    return {
        "workload": row["workload"],
        "openenv_ms": openenv,
        "tool_ms": tool,
        "engine_ms": engine_ms,
        "plumbing_ms": plumbing,
        "total_ms": ours["server_cpu_ms_per_step"],
        "floor_ms": floor,
        "engine_in_process_ms": in_process.get("engine_in_process_ms"),
        "engine_new_text_ms": in_process.get("engine_new_text_ms"),
        "loop_ratio": (plumbing + openenv) / max(openenv, 1e-9),
        "floor_ratio": None if floor is None else ours["server_cpu_ms_per_step"] / max(floor, 1e-9),
    }


def cost_table(costs: list[dict[str, Any]]) -> str:
    def ms(value: float | None) -> str:
        return "–" if value is None else f"{value:.3f}"

    lines = [
        "| workload | OpenEnv's loop, ms | our plumbing, ms | tool's own work, ms | engine (SQL workers), ms "
        f"| step in all, ms | in-process floor, ms | plumbing + OpenEnv ÷ null (≤ {LOOP_TARGET:g}) "
        f"| step ÷ floor (≤ {FLOOR_TARGET:g}) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for cost in costs:
        floor_ratio = "–" if cost["floor_ratio"] is None else f"{cost['floor_ratio']:.2f}"
        lines.append(
            f"| {cost['workload']} | {ms(cost['openenv_ms'])} | {ms(cost['plumbing_ms'])} | "
            f"{ms(cost['tool_ms'])} | {ms(cost['engine_ms'])} | {ms(cost['total_ms'])} | "
            f"{ms(cost['floor_ms'])} | {cost['loop_ratio']:.2f} | {floor_ratio} |"
        )
    return "\n".join(lines)


def measure(
    workloads: list[str], session_counts: list[int], duration_s: float, rounds: int, baseline_tree: Path | None
) -> list[dict[str, Any]]:
    max_sessions = max(session_counts) + 8
    rows = []
    with contextlib.ExitStack() as stack:
        servers = {"ours": stack.enter_context(serve(SERVER_MODULE, max_sessions, "ws_throughput_ours"))}
        if baseline_tree is not None:
            servers["baseline"] = stack.enter_context(
                serve(SERVER_MODULE, max_sessions, "ws_throughput_baseline", tree=baseline_tree)
            )
        servers["null"] = stack.enter_context(serve("lab.speed.null_env", max_sessions, "ws_throughput_null"))
        for name in workloads:
            # The in-process figures are timed between the rounds of the largest session count.
            timing = InProcessTiming(WORKLOADS[name], max(session_counts))
            try:
                for sessions in session_counts:
                    largest = sessions == max(session_counts)
                    row = asyncio.run(
                        _compare(servers, WORKLOADS[name], sessions, duration_s, rounds, timing if largest else None)
                    )
                    if largest:
                        row["in_process"] = timing.costs()
                    rows.append(row)
                    progress(_summary(row))
            finally:
                timing.close()
    return rows


def _summary(row: dict[str, Any]) -> str:
    null = row["null"]
    said = [
        f"{row['workload']}, {row['sessions']} sessions: null {null['steps_per_s']:.0f} steps/s, CPU per step "
        f"{null['server_cpu_ms_per_step']:.3f} ms"
    ]
    for label in ("ours", "baseline"):
        if label in row:
            measured = row[label]
            said.append(
                f"{label} {measured['steps_per_s']:.0f} steps/s (ratio {measured['ratio']:.2f}), CPU per step "
                f"{measured['server_cpu_ms_per_step']:.3f} ms (CPU ratio {measured['cpu_ratio']:.2f}), reply "
                f"{measured['reply_bytes']:.0f} bytes, errors {measured['errors']}"
            )
    return "; ".join(said)


def table(rows: list[dict[str, Any]]) -> str:
    labels = [label for label in ("ours", "baseline") if any(label in row for row in rows)]
    lines = [
        "| workload | sessions | server | steps/s (null) | ratio | CPU/step, ms (null) | CPU ratio | reply bytes "
        "| p50 ms (null) | errors |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        null = row["null"]
        for label in labels:
            measured = row[label]
            lines.append(
                f"| {row['workload']} | {row['sessions']} | {label} | {measured['steps_per_s']:.0f} "
                f"({null['steps_per_s']:.0f}) | {measured['ratio']:.2f} | "
                f"{measured['server_cpu_ms_per_step']:.3f} ({null['server_cpu_ms_per_step']:.3f}) | "
                f"{measured['cpu_ratio']:.2f} | {measured['reply_bytes']:.0f} | "
                f"{measured['p50_ms'] or 0:.1f} ({null['p50_ms'] or 0:.1f}) | "
                f"{measured['errors'] + null['errors']} |"
            )
    return "\n".join(lines)


def _commit(tree: Path = ROOT) -> str:
    found = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tree, capture_output=True, text=True)
    return found.stdout.strip() or "unknown"


def _checkout(tree: Path) -> dict[str, str]:
    return {"path": str(tree), "commit": _commit(tree)}


def rendered_block(report: dict[str, Any]) -> str:
    """What lab/docs/performance.md shows from a results file: when, where and how it was measured, then the table."""
    settings = ", ".join(f"{name} {value}" for name, value in report["settings"].items())
    load = ", ".join(f"{value:.1f}" for value in report["load_average_at_start"])
    baseline = report.get("baseline")
    against = f"; baseline: the package at commit {baseline['commit']}" if baseline else ""
    return (
        f"Measured {report['date']} at commit {report['commit']} with `{report['command']}` (settings: "
        f"{settings}{against}) on {report['machine']['cpus']} CPUs, Python {report['machine']['python']}, load "
        f"average {load} at the start, {report['elapsed_s']:.0f} s in all. Target: ratio ≥ "
        f"{report['target_ratio']:g}.\n\n{report['table']}{_costs_text(report)}"
    )


def _costs_text(report: dict[str, Any]) -> str:
    if "cost_table" not in report:
        return ""
    return (
        "\n\nWhere a step's server CPU goes, in milliseconds per step at the largest session count: OpenEnv's "
        "loop is the null environment's whole step; the tool's own work is its function timed in this process "
        f"(a statement's: the SQL pool's client side) once warm, over the sessions' episodes in turn as the "
        f"server steps them, {IN_PROCESS_STEPS} calls in slices, one after each served round, taken in turn with "
        "the other in-process figures (each the median slice's); the engine is the SQL workers' CPU; our "
        "plumbing is what "
        "the server process spends beyond the tool and OpenEnv's loop. The floor is the statement on a warm "
        "DuckDB connection in this process over the same episodes' views in turn, executed and fetched with "
        f"none of the engine's checks.{_new_text_sentence(report)}\n\n{report['cost_table']}"
    )


def _new_text_sentence(report: dict[str, Any]) -> str:
    """What the engine's checks cost a statement text not sent before, beside the served workload's repeated one."""
    found = [cost for cost in report["costs"] if cost.get("engine_new_text_ms") is not None]
    return "".join(
        f" The {cost['workload']} workload sends one text again and again, as a model paging a result "
        "does, so the engine parses and checks it once; in this process the engine runs it in "
        f"{cost['engine_in_process_ms']:.3f} ms, and a text it has not seen yet (the same statement, a "
        f"comment apart) in {cost['engine_new_text_ms']:.3f} ms."
        for cost in found
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", default="64", help="comma-separated concurrent session counts")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated workloads")
    parser.add_argument("--duration", type=float, default=6.0, help="seconds of load per server and session count")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds the duration is split into")
    parser.add_argument("--baseline-tree", type=Path, help="another checkout whose server runs beside ours")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument(
        "--render",
        type=Path,
        metavar="RESULTS",
        help="print the text lab/docs/performance.md shows from a results file; run nothing",
    )
    parser.add_argument(
        "--write-doc",
        action="store_true",
        help="with --render: write that text between lab/docs/performance.md's marker comments",
    )
    args = parser.parse_args(argv)
    if args.write_doc and args.render is None:
        parser.error("--write-doc needs --render RESULTS")
    if args.render is not None:
        block = rendered_block(json.loads(args.render.read_text()))
        if args.write_doc:
            doc = PERFORMANCE_DOC.read_text(encoding="utf-8")
            PERFORMANCE_DOC.write_text(replace_block(doc, block, BLOCK_MARKER), encoding="utf-8")
        print(block)
        return
    started = time.perf_counter()
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "commit": _commit(),
        "command": " ".join(["python -m lab.speed.ws_throughput", *(argv if argv is not None else sys.argv[1:])]),
        "load_average_at_start": list(os.getloadavg()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "settings": {
            "sessions": args.sessions,
            "workloads": args.workloads,
            "duration_s": args.duration,
            "rounds": args.rounds,
        },
        "baseline": None if args.baseline_tree is None else _checkout(args.baseline_tree.resolve()),
        "target_ratio": TARGET_RATIO,
    }
    report["rows"] = measure(
        args.workloads.split(","),
        [int(s) for s in args.sessions.split(",")],
        args.duration,
        args.rounds,
        None if args.baseline_tree is None else args.baseline_tree.resolve(),
    )
    report["table"] = table(report["rows"])
    largest = {row["workload"]: row for row in report["rows"]}  # the largest session count's row of each
    report["costs"] = [step_costs(row, row["in_process"]) for row in largest.values()]
    report["cost_table"] = cost_table(report["costs"])
    report["elapsed_s"] = time.perf_counter() - started
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(report["table"])
    print(report["cost_table"])
    progress(f"wrote {args.output} in {report['elapsed_s']:.0f} s")


if __name__ == "__main__":
    main()
