"""Measure what a hostile visitor of a public Space costs everyone else: a second client's cheap query and /health,
idle and under each attack, and the server's peak memory.

    uv run python -m lab.speed.attack_latency      # every attack, each row into lab/artifacts/attack_latency.json
    uv run python -m lab.speed.attack_latency --only dense_ws --seconds 5
    uv run python -m lab.speed.attack_latency --server-root ../main --only dense_ws   # another checkout's server

The server runs as `python -m server.app` (the debugger on, the image's per-client cap of 8), or for the frame-cap
row as plain `uvicorn server.app:app`. The attacker and the victim are separate processes on separate loopback
addresses (127.0.0.2 attacks, 127.0.0.3 measures), as separate clients of a Space would be. For each attack the
victim measures idle, then again while the attack runs (back to back): over its own /ws session a cheap SQL query,
and an HTTP GET /health, alternately, each p50 and p99 in milliseconds. The attacker reports what it was answered.
The admission row (`sybil`) fills a server with 8 addresses x 8 sessions that each do a cheap step every 10 s, and
times how long a newcomer waits against the retry hints it is given (FULL_SERVER_IDLE_S is 20 s for it: no session
is ever idle that long).
Run it on an idle machine: it is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from metric_tracker_rl import server_process

ROOT = Path(__file__).resolve().parents[2]
ARTIFACT = ROOT / "lab" / "artifacts" / "attack_latency.json"
ATTACKER, VICTIM = "127.0.0.2", "127.0.0.3"
MIB = 1024 * 1024
RESET = {"type": "reset", "data": {"task_id": "easy_two_spikes", "max_steps": 500}}
CHEAP = {
    "type": "step",
    "data": {
        "analysis_method": "query",
        "analysis_args": {"sql": "SELECT weekday, sum(orders_placed) AS o FROM daily GROUP BY weekday"},
    },
}
SLOW_SQL = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r"
DENSE_ROWS = [{"d": 0}] * 60_000  # about 540 KB: under the 1 MiB cap
DENSE_FRAME = json.dumps({"type": "step", "data": {"classifications": DENSE_ROWS}})
DENSE_MCP = json.dumps(
    {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "query", "arguments": {"rows": DENSE_ROWS}}}
)
SERVER_ENV = {"ENABLE_WEB_INTERFACE": "true", "MAX_SESSIONS_PER_CLIENT": "8", "SQL_WORKERS": "3"}


# --- clients --------------------------------------------------------------------------------------------------


def ws_from(url: str, source: str, path: str = "/ws") -> ClientConnection:
    port = int(url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=120, source_address=(source, 0))
    return connect(
        url.replace("http", "ws", 1) + path, sock=sock, open_timeout=120, max_size=32 * MIB, ping_interval=None
    )  # a frozen server is measured, not given up on


def http_from(url: str, source: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=120, transport=httpx.HTTPTransport(local_address=source))


def ask(ws: ClientConnection, message: dict[str, Any] | str) -> dict[str, Any]:
    ws.send(json.dumps(message) if isinstance(message, dict) else message)
    return json.loads(ws.recv(timeout=300))


def first_reply(ws: ClientConnection, message: dict[str, Any]) -> dict[str, Any]:
    """The reply to a session's first message; a refused session may answer (and close) before it is sent."""
    with contextlib.suppress(ConnectionClosed):
        ws.send(json.dumps(message))
    return json.loads(ws.recv(timeout=300))


def outcome(reply: dict[str, Any]) -> str:
    if reply.get("type") == "error":
        return f"error {reply['data'].get('code')}"
    if "error" in reply:
        return "json-rpc error"
    return f"{reply.get('type')} {reply.get('data', {}).get('observation', {}).get('status', '')}".strip()


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
        "n": len(ordered),
    }


def victim(url: str, seconds: float) -> dict[str, Any]:
    """A cheap query over the victim's own /ws session and GET /health, alternately, for `seconds`."""
    query, health = [], []
    start = time.perf_counter()
    with ws_from(url, VICTIM) as ws, http_from(url, VICTIM) as http:
        ask(ws, RESET)
        ask(ws, CHEAP)  # the SQL pool is warm
        first_answer_s = time.perf_counter() - start  # a server frozen before the loop starts shows here
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            start = time.perf_counter()
            reply = ask(ws, CHEAP)
            query.append(time.perf_counter() - start)
            assert outcome(reply) == "observation ok", reply
            if reply["data"]["observation"]["steps_remaining"] < 2:
                ask(ws, RESET)
            start = time.perf_counter()
            assert http.get("/health").status_code == 200
            health.append(time.perf_counter() - start)
            time.sleep(0.01)
    return {
        "query": percentiles(query),
        "health": percentiles(health),
        "first_answer_ms": round(first_answer_s * 1000, 2),
    }


