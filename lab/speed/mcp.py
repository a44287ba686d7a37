"""Tool-call latency over MCP beside a typed WebSocket step for the same tool, on one server.

    uv run python -m lab.speed.mcp [--sessions 1 64] [--duration 6] [--rounds 12] [--warmup 0.5]
    uv run python -m lab.speed.mcp --in-process 3000   # the server's CPU per message, no network
    uv run python -m lab.speed.mcp --sessions 64 --cached-text   # the same, the model's text costing nothing

Every session resets once, then calls the same cycle of analysis tools as `lab.speed.run`'s WebSocket load
(`analysis_action`) for the measurement window, over one of three transports:

- `ws_step`: the typed action as `{"type": "step"}` on /ws (the baseline: the full observation as JSON);
- `ws_step_text`: the same, and the client renders the model's text from the observation, as TRL's
  `environment_factory` class (`tool_env`) does: the same work as an MCP call, split between client and server;
- `ws_mcp`: JSON-RPC `tools/call` as `{"type": "mcp"}` on the same kind of /ws session (the model's text);
- `http_mcp`: OpenEnv's HTTP MCP lifecycle: `openenv/session/create`, a reset on /ws?session_id=..., then
  `tools/call` with the session_id on POST /mcp over a kept-alive HTTP connection.

Like with like: every transport calls the same tools with the same arguments in the same order, with the same
number of sessions, on the same server, after an untimed warm-up round. The transports take turns in short
rounds, in reverse order every other round, so that a change in the machine's background load affects all alike.
Prints p50/p99 round-trip latency, calls/s and server CPU per call for each transport, and as ratios of the
typed step's: each one's p50 (the median over rounds of the ratio within a round, which a burst of other load
on the machine moves least) and its server CPU per call. The last lines say whether `ws_mcp` meets the target,
a p50 at most 1.2 times `ws_step`'s, at each session count.

`--cached-text` serves `lab.speed.mcp_cached_text` instead: each MCP call answers with the first text its tool
wrote, the same size but none of the work of writing it, which shows what MCP costs apart from the text (a
diagnostic: the texts are wrong).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import sys
import time
from typing import Any

import httpx

from lab.speed.load import Server, StartLine, request, serve
from lab.speed.run import MAX_STEPS, LoadResult, _merge, analysis_action, step_problem, timed_session
from metric_tracker_rl.models import MetricTrackerRlObservation
from metric_tracker_rl.server_process import SERVER_MODULE
from metric_tracker_rl.view.observation import render_observation

TRANSPORTS = ("ws_step", "ws_step_text", "ws_mcp", "http_mcp")
TARGET_RATIO = 1.2
CACHED_TEXT_SERVER_MODULE = "lab.speed.mcp_cached_text"


def tool_call(i: int) -> dict[str, Any]:
    """The JSON-RPC tools/call of the i-th action of the cycle."""
    action = analysis_action(i)
    return {
        "jsonrpc": "2.0",
        "method": "tools/call",
        "id": i,
        "params": {"name": action["analysis_method"], "arguments": action["analysis_args"]},
    }


def rpc_problem(reply: dict[str, Any]) -> str | None:
    if "error" in reply:
        return f"JSON-RPC {reply['error']}"
    result = reply["result"]
    return result["data"] if result.get("is_error") else None


async def _ws_session(
    server: Server,
    index: int,
    transport: str,
    start: StartLine,
    result: LoadResult,
    session_id: str | None = None,
    http: httpx.AsyncClient | None = None,
) -> None:
    """One session's calls until the window closes. `http` set: calls go to POST /mcp with `session_id`."""

    async def call(ws: Any, i: int) -> str | None:
        if transport in ("ws_step", "ws_step_text"):
            reply = await request(ws, {"type": "step", "data": analysis_action(i)})
            problem = step_problem(reply)
            if transport == "ws_step_text" and problem is None:
                render_observation(MetricTrackerRlObservation.model_validate(reply["data"]["observation"]))
            return problem
        if transport == "ws_mcp":
            reply = await request(ws, {"type": "mcp", "data": tool_call(i)})
            return rpc_problem(reply["data"]) if reply.get("type") == "mcp" else str(reply)
        assert http is not None
        message = tool_call(i)
        message["params"]["session_id"] = session_id
        return rpc_problem((await http.post("/mcp", json=message)).json())

    url = server.ws_url + (f"?session_id={session_id}" if session_id else "")
    await timed_session(url, index, start, result, call)


