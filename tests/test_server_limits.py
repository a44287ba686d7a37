"""What a stranger's requests may cost, against a live server where it matters: an IPv6 /64 is one client (for the
session cap, the parse budget and the SQL workers' turns), no input gets a 5xx or names an internal function,
resets are metered, and the full server's places go to newcomers whatever the incumbents do.

Clients are loopback addresses; IPv6 clients are named by X-Forwarded-For from loopback (a trusted proxy), as a
Space's proxy names its visitors."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from conftest import running_server
from reliability_support import INTERNALS
from session_helpers import open_session, refusal

from metric_tracker_rl.serving import client_address

PER_CLIENT = 3


# --- an IPv6 /64 is one client --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "group"),
    [
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("2001:DB8:1:3::1", "2001:db8:1:3::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        ("::ffff:203.0.113.9", "203.0.113.9"),
        ("203.0.113.9", "203.0.113.9"),
        ("unknown", "unknown"),
    ],
)
def test_addresses_count_as_their_group(host: str, group: str) -> None:
    assert client_address.address_group(host) == group
    assert client_address.client_of({"client": (host, 1234)}) == group


def test_every_limit_keys_on_the_group() -> None:
    """The parse budget and the SQL workers' turns take the client from `client_of`, the session cap too."""
    import inspect

    from metric_tracker_rl.serving import client_address, hardening, sessions

    for module in (hardening, sessions, client_address):
        source = inspect.getsource(module)
        assert 'scope.get("client")' not in source.replace("def client_of", "") or module is client_address
        assert "client_of(scope)" in source


@pytest.fixture(scope="module")
def capped_server() -> Iterator[str]:
    with running_server(
        extra_env={"MAX_SESSIONS_PER_CLIENT": str(PER_CLIENT), "ENABLE_WEB_INTERFACE": "false", "SQL_WORKERS": "2"}
    ) as url:
        yield url


@pytest.mark.slow
def test_the_session_cap_counts_an_ipv6_64_as_one_client(capped_server: str) -> None:
    with contextlib.ExitStack() as stack:
        for host in range(1, PER_CLIENT + 1):
            ws = stack.enter_context(
                open_session(capped_server, "127.0.0.1", {"X-Forwarded-For": f"2001:db8:59:1::{host}"})
            )
            assert refusal(ws) is None
        another = stack.enter_context(
            open_session(capped_server, "127.0.0.1", {"X-Forwarded-For": "2001:db8:59:1:ffff::9"})
        )
        refused = refusal(another)
        assert refused is not None and refused["data"]["code"] == "CAPACITY_REACHED", refused
        neighbour = stack.enter_context(
            open_session(capped_server, "127.0.0.1", {"X-Forwarded-For": "2001:db8:59:2::1"})
        )
        assert refusal(neighbour) is None


# --- no input gets a 5xx or names an internal function -----------------------------------------------------------

UNSERIALISABLE_ECHOES = [
    '{"seed": NaN}',
    '{"seed": 1e999}',
    '{"seed": -Infinity}',
    '{"seed": "\\ud800"}',
    '{"seed": [NaN, {"\\udfff": 1e999}]}',
    '{"task_id": "\\ud800"}',
    '{"seed": "\xff\xfe"}',
]


def test_a_client_cannot_pass_the_servers_secret_argument() -> None:
    from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment

    observation = MetricTrackerRlEnvironment(held_out_secret="s").reset(secret="")
    assert observation.status == "error" and "unknown reset argument(s) secret" in observation.message
    assert "resolve_reset" not in observation.message and "()" not in observation.message


def test_echoed_input_is_made_json_safe() -> None:
    from metric_tracker_rl.serving.task_api import json_safe

    echoed = json_safe({"input": [float("nan"), float("inf"), "\ud800", {"\udfff": -float("inf")}, b"\xff"]})
    json.dumps(echoed, allow_nan=False).encode("utf-8")  # what a response does with it: no error


@pytest.mark.slow
def test_no_input_gets_a_5xx(capped_server: str) -> None:
    bodies = [
        body.encode("utf-8", "surrogatepass") if "\xff" not in body else body.encode("latin-1")
        for body in UNSERIALISABLE_ECHOES
    ]
    with httpx.Client(base_url=capped_server, timeout=60) as http:
        for body in bodies:
            for path, wrapped in (
                ("/reset", body),
                ("/step", b'{"action": {"analysis_method": ' + body + b"}}"),
                ("/step", b'{"action": ' + body + b"}"),
            ):
                reply = http.post(path, content=wrapped, headers={"content-type": "application/json"})
                assert reply.status_code < 500, (path, wrapped, reply.status_code, reply.text[:200])
                assert not INTERNALS.search(reply.text), reply.text[:300]
        reply = http.post("/reset", json={"secret": ""})
        assert reply.status_code == 200 and "unknown reset argument(s) secret" in reply.text, reply.text[:300]
        for session_id in ([1], {"a": 1}, 1, 1.5, True):
            for method in ("openenv/session/close", "tools/call"):
                reply = http.post(
                    "/mcp",
                    json={
                        "jsonrpc": "2.0",
                        "id": 1,
                        "method": method,
                        "params": {"session_id": session_id, "name": "query"},
                    },
                )
                assert reply.status_code == 200 and "error" in reply.json(), (session_id, reply.text[:200])


