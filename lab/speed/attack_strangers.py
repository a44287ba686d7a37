"""What a stranger with free addresses still got: served before every known client, a close hidden behind refused
frames, worker kills on demand, statements just under the costly mark, and a legal client's pipelined report. Each
row's victim is a process of its own on its own loopback address, a client the server knows (it ran its cheap query
idle first), measured idle and then under the attack, on a fresh server.

    uv run python -m lab.speed.attack_strangers --server-root ../before --column before   # another checkout's
    uv run python -m lab.speed.attack_strangers --column after                            # this checkout's

The server is lab.speed.attack_held_work's (`python -m server.app` of --server-root, 3 SQL workers, 8 sessions a
client, room for 80). Attackers are processes of their own; every loop ends by itself. Rows:

- parade: 2 addresses loop a runaway; every PARADE_EVERY_S a never-seen address resets and sends a runaway, dropping
  PARADE_HOLD_S later. parade_kills: the same with a statement that ignores its stop (its worker is killed).
- refused_close: 8 addresses x 7 sockets each send a runaway, then 12 frames of 8,200 values (refused unparsed),
  then half-close; then the same with no victim, and the workers' CPU seconds after its last socket left
  (statements running for nobody).
- kills: 6 addresses x 3 sockets loop: reset, the stop-ignoring statement, drop 0.6 s later; the victim, /health's
  latency from another address, and the workers started.
- near_costly: 12 addresses x 2 sockets loop a statement of about 0.026 s of CPU.
- legal_report: a client pipelines a SQL step, an 89 KB report (200 rows and a note) and a state request, 10 times;
  episodes lost (an answer missing, the socket closed) and how sockets were closed.
- mcp_minor: an HTTP `tools/call` sent with a half-close (answered?), and a request whose Content-Length is 10^20
  (how long until the server answers or drops it).
- audit_builds, parade_builds, parade_places: episode builds and places under never-seen addresses
  (lab/speed/attack_builds.py says what each does; they are kept in lab/artifacts/attack_builds.json).

It writes lab/artifacts/attack_strangers.json, each row into --column (attack_strangers_table.py renders it for the
docs). A measurement, not a test
(tests/test_stranger_turns.py, tests/test_read_ahead.py and tests/test_worker_kills.py hold the bounds).
"""

from __future__ import annotations

import contextlib
import functools
import json
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from websockets.exceptions import ConnectionClosed

from lab.speed import attack_builds
from lab.speed.attack_held_work import HELD_ENV, RUNAWAY, TIMEOUT_S, _threads, status
from lab.speed.attack_latency import CHEAP, RESET
from lab.speed.attack_requesters import workers_cpu_s
from lab.speed.loopback_server import (
    ROOT,
    ask,
    attack_arguments,
    checkout,
    load_average_sampled,
    loopback_server,
    never_seen_address,
    observation,
    read_artifact,
    spread,
    visitor_parade,
    write_column,
    ws_from,
)

ARTIFACT = ROOT / "lab" / "artifacts" / "attack_strangers.json"
COMMAND = "uv run python -m lab.speed.attack_strangers"
VICTIM = "127.0.0.3"
PROBE = "127.0.0.4"  # /health, from an address of its own
WAIT_LIMIT_S = 3.0  # a victim's wait past this counts
PARADE_EVERY_S = 0.25
PARADE_HOLD_S = 3.0
IGNORES_STOP = "SELECT list(range) FROM range(8000000)"  # converting its result ignores the stop
NEAR_COSTLY = "SELECT sum(range % 7) AS s FROM range(1300000)"  # about 0.026 s of one core
DENSE = "[" + ",".join(["0"] * 8200) + "]"  # refused unparsed: too many values
AFTER_S = 10.0
REPORT_ROW = {
    "date": "2026-03-10",
    "entity_type": "event_count",
    "entity_name": "app_opens",
    "anomaly_type": "absolute_spike_in_event_count",
    "detection_method": "compare_count_to_median",
    "baseline_value": 1.0,
    "observed_value": 2.0,
    "delta_value": 1.0,
    "severity": "high",
}
REPORT = {
    "type": "step",
    "data": {
        "classifications": [{**REPORT_ROW, "delta_value": float(index)} for index in range(200)],
        "metadata": {"note": "n" * 40_000},
    },
}
LEGAL_SQL = "SELECT sum(range % 7) AS s FROM range(8000000)"  # about 0.15 s: still running as the report arrives