async def _http_mcp_session(server: Server, index: int, start: StartLine, result: LoadResult) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=120) as http:
        created = (await http.post("/mcp", json={"jsonrpc": "2.0", "method": "openenv/session/create", "id": 0})).json()
        if "error" in created:
            result.errors.append(f"session/create: {created['error']}")
            await start.arrive()
            return
        session_id = created["result"]["session_id"]
        try:
            await _ws_session(server, index, "http_mcp", start, result, session_id=session_id, http=http)
        finally:
            await http.post(
                "/mcp",
                json={
                    "jsonrpc": "2.0",
                    "method": "openenv/session/close",
                    "id": 1,
                    "params": {"session_id": session_id},
                },
            )


async def _load(server: Server, transport: str, sessions: int, duration_s: float) -> tuple[dict[str, Any], list[float]]:
    result = LoadResult()
    start = StartLine(server, sessions, duration_s)
    if transport == "http_mcp":
        runs = [_http_mcp_session(server, i, start, result) for i in range(sessions)]
    else:
        runs = [_ws_session(server, i, transport, start, result) for i in range(sessions)]
    await asyncio.gather(start.watch_cpu(), *runs)
    return (
        {
            "steps": len(result.latencies),
            "errors": len(result.errors),
            "first_errors": result.errors[:3],
            "server_cpu_s": start.server_cpu_s,
            "client_cpu_s": start.client_cpu_s,
        },
        result.latencies,
    )


def _ratio(value: float | None, base: float | None) -> float | None:
    return value / base if value is not None and base else None


def bench_mcp(
    session_counts: list[int], duration_s: float, rounds: int, warmup_s: float = 0.5, server_module: str = SERVER_MODULE
) -> dict[str, Any]:
    """Per session count, each transport's latency, throughput and server CPU per call, and their ratios to the
    typed step's. `warmup_s`: one untimed round per transport first (caches, connections, the server's code)."""
    rows = []
    with serve(server_module, max(session_counts) * 2 + 8, "server_mcp") as server:
        for sessions in session_counts:
            for transport in TRANSPORTS:
                asyncio.run(_load(server, transport, sessions, warmup_s))
            measured: dict[str, list[dict[str, Any]]] = {t: [] for t in TRANSPORTS}
            round_p50s: dict[str, list[float]] = {t: [] for t in TRANSPORTS}
            latencies: dict[str, list[list[float]]] = {t: [] for t in TRANSPORTS}
            for turn in range(rounds):
                for transport in TRANSPORTS if turn % 2 == 0 else TRANSPORTS[::-1]:
                    outcome, samples = asyncio.run(_load(server, transport, sessions, duration_s / rounds))
                    measured[transport].append(outcome)
                    latencies[transport].append(samples)
                    round_p50s[transport].append(statistics.median(samples) if samples else math.nan)
            row: dict[str, Any] = {"sessions": sessions}
            for transport in TRANSPORTS:
                row[transport] = _merge(measured[transport], latencies[transport], duration_s / rounds)
            base = row["ws_step"]
            for transport in TRANSPORTS[1:]:
                row[f"{transport}_p50_ratio"] = statistics.median(
                    p50 / step_p50 for p50, step_p50 in zip(round_p50s[transport], round_p50s["ws_step"], strict=True)
                )
                row[f"{transport}_cpu_ratio"] = _ratio(
                    row[transport]["server_cpu_ms_per_step"], base["server_cpu_ms_per_step"]
                )
            rows.append(row)
            print(
                f"mcp {sessions:>3} sessions: "
                + ", ".join(
                    f"{t} p50 {row[t]['p50_ms']:.3f} ms ({row[t]['steps_per_s']:.0f}/s, errors {row[t]['errors']})"
                    for t in TRANSPORTS
                ),
                file=sys.stderr,
                flush=True,
            )
    return {
        "duration_s": duration_s,
        "rounds": rounds,
        "target_ratio": TARGET_RATIO,
        "server_module": server_module,
        "rows": rows,
    }


def _shown(ratio: float | None) -> str:
    return f"{ratio:.2f}" if ratio is not None else "n/a"