# --- attacks (each runs in the attacker's process until its deadline, and counts what it was answered) ---------


def _until(deadline: float, answers: Counter[str], step: Callable[[], str]) -> None:
    while time.monotonic() < deadline:
        try:
            answers[step()] += 1
        except (ConnectionClosed, OSError, httpx.HTTPError) as exc:
            answers[f"{type(exc).__name__}"] += 1
            time.sleep(0.05)


def dense_sockets(url: str, deadline: float, answers: Counter[str], sockets: int) -> None:
    def one() -> None:
        with ws_from(url, ATTACKER) as ws:
            _until(deadline, answers, lambda: outcome(ask(ws, DENSE_FRAME)))

    _threads([one] * sockets)


def dense_posts(url: str, deadline: float, answers: Counter[str], posters: int = 4) -> None:
    def one() -> None:
        with http_from(url, ATTACKER) as http:
            _until(deadline, answers, lambda: f"HTTP {http.post('/mcp', content=DENSE_MCP).status_code}")

    _threads([one] * posters)


def big_frames(url: str, deadline: float, answers: Counter[str]) -> None:
    sizes = [2 * MIB, 8 * MIB, 15 * MIB]

    def send_one() -> str:
        size = sizes[sum(answers.values()) % len(sizes)]
        with ws_from(url, ATTACKER) as ws:
            ws.send(json.dumps({"type": "step", "data": {"p": "x" * size}}))
            try:
                ws.recv(timeout=60)
            except ConnectionClosed as closed:
                return f"{size // MIB} MiB: closed {closed.rcvd.code if closed.rcvd else None}"
            return f"{size // MIB} MiB: answered"

    _until(deadline, answers, send_one)


def silent_sockets(url: str, deadline: float, answers: Counter[str], sockets: int = 3) -> None:
    """Sockets that send 30 steps with large replies each and never read."""
    big = json.dumps(
        {
            "type": "step",
            "data": {"analysis_method": "query", "analysis_args": {"sql": "SELECT * FROM daily", "limit": 200}},
        }
    )
    with contextlib.ExitStack() as stack:
        for _ in range(sockets):
            ws = stack.enter_context(ws_from(url, ATTACKER))
            ws.send(json.dumps(RESET))
            for _ in range(30):
                ws.send(big)
            answers["steps sent, never read"] += 31
        time.sleep(max(deadline - time.monotonic(), 0))


def slow_sql_with_a_tab(url: str, deadline: float, answers: Counter[str]) -> None:
    """Two /ws sessions and one debugger tab of one address, each running slow queries back to back."""
    slow = {"type": "step", "data": {"analysis_method": "query", "analysis_args": {"sql": SLOW_SQL}}}

    def session() -> None:
        with ws_from(url, ATTACKER) as ws:
            ask(ws, RESET)
            _until(deadline, answers, lambda: "ws " + outcome(ask(ws, slow)))

    def tab() -> None:
        from gradio_client import Client

        # The page's request comes from loopback, a trusted proxy: it names the attacker's address, as a Space's
        # proxy names a browser's.
        page = Client(
            f"{url}/web/",
            verbose=False,
            analytics_enabled=False,
            download_files=False,
            headers={"X-Forwarded-For": ATTACKER},
        )
        page.predict("easy_two_spikes", "", "(default)", "(default)", "", "", "app_opens", api_name="/do_reset")
        _until(
            deadline,
            answers,
            lambda: (
                "tab " + page.predict("query", json.dumps({"sql": SLOW_SQL}), api_name="/run_tool")[0].split(" — ")[0]
            ),
        )

    _threads([session, session, tab])


# Text that makes a backtracking pattern for JSON strings rescan the rest of the message from every escaped quote:
# more brackets than the fast count allows, then an unclosed string of 32,000 escaped quotes (64 KB).
QUADRATIC = '{"type": "step", "data": {"x": "' + "[" * 40 + '\\"' * 32_000