def step(sql: str) -> dict[str, Any]:
    return {"type": "step", "data": {"analysis_method": "query", "analysis_args": {"sql": sql}}}


def progress(message: str) -> None:
    print(f"[attack_strangers {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- the victim and the probe -------------------------------------------------------------------------------------


def victim(url: str, seconds: float) -> dict[str, Any]:
    """The cheap query over the victim's own session, one at a time (10 ms apart), for `seconds`; the first (which
    may start the workers or load the episode's tables) is kept apart."""
    walls, answers, first = [], Counter[str](), None
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with ws_from(url, VICTIM, TIMEOUT_S) as ws:
                ask(ws, RESET, TIMEOUT_S)
                if first is None:  # apart: it may start the workers or load the episode's tables
                    began = time.perf_counter()
                    ask(ws, CHEAP, TIMEOUT_S)
                    first = round(time.perf_counter() - began, 2)
                while time.monotonic() < deadline:
                    began = time.perf_counter()
                    reply = ask(ws, CHEAP, TIMEOUT_S)
                    walls.append(time.perf_counter() - began)
                    answers[status(reply)] += 1
                    if observation(reply).get("steps_remaining", 2) < 2:
                        ask(ws, RESET, TIMEOUT_S)
                    time.sleep(0.01)
        except (ConnectionClosed, OSError) as exc:
            answers[type(exc).__name__] += 1
            time.sleep(0.5)
    return {
        "first_s": first,
        "query_ms": spread(walls, (50, 99), scale=1000, digits=1),
        "waits_over_3s": sum(wall > WAIT_LIMIT_S for wall in walls),
        "answers": dict(answers),
    }


def health(url: str, seconds: float) -> dict[str, Any]:
    """GET /health every 0.1 s from PROBE for `seconds`."""
    walls = []
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=url, timeout=TIMEOUT_S, transport=httpx.HTTPTransport(local_address=PROBE)) as client:
        while time.monotonic() < deadline:
            began = time.perf_counter()
            client.get("/health")
            walls.append(time.perf_counter() - began)
            time.sleep(0.1)
    return {"health_ms": spread(walls, (50, 99), scale=1000, digits=1)}


# --- attacks (each in its own process until its deadline, counting what it was answered) --------------------------


def _counted(answers: Counter[str], action: Callable[[], None]) -> None:
    try:
        action()
    except (ConnectionClosed, OSError) as exc:
        answers[type(exc).__name__] += 1
        time.sleep(0.2)


def _looping(url: str, addresses: list[str], sql: str, deadline: float, answers: Counter[str]) -> list[Any]:
    def loop(address: str) -> None:
        while time.monotonic() < deadline:

            def session() -> None:
                with ws_from(url, address, TIMEOUT_S, 0.5) as ws:
                    ask(ws, RESET, TIMEOUT_S)
                    while time.monotonic() < deadline:
                        answers["loop " + status(ask(ws, step(sql), TIMEOUT_S))] += 1

            _counted(answers, session)

    return [functools.partial(loop, address) for address in addresses]


def parade(url: str, seconds: float, sql: str = RUNAWAY["data"]["analysis_args"]["sql"]) -> dict[str, Any]:
    answers: Counter[str] = Counter()
    deadline = time.monotonic() + seconds
    loopers = [
        threading.Thread(target=t, daemon=True)
        for t in _looping(url, ["127.0.9.1", "127.0.9.2"], sql, deadline, answers)
    ]
    for thread in loopers:
        thread.start()

    def visit(index: int) -> None:
        def once() -> None:
            with ws_from(url, never_seen_address(index), TIMEOUT_S, 0.5) as ws:
                answers["visitor reset " + status(ask(ws, RESET, TIMEOUT_S))] += 1
                ws.send(json.dumps(step(sql)))
                time.sleep(PARADE_HOLD_S)

        _counted(answers, once)

    visitors = visitor_parade(visit, lambda _: time.monotonic() < deadline, PARADE_EVERY_S)
    for thread in loopers:
        thread.join()
    return {"answers": dict(answers), "visitors": visitors}


def parade_kills(url: str, seconds: float) -> dict[str, Any]:
    return parade(url, seconds, IGNORES_STOP)


