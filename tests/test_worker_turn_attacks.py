"""A stranger's attacks on the SQL workers, over a real server on loopback (each address another client): quick
standing bought before runaways, runaways from many addresses against a newcomer, and runaways whose requesters
left (a socket closed behind a padded step, an HTTP tool call hung up). The bounds are the promises: no victim's
cheap query over 3 s, a newcomer's first `SELECT 1` within 10 s, and no statement running once its client has gone
(the workers' CPU time stops growing). `lab/speed/attack_held_work.py` measures the same attacks longer."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sql_helpers import CHEAP, SLOW, open_session, query, server_process, worker_children, ws_ask
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from metric_tracker_rl.sql.known_clients import KNOWN_AFTER_S

pytestmark = pytest.mark.slow  # a server, runaways at the time limit

VICTIM_BOUND_S = 3.0
NEWCOMER_BOUND_S = 10.0
RESET = {"type": "reset", "data": {"seed": 3, "difficulty": "easy", "max_steps": 400}}  # as open_session's
QUIET_CPU_S = 0.1  # the workers' CPU time over a second with no statement running (a worker starting again)
_TICKS = 100


@pytest.fixture
def server() -> Iterator[tuple[str, int]]:
    """A server of each test's own: what one attack leaves in the gate (clients slow or killed within
    SLOW_MEMORY_S, the newcomers' spent allowance) is no part of the next test's case."""
    with server_process({"SQL_WORKERS": "3", "MAX_CONCURRENT_ENVS": "40", "MAX_SESSIONS_PER_CLIENT": "8"}) as found:
        yield found


def workers_cpu_s(pid: int) -> float:
    """The CPU time of the server's SQL workers so far (a worker gone since is not counted)."""
    total = 0
    for child in worker_children(pid):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / _TICKS


def cpu_over(pid: int, seconds: float = 1.0) -> float:
    """The workers' CPU time over the next `seconds`."""
    before = workers_cpu_s(pid)
    time.sleep(seconds)
    return workers_cpu_s(pid) - before


def wait_quiet(pid: int, limit_s: float = 60.0) -> None:
    """Wait until no statement runs (a test's attack may not outlive it into the next)."""
    deadline = time.monotonic() + limit_s
    while cpu_over(pid, 0.5) > QUIET_CPU_S / 2:
        assert time.monotonic() < deadline, "the workers never went quiet"


def timed(ws: ClientConnection, sql: str) -> tuple[float, dict[str, Any]]:
    began = time.perf_counter()
    reply = ws_ask(ws, query(sql))
    return time.perf_counter() - began, reply


def ok(reply: dict[str, Any]) -> bool:
    return reply.get("type") == "observation" and reply["data"]["observation"]["status"] == "ok"


def test_fresh_addresses_that_buy_quick_standing_then_start_runaways_at_once_leave_a_victims_query_quick(
    server: tuple[str, int],
) -> None:
    """Three fresh addresses each run `SELECT 1`, then all send a runaway at the same instant (it took every
    worker, the victim's query stalled 13-17 s); then three more do the same a second later. The victim is a known
    client, as a trainer's session is: one that came with the attackers is a newcomer among them, and shares their
    allowance (the newcomer's bound is the next test's)."""
    url, pid = server
    wait_quiet(pid)
    with contextlib.ExitStack() as stack:
        victim = stack.enter_context(open_session(url, "127.0.0.4"))
        assert ok(ws_ask(victim, query(CHEAP)))
        time.sleep(KNOWN_AFTER_S + 0.5)
        waves = [
            [stack.enter_context(open_session(url, f"127.0.1.{wave * 10 + host}")) for host in range(3)]
            for wave in range(2)
        ]
        for attackers in waves:
            for ws in attackers:
                assert ok(ws_ask(ws, query("SELECT 1")))
        walls: list[float] = []
        for attackers in waves:
            for ws in attackers:
                ws.send(json.dumps(query(SLOW)))
            until = time.monotonic() + 2.0
            while time.monotonic() < until:
                wall, reply = timed(victim, CHEAP)
                assert ok(reply), reply
                walls.append(wall)
                if reply["data"]["observation"].get("steps_remaining", 2) < 2:
                    # a new episode before the step budget runs out (as lab/speed/attack_requesters.py's victim)
                    assert ws_ask(victim, RESET)["type"] == "observation"
        assert max(walls) < VICTIM_BOUND_S, sorted(walls)[-5:]