def quadratic_frames(url: str, deadline: float, answers: Counter[str], path: str = "/ws") -> None:
    """One socket sends the 64 KB text as frames, back to back (reconnecting when closed)."""

    def one() -> str:
        with ws_from(url, ATTACKER, path) as ws:
            return outcome(ask(ws, QUADRATIC))

    _until(deadline, answers, one)


def quadratic_posts(url: str, deadline: float, answers: Counter[str]) -> None:
    """The same text POSTed to /nope, /reset and /mcp (no session) in turn."""
    paths = ["/nope", "/reset", "/mcp"]
    with http_from(url, ATTACKER) as http:

        def one() -> str:
            path = paths[sum(answers.values()) % len(paths)]
            return f"{path} HTTP {http.post(path, content=QUADRATIC).status_code}"

        _until(deadline, answers, one)


def fresh_address_slow_sql(url: str, deadline: float, answers: Counter[str]) -> None:
    """A fresh loopback address for every slow statement, three at a time."""
    slow = {"type": "step", "data": {"analysis_method": "query", "analysis_args": {"sql": SLOW_SQL}}}
    hosts = iter(range(1000))

    def one() -> None:
        while time.monotonic() < deadline:
            host = next(hosts)
            try:
                with ws_from(url, f"127.0.{100 + host // 250}.{1 + host % 250}") as ws:
                    ask(ws, RESET)
                    answers["slow " + outcome(ask(ws, slow))] += 1
            except (ConnectionClosed, OSError) as exc:
                answers[type(exc).__name__] += 1

    _threads([one] * 3)


def reset_storm(url: str, deadline: float, answers: Counter[str]) -> None:
    """8 addresses x 7 sessions, each resetting an abyss episode back to back (the victim takes a 57th place)."""
    abyss = {"type": "reset", "data": {"difficulty": "abyss"}}

    def one(address: str) -> None:
        with ws_from(url, address) as ws:
            _until(deadline, answers, lambda: "reset " + outcome(ask(ws, abyss)))

    _threads([functools.partial(one, f"127.0.0.{host}") for host in range(10, 18) for _ in range(7)])


def unfinished_frames(url: str, deadline: float, answers: Counter[str]) -> None:
    """8 addresses x 7 sessions (the victim takes a 57th place), each sending most of a frame just under 1 MiB and
    then nothing, again as each is closed."""
    declared = MIB - 1024
    header = struct.pack("!BBQ", 0x81, 0x80 | 127, declared) + b"\0\0\0\0"  # masked with a zero key

    def one(address: str) -> None:
        while time.monotonic() < deadline:
            try:
                with ws_from(url, address) as ws:
                    ws.socket.sendall(header + b"x" * (declared - 4096))
                    answers["frame begun"] += 1
                    ws.recv(timeout=max(deadline - time.monotonic(), 0.1))
            except TimeoutError:
                answers["still open at the end"] += 1
            except (ConnectionClosed, OSError) as exc:
                code = getattr(getattr(exc, "rcvd", None), "code", None)
                answers[f"closed {code}"] += 1
                time.sleep(0.5)

    _threads([functools.partial(one, f"127.0.1.{host}") for host in range(1, 9) for _ in range(7)])