def refused_close(url: str, seconds: float) -> dict[str, Any]:
    answers: Counter[str] = Counter()

    def one(address: str) -> None:
        def once() -> None:
            with ws_from(url, address, TIMEOUT_S, 0.5) as ws:
                answers["reset " + status(ask(ws, RESET, TIMEOUT_S))] += 1
                ws.send(json.dumps(RUNAWAY))
                for _ in range(12):
                    ws.send(DENSE)
                ws.socket.shutdown(socket.SHUT_WR)
                time.sleep(0.2)
            answers["half-closed"] += 1

        _counted(answers, once)

    _threads([functools.partial(one, f"127.0.8.{host}") for host in range(1, 9) for _ in range(7)])
    return {"answers": dict(answers), "left_at": time.time()}


def kills(url: str, seconds: float) -> dict[str, Any]:
    answers: Counter[str] = Counter()
    deadline = time.monotonic() + seconds

    def loop(address: str) -> None:
        while time.monotonic() < deadline:

            def once() -> None:
                with ws_from(url, address, TIMEOUT_S, 0.5) as ws:
                    answers["reset " + status(ask(ws, RESET, TIMEOUT_S))] += 1
                    ws.send(json.dumps(step(IGNORES_STOP)))
                    time.sleep(0.6)

            _counted(answers, once)

    _threads([functools.partial(loop, f"127.0.7.{host}") for host in range(1, 7) for _ in range(3)])
    return {"answers": dict(answers)}


def near_costly(url: str, seconds: float) -> dict[str, Any]:
    answers: Counter[str] = Counter()
    deadline = time.monotonic() + seconds
    addresses = [f"127.0.6.{host}" for host in range(1, 13)]
    _threads(_looping(url, addresses * 2, NEAR_COSTLY, deadline, answers))
    return {"answers": dict(answers)}


def legal_report(url: str, seconds: float) -> dict[str, Any]:
    """10 episodes: reset, then a SQL step, the report and a state request sent at once; an episode is lost when
    an answer is missing or the SQL step was not run."""
    lost, closes, first_answers = 0, Counter[str](), Counter[str]()
    for index in range(10):
        with ws_from(url, f"127.0.5.{index + 1}", TIMEOUT_S) as ws:
            ask(ws, RESET, TIMEOUT_S)
            for message in (step(LEGAL_SQL), REPORT, {"type": "state"}):
                ws.send(json.dumps(message))
            replies: list[dict[str, Any]] = []
            try:
                while len(replies) < 3:
                    replies.append(json.loads(ws.recv(timeout=60)))
                closes["open"] += 1
            except ConnectionClosed as exc:
                closes[f"closed {exc.rcvd.code if exc.rcvd else None} {exc.rcvd.reason if exc.rcvd else ''}"] += 1
            first = observation(replies[0]) if replies else {"status": "none", "message": ""}
            first_answers[first["status"] + (" (not run)" if "not run" in first.get("message", "") else "")] += 1
            lost += len(replies) < 3 or first["status"] != "ok"
    return {"episodes": 10, "lost": lost, "closes": dict(closes), "sql_step": dict(first_answers)}


def mcp_minor(url: str, seconds: float) -> dict[str, Any]:
    port = int(url.rsplit(":", 1)[1])
    with httpx.Client(base_url=url, timeout=TIMEOUT_S) as client:
        session_id = client.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "openenv/session/create"}).json()[
            "result"
        ]["session_id"]
        client.post(
            "/mcp",
            json={
                "jsonrpc": "2.0",
                "id": 2,
                "method": "tools/call",
                "params": {"name": "reset", "arguments": {"difficulty": "easy"}, "session_id": session_id},
            },
        )
    call = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": "query", "arguments": {"sql": "SELECT 1"}, "session_id": session_id},
        }
    ).encode()
    answered = 0
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(
                b"POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(call)).encode()
                + b"\r\n\r\n"
                + call
            )
            sock.shutdown(socket.SHUT_WR)
            with contextlib.suppress(OSError):
                answered += sock.recv(65536).startswith(b"HTTP/1.1 200")
    huge = {str(length): _declared_length(port, length) for length in (10**18, 10**20)}
    return {"half_closed_calls": 5, "answered": answered, "huge_length": huge}