def test_a_newcomers_first_statement_is_answered_while_eight_addresses_loop_runaways(server: tuple[str, int]) -> None:
    """Eight known addresses loop runaways (a newcomer waited 35-38 s: never seen, it counted as slow). They are
    known before their first runaway: a runaway killed while its client is not yet known makes every client not yet
    known one whose statements were killed, for SLOW_MEMORY_S (a parade of fresh addresses is one client), and a
    newcomer then waits its turn among them by design; whether the attackers' first kill came before or after they
    became known was a race."""
    url, pid = server
    wait_quiet(pid)
    stop = threading.Event()
    with contextlib.ExitStack() as stack:
        attackers = [stack.enter_context(open_session(url, f"127.0.2.{host}")) for host in range(1, 9)]
        for ws in attackers:
            assert ok(ws_ask(ws, query("SELECT 1")))
        time.sleep(KNOWN_AFTER_S + 0.5)

        def loop(ws: ClientConnection) -> None:
            with contextlib.suppress(ConnectionClosed):  # closed when the test ends
                while not stop.is_set():
                    ws_ask(ws, query(SLOW))

        threads = [threading.Thread(target=loop, args=(ws,), daemon=True) for ws in attackers]
        for thread in threads:
            thread.start()
        try:
            time.sleep(3.0)  # every attacker has a runaway running or queued
            newcomer = stack.enter_context(open_session(url, "127.0.2.100"))
            first, reply = timed(newcomer, "SELECT 1")
            assert ok(reply), reply
            again, reply = timed(newcomer, CHEAP)
            assert ok(reply), reply
        finally:
            stop.set()
        assert first < NEWCOMER_BOUND_S and again < VICTIM_BOUND_S, (first, again)
    for thread in threads:
        thread.join(timeout=60)


def test_a_runaway_whose_socket_closes_behind_a_padded_step_stops_at_once(server: tuple[str, int]) -> None:
    """A runaway step, a second step padded past what the server reads ahead (65 KB of whitespace), then the close:
    the close used to be unread, and the runaway ran to its limit with nobody to answer."""
    url, pid = server
    wait_quiet(pid)
    port = int(url.rsplit(":", 1)[1])
    for attempt in range(3):
        sock = socket.create_connection(("127.0.0.1", port), timeout=60, source_address=(f"127.0.3.{attempt + 1}", 0))
        ws = connect(url.replace("http", "ws", 1) + "/ws", sock=sock, open_timeout=60, close_timeout=1)
        assert ws_ask(ws, {"type": "reset", "data": {"seed": 3, "difficulty": "easy"}})["type"] == "observation"
        assert ok(ws_ask(ws, query("SELECT 1")))  # the episode's tables are in a worker: the runaway alone runs
        ws.send(json.dumps(query(SLOW)))
        ws.send(" " * (65 * 1024) + json.dumps(query("SELECT 1")))
        time.sleep(0.3)  # the runaway is running
        ws.close()
        time.sleep(1.5)  # stopped within STOP_WAIT_S, its worker killed and started again at worst
        assert cpu_over(pid) < QUIET_CPU_S, "a statement still runs after its client left"


def test_an_http_tool_call_whose_client_hangs_up_stops_its_statement(server: tuple[str, int]) -> None:
    """A runaway over HTTP MCP `tools/call`, its client gone 0.3 s later: it used to run to its limit."""
    url, pid = server
    wait_quiet(pid)
    address = "127.0.4.1"
    with httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=60) as client:
        created = client.post(f"{url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "openenv/session/create"})
        session_id = created.json()["result"]["session_id"]
        sock = socket.create_connection(
            ("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=60, source_address=(address, 0)
        )
        with connect(
            url.replace("http", "ws", 1) + f"/ws?session_id={session_id}", sock=sock, open_timeout=60
        ) as attached:
            assert (
                ws_ask(attached, {"type": "reset", "data": {"seed": 3, "difficulty": "easy"}})["type"] == "observation"
            )
            assert ok(ws_ask(attached, query("SELECT 1")))  # as above
        call = {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "query", "arguments": {"sql": SLOW}, "session_id": session_id},
        }
        for _ in range(3):
            with pytest.raises(httpx.TimeoutException):
                client.post(f"{url}/mcp", json=call, timeout=0.3)
            time.sleep(1.5)  # as above
            assert cpu_over(pid) < QUIET_CPU_S, "a statement still runs after its client hung up"
        answered = client.post(
            f"{url}/mcp", json={**call, "params": {**call["params"], "arguments": {"sql": "SELECT 1 AS x"}}}
        )
        assert answered.json()["result"]["is_error"] is False, answered.text