def _threads(targets: list[Callable[[], None]]) -> None:
    threads = [threading.Thread(target=target, daemon=True) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


ATTACKS: dict[str, tuple[str, Callable[[str, float, Counter[str]], None]]] = {
    "dense_ws": ("1 socket: 540 KB frames of 60,000 tiny objects", lambda u, d, a: dense_sockets(u, d, a, 1)),
    "dense_ws_8": ("8 sockets of one address: the same frames", lambda u, d, a: dense_sockets(u, d, a, 8)),
    "dense_mcp_post": ("the same bodies POSTed to /mcp, no session (4 at a time)", dense_posts),
    "big_frames_uvicorn": ("`uvicorn server.app:app`: 2, 8 and 15 MiB frames, reconnecting", big_frames),
    "silent_sockets": ("3 sockets send 30 large-reply steps each and never read", silent_sockets),
    "slow_sql_with_tab": (
        "2 /ws sessions + 1 debugger tab of one address: slow queries back to back",
        slow_sql_with_a_tab,
    ),
    "quadratic_ws": ("1 socket: 64 KB frames of escaped quotes (an unclosed string), back to back", quadratic_frames),
    "quadratic_mcp_ws": ("the same frames on the WebSocket /mcp", lambda u, d, a: quadratic_frames(u, d, a, "/mcp")),
    "quadratic_posts": ("the same text POSTed to /nope, /reset and /mcp (no session), back to back", quadratic_posts),
    "quadratic_uvicorn": ("`uvicorn server.app:app`: the same frames", quadratic_frames),
    "fresh_address_slow_sql": ("a fresh address for every slow statement, 3 at a time", fresh_address_slow_sql),
    "reset_storm": ("8 addresses x 7 sessions reset abyss back to back", reset_storm),
    "unfinished_frames": ("8 addresses x 7 sessions each hold most of a 1 MiB frame, unfinished", unfinished_frames),
}
PLAIN_UVICORN = frozenset({"big_frames_uvicorn", "quadratic_uvicorn"})


def attacker(url: str, attack: str, seconds: float) -> dict[str, int]:
    answers: Counter[str] = Counter()
    ATTACKS[attack][1](url, time.monotonic() + seconds, answers)
    return dict(answers)


# --- orchestration ----------------------------------------------------------------------------------------------


def role(name: str, url: str, seconds: float, attack: str = "") -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "lab.speed.attack_latency",
        "--role",
        name,
        "--url",
        url,
        "--seconds",
        str(seconds),
        "--only",
        attack or "dense_ws",
    ]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)


def result_of(process: subprocess.Popen) -> dict[str, Any]:
    out, _ = process.communicate(timeout=900)
    return json.loads(out.strip().splitlines()[-1])


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (the SQL workers), in MB."""
    total, pids = 0, [pid]
    while pids:
        current = pids.pop()
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{current}/task").iterdir():
                pids += [int(child) for child in (task / "children").read_text().split()]
    return total / 1024


@contextlib.contextmanager
def peak_memory(pid: int) -> Iterator[dict[str, float]]:
    peak = {"mb": tree_rss_mb(pid)}
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.05):
            peak["mb"] = max(peak["mb"], tree_rss_mb(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        stop.set()
        sampler.join()
        peak["mb"] = round(peak["mb"], 1)


@contextlib.contextmanager
def server(root: Path, plain_uvicorn: bool, extra: dict[str, str] | None = None) -> Iterator[tuple[str, int]]:
    """A server started from the checkout at `root` (its code comes first on the path)."""
    port = server_process.free_port()
    module = ["uvicorn", "server.app:app"] if plain_uvicorn else ["server.app"]
    command = [sys.executable, "-m", *module, "--host", "127.0.0.1", "--port", str(port)]
    env = {**os.environ, "METRIC_TRACKER_DEBUG": "", **SERVER_ENV, **(extra or {})}
    with tempfile.TemporaryFile() as log, server_process.serving(command, port, env, log, cwd=root) as process:
        yield f"http://127.0.0.1:{port}", process.pid


def measure(root: Path, attack: str, seconds: float) -> dict[str, Any]:
    with server(root, plain_uvicorn=attack in PLAIN_UVICORN) as (url, pid):
        idle = result_of(role("victim", url, seconds))
        with peak_memory(pid) as peak:
            attacking = role("attacker", url, seconds + 4, attack)
            time.sleep(2)  # the attack is under way
            under = result_of(role("victim", url, seconds))
            answers = result_of(attacking)
    return {
        "attack": ATTACKS[attack][0],
        "attacker_answers": answers,
        "idle": idle,
        "under_attack": under,
        "ratio_p50": {kind: round(under[kind]["p50_ms"] / idle[kind]["p50_ms"], 2) for kind in ("query", "health")},
        "peak_server_mb": peak["mb"],
    }


# --- admission: a Sybil fills the server -------------------------------------------------------------------------

SYBIL_ADDRESSES = [f"127.0.0.{host}" for host in range(10, 18)]
NEWCOMER = "127.0.0.30"


def sybil(url: str, deadline: float, answers: Counter[str]) -> None:
    """8 addresses x 8 sessions, reset once, then each doing a cheap step every 10 s; a session that is closed is
    opened again at once from the same address (and reset), as a Sybil that wants to keep its hold."""
    with contextlib.ExitStack() as stack:
        held: dict[ClientConnection, str] = {}
        for address in SYBIL_ADDRESSES:
            for _ in range(8):
                ws = stack.enter_context(ws_from(url, address))
                answers["reset " + outcome(ask(ws, RESET))] += 1
                held[ws] = address
        while time.monotonic() < deadline:
            for ws, address in list(held.items()):
                with contextlib.suppress(ConnectionClosed, OSError):
                    if ask(ws, CHEAP).get("type") != "error":
                        continue
                answers["closed"] += 1
                del held[ws]
                try:
                    again = stack.enter_context(ws_from(url, address))
                    reply = first_reply(again, RESET)
                except (ConnectionClosed, OSError) as exc:
                    answers[f"reconnect: {type(exc).__name__}"] += 1
                    continue
                answers[
                    "reconnect: "
                    + ("served" if reply["type"] == "observation" else reply["data"]["message"].split(":")[0])
                ] += 1
                if reply["type"] == "observation":
                    held[again] = address
            time.sleep(10)


ATTACKS["sybil"] = ("8 addresses x 8 sessions fill the server, each doing a cheap step every 10 s", sybil)
ADMISSION_LIMIT_S = 120.0


def newcomer(url: str, limit_s: float) -> dict[str, Any]:
    """Reset from a new address until served, waiting each refusal's `retry_after_s`."""
    start, hints = time.monotonic(), []
    while time.monotonic() - start < limit_s:
        with ws_from(url, NEWCOMER) as ws:
            reply = first_reply(ws, RESET)
        if reply["type"] == "observation":
            return {
                "first_hint_s": hints[0] if hints else None,
                "hints_s": hints,
                "served_after_s": round(time.monotonic() - start, 1),
            }
        hints.append(reply["data"]["retry_after_s"])
        time.sleep(hints[-1])
    return {"hints_s": hints, "served_after_s": None}