def _declared_length(port: int, length: int) -> dict[str, Any]:
    """A POST to /mcp that declares `length` bytes of body and sends one: what the server answers, how soon."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        began = time.perf_counter()
        sock.sendall(
            b"POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "
            + str(length).encode()
            + b"\r\n\r\n{"
        )
        try:
            head = sock.recv(65536)[:12].decode(errors="replace") or "closed"
        except OSError as exc:
            head = type(exc).__name__
        return {"answer": head, "held_s": round(time.perf_counter() - began, 2)}


ROLES: dict[str, Callable[[str, float], dict[str, Any]]] = {
    "victim": victim,
    "health": health,
    "parade": parade,
    "parade_kills": parade_kills,
    "refused_close": refused_close,
    "kills": kills,
    "near_costly": near_costly,
    "legal_report": legal_report,
    "mcp_minor": mcp_minor,
    **attack_builds.ROLES,
}


def role(name: str, url: str, seconds: float) -> subprocess.Popen[str]:
    command = [
        sys.executable,
        "-m",
        "lab.speed.attack_strangers",
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


def _worker_pids(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def row_under(attack: str, settle_s: float = 3.0, probe: bool = False) -> Callable[[str, int, float], dict[str, Any]]:
    def measure(url: str, pid: int, seconds: float) -> dict[str, Any]:
        idle = result_of(role("victim", url, seconds))
        idle_health = result_of(role("health", url, 5.0)) if probe else None
        workers, started = _worker_pids(pid), set()
        attacking = role(attack, url, seconds + settle_s + 2)
        time.sleep(settle_s)
        probing = role("health", url, seconds) if probe else None
        under = role("victim", url, seconds)
        while under.poll() is None:
            started |= _worker_pids(pid) - workers
            time.sleep(0.2)
        row = {"idle": idle, "under_attack": result_of(under), "attacker": result_of(attacking)}
        if probing is not None:
            row |= {"health_idle": idle_health, "health_under_attack": result_of(probing)}
            row["workers_started"] = len(started)
        return row

    return measure


def row_refused_close(url: str, pid: int, seconds: float) -> dict[str, Any]:
    """The victim under the attack; then the attack again with no victim, and the workers' CPU over AFTER_S after
    its last socket left (the victim's own cheap queries would be counted there as well)."""
    idle = result_of(role("victim", url, seconds))
    attacking = role("refused_close", url, seconds)
    under = result_of(role("victim", url, seconds))
    attack = result_of(attacking)
    again = result_of(role("refused_close", url, seconds))
    left = workers_cpu_s(pid)
    time.sleep(AFTER_S)
    return {
        "idle": idle,
        "under_attack": under,
        "attacker": attack,
        "attacker_alone": again,
        "workers_cpu_after_s": round(workers_cpu_s(pid) - left, 2),
    }


def row_alone(name: str) -> Callable[[str, int, float], dict[str, Any]]:
    return lambda url, pid, seconds: result_of(role(name, url, seconds))


ROWS: dict[str, Callable[[str, int, float], dict[str, Any]]] = {
    "parade": row_under("parade"),
    "parade_kills": row_under("parade_kills"),
    "refused_close": row_refused_close,
    "kills": row_under("kills", probe=True),
    "near_costly": row_under("near_costly"),
    "legal_report": row_alone("legal_report"),
    "mcp_minor": row_alone("mcp_minor"),
    "audit_builds": attack_builds.audit_builds_row(role, result_of),
    "parade_builds": attack_builds.parade_builds_row(role, result_of),
    "parade_places": attack_builds.parade_places_row(role, result_of),
}


def main() -> None:
    args = attack_arguments(__doc__.split("\n\n")[0], list(ROWS), ROLES)
    if args is None:
        return
    root = args.server_root.resolve()
    code = checkout(root)
    for name in args.only or list(ROWS):
        with load_average_sampled() as load, loopback_server(root, HELD_ENV) as served:
            progress(f"{name}: server of {root} at {served.url}")
            row = {**ROWS[name](served.url, served.pid, args.seconds), "server_tracebacks": served.tracebacks()}
        row["load_average"] = load
        print(json.dumps({name: row}), flush=True)
        artifact = attack_builds.ARTIFACT if name in attack_builds.ROWS else ARTIFACT  # its own columns' commits
        rows = (read_artifact(artifact)[args.column] or {}).get("rows", {})
        write_column(artifact, args.column, {**code, "rows": {**rows, name: row}}, COMMAND)


if __name__ == "__main__":
    main()