def table(report: dict[str, Any]) -> str:
    lines = [
        "| sessions | transport | p50 ms | p99 ms | calls/s | server CPU ms/call | p50 / ws_step p50, per round "
        "| CPU / ws_step CPU | errors |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in report["rows"]:
        for transport in TRANSPORTS:
            stats = row[transport]
            p50_ratio, cpu_ratio = (
                ("1.00", "1.00")
                if transport == "ws_step"
                else (_shown(row[f"{transport}_p50_ratio"]), _shown(row[f"{transport}_cpu_ratio"]))
            )
            lines.append(
                f"| {row['sessions']} | {transport} | {stats['p50_ms']:.3f} | {stats['p99_ms']:.3f} | "
                f"{stats['steps_per_s']:.0f} | {stats['server_cpu_ms_per_step']:.3f} | {p50_ratio} | "
                f"{cpu_ratio} | {stats['errors']} |"
            )
    return "\n".join(lines)


def verdicts(report: dict[str, Any]) -> str:
    """One line per session count: the MCP call's p50 over the typed step's, against the target."""
    lines = []
    for row in report["rows"]:
        ratio = row["ws_mcp_p50_ratio"]
        met = "met" if ratio is not None and ratio <= report["target_ratio"] else "NOT met"
        lines.append(
            f"{row['sessions']} session(s): MCP tools/call on /ws p50 {row['ws_mcp']['p50_ms']:.3f} ms, "
            f"typed step {row['ws_step']['p50_ms']:.3f} ms; per-round p50 ratio {_shown(ratio)}x "
            f"(target <= {report['target_ratio']}x: {met}), server CPU per call "
            f"{_shown(row['ws_mcp_cpu_ratio'])}x"
        )
    return "\n".join(lines)


async def _in_process_cpu(calls: int) -> dict[str, float]:
    """Median CPU time of the server's thread per /ws message, typed step and MCP call for the same tool and
    arguments taking turns call by call on two sessions of the app, driven through ASGI with no network."""
    from metric_tracker_rl.serving.app import build_app
    from metric_tracker_rl.settings import ServerSettings

    app = build_app(settings=ServerSettings.load(enable_web_interface=False))  # the debugger is not measured

    async def open_session() -> Any:
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        scope = {
            "type": "websocket",
            "path": "/ws",
            "raw_path": b"/ws",
            "query_string": b"",
            "headers": [],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 8000),
            "scheme": "ws",
            "subprotocols": [],
            "root_path": "",
            "app": app,
        }
        await inbox.put({"type": "websocket.connect"})
        asyncio.get_running_loop().create_task(app(scope, inbox.get, outbox.put))
        assert (await outbox.get())["type"] == "websocket.accept"

        async def round_trip(text: str) -> None:
            await inbox.put({"type": "websocket.receive", "text": text})
            await outbox.get()

        return round_trip

    messages = {
        "ws_step": lambda i: {"type": "step", "data": analysis_action(i)},
        "ws_mcp": lambda i: {"type": "mcp", "data": tool_call(i)},
    }
    sessions = {transport: await open_session() for transport in messages}
    reset = json.dumps({"type": "reset", "data": {"seed": 1, "max_steps": MAX_STEPS}})
    cpu_ns: dict[str, list[int]] = {transport: [] for transport in messages}
    warm = calls // 5
    for i in range(calls + warm):
        if i % (MAX_STEPS - 1) == 0:
            for round_trip in sessions.values():
                await round_trip(reset)
        for transport in messages if i % 2 else reversed(list(messages)):
            text = json.dumps(messages[transport](i))
            started = time.thread_time_ns()
            await sessions[transport](text)
            if i >= warm:
                cpu_ns[transport].append(time.thread_time_ns() - started)
    return {f"{transport}_cpu_us": statistics.median(values) / 1e3 for transport, values in cpu_ns.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--duration", type=float, default=6.0, help="seconds of load per transport and count")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--warmup", type=float, default=0.5, help="seconds of untimed load per transport first")
    parser.add_argument("--json", action="store_true", help="print the report as JSON after the table")
    parser.add_argument(
        "--in-process",
        type=int,
        metavar="CALLS",
        default=0,
        help="instead: the server's CPU per /ws message in-process, CALLS calls per transport",
    )
    parser.add_argument(
        "--cached-text",
        action="store_true",
        help="diagnostic: MCP calls reuse each tool's first text (what MCP costs apart from the text)",
    )
    args = parser.parse_args(argv)
    if args.in_process:
        cpu = asyncio.run(_in_process_cpu(args.in_process))
        print(
            f"in-process, median server CPU per /ws message: typed step {cpu['ws_step_cpu_us']:.1f} us, "
            f"MCP tools/call {cpu['ws_mcp_cpu_us']:.1f} us ({cpu['ws_mcp_cpu_us'] / cpu['ws_step_cpu_us']:.2f}x)"
        )
        return
    report = bench_mcp(
        args.sessions,
        args.duration,
        args.rounds,
        args.warmup,
        CACHED_TEXT_SERVER_MODULE if args.cached_text else SERVER_MODULE,
    )
    if args.cached_text:
        print("cached text: every MCP call answered with its tool's first text (a diagnostic, not the product)")
    print(table(report))
    print()
    print(verdicts(report))
    if args.json:
        print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