@pytest.mark.slow
def test_a_reset_with_the_servers_argument_over_ws_names_no_function(capped_server: str) -> None:
    with open_session(capped_server, "127.0.0.43") as ws:
        ws.send(json.dumps({"type": "reset", "data": {"secret": ""}}))
        reply = json.loads(ws.recv(timeout=60))
    text = json.dumps(reply)
    assert "unknown reset argument(s) secret" in text and "resolve_reset" not in text and "()" not in text, text


# --- resets are metered ------------------------------------------------------------------------------------------


def test_a_client_resetting_many_sessions_holds_up_anothers_reset_by_one_build_at_most() -> None:
    """Eight resets of one address asked at once, then one of another, both addresses the builds served before
    (never-seen ones take turns as one client: tests/test_stranger_builds.py): the other's is the second episode
    built (in turn), not the ninth; and only one episode is built at a time, off the event loop."""
    from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
    from metric_tracker_rl.serving.reset_turns import reset_turns
    from metric_tracker_rl.sql import pool as sql_pool
    from metric_tracker_rl.sql.known_clients import KNOWN_AFTER_S

    finished: list[str] = []
    building = {"now": 0, "most": 0}

    class Counted(MetricTrackerRlEnvironment):
        def reset(self, *args: object, **kwargs: object) -> object:  # type: ignore[override]
            building["now"] += 1
            building["most"] = max(building["most"], building["now"])
            try:
                return super().reset(*args, **kwargs)  # type: ignore[arg-type]
            finally:
                building["now"] -= 1

    async def reset_as(client: str, name: str) -> None:
        sql_pool.CLIENT.set(client)
        observation = await Counted().reset_async(task_id="easy_two_spikes")
        assert observation.status == "ready"
        finished.append(name)

    async def scenario() -> None:
        for client in ("127.0.0.2", "127.0.0.3"):
            reset_turns().clients.served(client, time.monotonic() - KNOWN_AFTER_S)
        flood = [asyncio.create_task(reset_as("127.0.0.2", f"a{index}")) for index in range(8)]
        await asyncio.sleep(0)
        victim = asyncio.create_task(reset_as("127.0.0.3", "victim"))
        await asyncio.gather(*flood, victim)

    asyncio.run(scenario())
    assert finished.index("victim") <= 1, finished
    assert building["most"] == 1


# --- half-sent bodies are bounded and released -------------------------------------------------------------------


def half_sent(url: str, source: str, sent: int, declared: int = 1024 * 1024) -> socket.socket:
    """A POST /reset that declares `declared` bytes of body and sends `sent` of them, then nothing."""
    port = int(url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=60, source_address=(source, 0))
    sock.sendall(
        f"POST /reset HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {declared}\r\n\r\n".encode()
        + b" " * sent
    )
    return sock


def status_of(sock: socket.socket, timeout_s: float) -> int:
    sock.settimeout(timeout_s)
    return int(sock.recv(4096).split(b" ", 2)[1])


@pytest.mark.slow
def test_one_clients_unfinished_bodies_hold_a_bounded_amount_and_are_dropped_at_their_deadline(
    capped_server: str,
) -> None:
    from metric_tracker_rl.serving.hardening import BODY_DEADLINE_S, UNFINISHED_BYTES_PER_CLIENT

    part = 900 * 1024
    held = [half_sent(capped_server, "127.0.0.44", part) for _ in range(UNFINISHED_BYTES_PER_CLIENT // part)]
    try:
        time.sleep(1)  # what they sent has arrived
        over = half_sent(capped_server, "127.0.0.44", part)
        assert status_of(over, 30) == 413  # past the client's share: answered at once, its bytes dropped
        over.close()
        other = half_sent(capped_server, "127.0.0.45", part)  # another client's share is its own
        other.sendall(b" " * (1024 * 1024 - part))
        assert status_of(other, 30) == 422  # whole: read and answered (its body is no reset request)
        other.close()
        assert all(status_of(sock, BODY_DEADLINE_S + 30) == 408 for sock in held)  # not finished in time
    finally:
        for sock in held:
            sock.close()