def measure_admission(root: Path, limit_s: float) -> dict[str, Any]:
    with (
        server(root, plain_uvicorn=False, extra={"ENABLE_WEB_INTERFACE": "false", "FULL_SERVER_IDLE_S": "20"}) as (
            url,
            pid,
        ),
        peak_memory(pid) as peak,
    ):
        holders = role("attacker", url, limit_s, "sybil")
        time.sleep(30)  # every place is taken
        waited = newcomer(url, limit_s)
        answers = result_of(holders)
    return {
        "attack": ATTACKS["sybil"][0],
        "newcomer": waited,
        "attacker_answers": answers,
        "peak_server_mb": peak["mb"],
    }


def measure_row(root: Path, attack: str, seconds: float) -> dict[str, Any]:
    return measure_admission(root, ADMISSION_LIMIT_S) if attack == "sybil" else measure(root, attack, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=sorted(ATTACKS), action="append")
    parser.add_argument("--seconds", type=float, default=8.0, help="each measurement's length")
    parser.add_argument("--server-root", type=Path, default=ROOT, help="the checkout whose server is attacked")
    parser.add_argument(
        "--reference-root",
        type=Path,
        help="another checkout (an older commit) attacked the same "
        "way, each attack on it just before this one's: its rows go under `reference`",
    )
    parser.add_argument("--role", choices=["victim", "attacker"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "victim":
        print(json.dumps(victim(args.url, args.seconds)))
        return
    if args.role == "attacker":
        print(json.dumps(attacker(args.url, args.only[0], args.seconds)))
        return
    rows = {}
    for attack in args.only or list(ATTACKS):
        root = args.server_root.resolve()
        if args.reference_root is not None:
            reference = measure_row(args.reference_root.resolve(), attack, args.seconds)
        rows[attack] = measure_row(root, attack, args.seconds)
        if args.reference_root is not None:
            rows[attack]["reference"] = {"root": str(args.reference_root), **reference}
        print(json.dumps({attack: rows[attack]}), flush=True)
        if args.server_root.resolve() == ROOT:  # each row as it is measured, the others kept
            kept = json.loads(ARTIFACT.read_text())["rows"] if ARTIFACT.exists() else {}
            ARTIFACT.write_text(
                json.dumps(
                    {
                        "command": "uv run python -m lab.speed.attack_latency",
                        "seconds": args.seconds,
                        "rows": {**kept, **rows},
                    },
                    indent=2,
                )
                + "\n"
            )


if __name__ == "__main__":
    main()
