"""A public Space that strangers share, attacked as a hostile visitor would, against live servers: the /web page
(each visitor their own episode, nothing broadcast, uploads refused, each tab's events its own), the cost of a
message (structure bounded before parsing, over /ws, the WebSocket /mcp, POST /mcp, /step and /reset, however the
server is started) and admission on a full server (places held without work come back, and the hint is true).

Clients are told apart by their loopback source address. Nothing here measures time: the victim's latency under
these attacks is lab/speed/attack_latency.py's."""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ROOT, running_server, serving
from reliability_support import INTERNALS
from session_helpers import (
    MIB,
    ask,
    hold,
    http_from,
    inherited_environment,
    observation,
    open_session,
    refusal,
    ws_from,
)
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection

from metric_tracker_rl.server_process import free_port

pytestmark = pytest.mark.slow  # starts server processes

RESET = {"type": "reset", "data": {"task_id": "easy_two_spikes"}}
CHEAP_QUERY = {"type": "step", "data": {"analysis_method": "query", "analysis_args": {"sql": "SELECT 1 AS one"}}}
FULL_IDLE_S = 3
# A dense frame: about 60,000 tiny objects, well under the 1 MiB cap.
DENSE_ROWS = [{"d": 0}] * 60_000
DENSE_STEP = json.dumps({"type": "step", "data": {"classifications": DENSE_ROWS}})
DENSE_BODIES = {
    "/step": {"action": {"classifications": DENSE_ROWS}},
    "/reset": {"seed": 1, "x": DENSE_ROWS},
    "/mcp": {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "query", "arguments": {"rows": DENSE_ROWS}},
    },
}


def refused_unparsed(reply: dict[str, Any], says: str = "too many JSON values") -> None:
    assert reply["type"] == "error" and reply["data"]["code"] == "INVALID_JSON", reply
    assert says in reply["data"]["message"] and not INTERNALS.search(reply["data"]["message"]), reply


def assert_serves(url: str, source: str = "127.0.0.1") -> None:
    """Another client is answered: /health, and a reset and a cheap query on a session of its own."""
    with http_from(url, source) as http:
        assert http.get("/health").status_code == 200
    with ws_from(url, source) as ws:
        assert observation(ask(ws, RESET))["status"] == "ready"
        assert observation(ask(ws, CHEAP_QUERY))["status"] == "ok"


@pytest.fixture(scope="module")
def gradio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gradio")


@pytest.fixture(scope="module")
def space(gradio_dir: Path) -> Iterator[str]:
    """The image's defaults that matter here: the debugger on, a per-client cap, a small SQL pool."""
    env = {
        "ENABLE_WEB_INTERFACE": "true",
        "MAX_SESSIONS_PER_CLIENT": "3",
        "SQL_WORKERS": "2",
        "GRADIO_TEMP_DIR": str(gradio_dir),
    }
    with running_server(extra_env=env) as url:
        yield url


@pytest.fixture(scope="module")
def plain_uvicorn() -> Iterator[str]:
    """`uvicorn server.app:app`, as openenv.yaml's `app` starts it: no option of `main` applies."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "server.app:app", "--host", "127.0.0.1", "--port", str(port)]
    with serving(command, port, {**inherited_environment(), "ENABLE_WEB_INTERFACE": "false"}) as url:
        yield url


@pytest.fixture(scope="module")
def full_server() -> Iterator[str]:
    env = {"MAX_CONCURRENT_ENVS": "4", "MAX_SESSIONS_PER_CLIENT": "2", "FULL_SERVER_IDLE_S": str(FULL_IDLE_S)}
    with running_server(extra_env=env) as url:
        yield url


# --- /web: each visitor their own episode -----------------------------------------------------------------------


def test_the_shared_web_episode_routes_hold_nothing(space: str) -> None:
    """A's /web/reset, B's /web/reset, A's /web/step and anyone's /web/state: none reaches an environment."""
    with http_from(space, "127.0.0.2") as a, http_from(space, "127.0.0.3") as b:
        replies = [
            a.post("/web/reset", json={"task_id": "easy_two_spikes"}),
            b.post("/web/reset", json={"difficulty": "deep"}),
            a.post("/web/step", json={"action": {"classifications": []}}),
            b.get("/web/state"),
            a.get("/web/metadata"),
        ]
    for reply in replies:
        assert reply.status_code == 404, reply.text
        assert "observation" not in reply.text and "episode_id" not in reply.text


@pytest.mark.parametrize("path", ["/ws/ui", "/web/ws/ui"])
def test_there_is_no_broadcast_socket(space: str, path: str) -> None:
    with pytest.raises((InvalidStatus, ConnectionClosed)), ws_from(space, "127.0.0.4", path) as listener:
        listener.recv(timeout=30)


@pytest.mark.parametrize(
    "body",
    [
        '{"action": "x"}',
        "null",
        '{"action": {"classifications": [{"x": 1}]}}',
        '{"action": {"classifications": "all"}}',
        "[]",
        '"x"',
        "{",
    ],
)
def test_malformed_bodies_get_a_4xx_on_every_route(space: str, body: str) -> None:
    with http_from(space) as http:
        for path in ("/web/step", "/web/reset", "/step", "/reset", "/mcp"):
            reply = http.post(path, content=body, headers={"content-type": "application/json"})
            assert reply.status_code < 500, (path, reply.status_code, reply.text)
            assert not INTERNALS.search(reply.text), reply.text
            if path.startswith("/web/") or reply.status_code >= 400:
                assert 400 <= reply.status_code < 500 and reply.json(), (path, reply.text)


def test_uploads_are_refused_and_nothing_is_stored(space: str, gradio_dir: Path) -> None:
    before = sorted(gradio_dir.rglob("*"))
    with http_from(space, "127.0.0.5") as http:
        for index in range(20):
            files = {"files": (f"f{index}.bin", b"\0" * (900 * 1024), "application/octet-stream")}
            for path in ("/web/gradio_api/upload", "/web/upload"):
                reply = http.post(path, files=files)
                assert reply.status_code == 403 and "uploads are off" in reply.text, reply.text
    assert sorted(gradio_dir.rglob("*")) == before


def test_each_tab_has_its_own_episode_and_its_own_turns(space: str) -> None:
    """One tab queues 15 slow tool runs at once: one runs, the others are told at once that the tab is busy or
    refused at once (a tab holds a few events queued or unread); another tab's episode and cheap query are its own
    and are answered."""
    gradio_client = pytest.importorskip("gradio_client", reason="needs gradio_client, which gradio installs (uv sync)")
    tabs = [
        gradio_client.Client(f"{space}/web/", verbose=False, analytics_enabled=False, download_files=False)
        for _ in range(2)
    ]
    form = ("easy_two_spikes", "", "(default)", "(default)", "", "", "app_opens")
    first = tabs[0].predict(*form, api_name="/do_reset")[0]
    second = tabs[1].predict("(default)", "7", "(default)", "frontier", "", "", "app_opens", api_name="/do_reset")[0]
    # Both resets ready: a reset whose charts could not be read keeps its episode lines but leaves the pickers empty.
    assert first.startswith("**ready**") and "task_id=easy_two_spikes" in first, first
    assert second.startswith("**ready**") and "difficulty=frontier" in second, second
    slow = json.dumps({"sql": "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r"})
    jobs = [tabs[0].submit("query", slow, api_name="/run_tool") for _ in range(15)]
    cheap = tabs[1].predict("query", json.dumps({"sql": "SELECT 1 AS one"}), api_name="/run_tool")
    assert cheap[0].startswith("**ok**") and "difficulty=frontier" in cheap[0], cheap[0]
    statuses = [outcome_of(job) for job in jobs]
    busy = [status for status in statuses if "still busy" in status or status == REFUSED]
    assert len(busy) >= 14 - 1 and len(statuses) - len(busy) >= 1, statuses  # one ran (two if one ended first)
    statuses = [status for status in statuses if status != REFUSED]
    assert all("task_id=easy_two_spikes" in status for status in statuses)
    for tab in tabs:  # their heartbeats end, so the page closes their sessions (a refused job's error holds a tab)
        tab.close()
    config = httpx.get(f"{space}/web/config", timeout=60).json()
    assert all(dependency.get("concurrency_limit") is None for dependency in config["dependencies"])


REFUSED = "refused: the tab holds its most events"


def outcome_of(job: Any) -> str:
    """A queued event's status line, or REFUSED when the page refused to queue it."""
    from gradio_client.utils import QueueError

    try:
        return str(job.result()[0])
    except QueueError:
        return REFUSED


@pytest.fixture
def late_release_space(gradio_dir: Path) -> Iterator[str]:
    """The Space's settings on a server that gives a closed session's place back a moment after its client saw
    the socket close, as a busy server does (tests/late_release_server.py)."""
    port = free_port()
    env = {
        **inherited_environment(),
        "ENABLE_WEB_INTERFACE": "true",
        "MAX_SESSIONS_PER_CLIENT": "3",
        "SQL_WORKERS": "2",
        "GRADIO_TEMP_DIR": str(gradio_dir),
    }
    with serving([sys.executable, str(ROOT / "tests" / "late_release_server.py"), str(port)], port, env) as url:
        yield url


def test_a_reset_needs_one_place_beside_the_episode_however_late_places_come_back(late_release_space: str) -> None:
    """A visitor with one place left beside their other tab's episode: a tab's reset holds its episode and at
    most one read-only session at a time (charts and cuboid values read in the same one), so it is ready, and its
    tool picker offers the tools, even on a server that frees a closed session's place late."""
    gradio_client = pytest.importorskip("gradio_client", reason="needs gradio_client, which gradio installs (uv sync)")
    with contextlib.ExitStack() as stack:
        hold(stack, late_release_space, "127.0.0.1", 1)  # the visitor's other tab's episode
        tab = gradio_client.Client(
            f"{late_release_space}/web/", verbose=False, analytics_enabled=False, download_files=False
        )
        status = tab.predict("(default)", "7", "(default)", "frontier", "", "", "app_opens", api_name="/do_reset")[0]
        assert status.startswith("**ready**") and "difficulty=frontier" in status, status
        cheap = tab.predict("query", json.dumps({"sql": "SELECT 1 AS one"}), api_name="/run_tool")
        assert cheap[0].startswith("**ok**"), cheap[0]


def test_a_tabs_sessions_count_against_its_address(space: str) -> None:
    """The debugger's episode is a /ws session of the visitor's address: at the per-client cap, the visitor's tab
    cannot open another (and its SQL takes that address's fair turns)."""
    gradio_client = pytest.importorskip("gradio_client", reason="needs gradio_client, which gradio installs (uv sync)")
    with contextlib.ExitStack() as stack:
        hold(stack, space, "127.0.0.1", 3)
        tab = gradio_client.Client(f"{space}/web/", verbose=False, analytics_enabled=False, download_files=False)
        status = tab.predict(
            "easy_two_spikes", "", "(default)", "(default)", "", "", "app_opens", api_name="/do_reset"
        )[0]
        assert status.startswith("**error**") and "CAPACITY_REACHED" in status, status
    assert_serves(space, "127.0.0.6")


def test_gradio_queue_abuse_gets_4xx(space: str) -> None:
    with http_from(space, "127.0.0.7") as http:
        for body in (
            "{",
            "[]",
            '{"fn_index": 10000, "data": [], "session_hash": "x"}',
            '{"fn_index": "x", "data": null}',
            json.dumps({"data": [{}] * 60_000, "fn_index": 0}),
        ):
            reply = http.post("/web/gradio_api/queue/join", content=body, headers={"content-type": "application/json"})
            assert 400 <= reply.status_code < 500, (body[:40], reply.status_code, reply.text[:200])


def test_a_socket_that_never_reads_delays_no_one(space: str) -> None:
    """30 steps with large replies sent and never read: the server's writes to it back up, nobody else's do."""
    big = {
        "type": "step",
        "data": {"analysis_method": "query", "analysis_args": {"sql": "SELECT * FROM daily", "limit": 200}},
    }
    with ws_from(space, "127.0.0.8") as silent:
        silent.send(json.dumps(RESET))
        for _ in range(30):
            silent.send(json.dumps(big))
        assert_serves(space, "127.0.0.9")
        assert_serves(space, "127.0.0.9")


# --- a message's cost ---------------------------------------------------------------------------------------------


def test_element_dense_frames_are_refused_unparsed_and_the_session_survives(space: str) -> None:
    with ws_from(space, "127.0.0.10") as ws:
        observation(ask(ws, RESET))
        for _ in range(3):
            refused_unparsed(ask(ws, DENSE_STEP))
        assert observation(ask(ws, CHEAP_QUERY))["status"] == "ok"
    with ws_from(space, "127.0.0.10", "/mcp") as mcp:
        reply = ask(mcp, json.dumps(DENSE_BODIES["/mcp"]))
        assert "too many JSON values" in json.dumps(reply), reply


@pytest.mark.parametrize("path", sorted(DENSE_BODIES))
def test_element_dense_bodies_get_a_413(space: str, path: str) -> None:
    with http_from(space, "127.0.0.11") as http:
        reply = http.post(path, json=DENSE_BODIES[path])
        assert reply.status_code == 413 and "too many JSON values" in reply.json()["detail"], reply.text
        batch = http.post("/mcp", json=[{"jsonrpc": "2.0", "id": i, "method": "tools/list"} for i in range(9000)])
        assert batch.status_code == 413, batch.text


@pytest.mark.parametrize("path", ["/mcp", "/step", "/reset"])
def test_deeply_nested_bodies_and_long_numbers_get_a_4xx(space: str, path: str) -> None:
    with http_from(space, "127.0.0.12") as http:
        for depth, status, says in ((4_000, 400, "nests too deeply"), (100_000, 413, "too many JSON values")):
            body = '{"x": ' + "[" * depth + "]" * depth + "}"
            reply = http.post(path, content=body, headers={"content-type": "application/json"})
            assert reply.status_code == status and says in reply.json()["detail"], reply.text
        reply = http.post(path, content='{"seed": ' + "9" * 5_000 + "}", headers={"content-type": "application/json"})
        assert reply.status_code == 400 and "digits" in reply.json()["detail"], reply.text


def test_strange_frames_get_errors_and_cost_no_one_else(space: str) -> None:
    """Binary megabytes, a megabyte of spaces, a 500,000-digit number, a string of 400,000 commas (text, not
    structure: the SQL tool answers it)."""
    commas = {"type": "step", "data": {"analysis_method": "query", "analysis_args": {"sql": "," * 400_000}}}
    with ws_from(space, "127.0.0.13") as ws:
        observation(ask(ws, RESET))
        for _ in range(5):
            assert ask(ws, b"\0" * (900 * 1024))["type"] == "error"
        assert ask(ws, " " * (1000 * 1024))["type"] == "error"
        refused_unparsed(ask(ws, '{"type": "reset", "data": {"seed": ' + "9" * 500_000 + "}}"), "digits")
        reply = ask(ws, commas)
        assert reply["type"] == "observation" and observation(reply)["status"] == "error", reply
        assert observation(ask(ws, CHEAP_QUERY))["status"] == "ok"
    assert_serves(space, "127.0.0.14")


def test_a_flood_from_eight_sockets_of_one_address_is_answered_and_others_are_served(space: str) -> None:
    """Each flooding socket gets an error for each frame (however long its address's budget makes it wait), and
    a client at another address is served meanwhile."""
    errors: list[int] = []

    def flood() -> None:
        with ws_from(space, "127.0.0.15", "/mcp") as ws:
            refusals = 0
            for _ in range(5):
                refusals += "too many JSON values" in json.dumps(ask(ws, json.dumps(DENSE_BODIES["/mcp"])))
            errors.append(refusals)

    def post() -> None:
        with http_from(space, "127.0.0.15") as http:
            errors.append(http.post("/mcp", json=DENSE_BODIES["/mcp"]).status_code)

    floods = [threading.Thread(target=flood) for _ in range(3)]
    bodies = [threading.Thread(target=post) for _ in range(5)]
    for thread in [*floods, *bodies]:
        thread.start()
    assert_serves(space, "127.0.0.16")
    for thread in [*floods, *bodies]:
        thread.join(timeout=300)
    assert sorted(errors) == [5, 5, 5, *[413] * 5]


def test_plain_uvicorn_applies_the_same_limits(plain_uvicorn: str) -> None:
    with ws_from(plain_uvicorn, "127.0.0.17") as ws:
        observation(ask(ws, RESET))
        refused_unparsed(ask(ws, DENSE_STEP))
        padded = {"type": "step", "data": {"analysis_method": "query", "analysis_args": {"p": "x" * 2 * MIB}}}
        ws.send(json.dumps(padded))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=60)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    with http_from(plain_uvicorn, "127.0.0.17") as http:
        assert http.post("/mcp", content=b"{" + b" " * 2 * MIB + b"}").status_code == 413
        assert http.post("/step", json=DENSE_BODIES["/step"]).status_code == 413
    assert_serves(plain_uvicorn, "127.0.0.18")


def test_a_large_report_within_the_limits_is_still_graded(space: str) -> None:
    """The limits leave room for what clients send: a full 200-row report on every transport is read."""
    row = {
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
    rows = [{**row, "delta_value": float(i)} for i in range(200)]
    with ws_from(space, "127.0.0.19") as ws:
        observation(ask(ws, RESET))
        graded = observation(ask(ws, {"type": "step", "data": {"classifications": rows}}))  # read, then judged
        assert "invalid row" in graded["message"] and graded["submissions_remaining"] == 1, graded


# --- admission on a full server -------------------------------------------------------------------------------


def keep_working(ws: ClientConnection, stop: threading.Event, answers: list[Any]) -> threading.Thread:
    """A thread that sends `ws` a cheap query every 0.3 s until `stop`, recording each status (or the error that
    ended it) in `answers`. Each session works on its own thread, so no answer waits on another session's."""

    def work() -> None:
        try:
            while not stop.is_set():
                answers.append(observation(ask(ws, CHEAP_QUERY))["status"])
                stop.wait(0.3)
        except Exception as error:  # reported by the test, not lost in a thread
            answers.append(error)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def test_places_held_without_work_come_back_when_the_hint_says(full_server: str) -> None:
    """Four addresses hold a place each and keep their sockets alive with state requests: a fifth address is told
    to retry in seconds (not after the 900 s silence clock), and is served when it does. (An address holding more
    places than the newcomer would give one up at once: tests/test_full_server_fairness.py.)"""
    with contextlib.ExitStack() as stack:
        sybils = [ws for host in (2, 3, 24, 25) for ws in hold(stack, full_server, f"127.0.0.{host}", 1)]
        with open_session(full_server, "127.0.0.4") as newcomer:
            refused = refusal(newcomer)
        assert refused is not None and refused["data"]["code"] == "CAPACITY_REACHED", refused
        hint = refused["data"]["retry_after_s"]
        assert hint <= FULL_IDLE_S + 1, refused
        deadline = time.monotonic() + hint
        notices = []
        for ws in sybils:  # a state request is no work on a full server
            with contextlib.suppress(ConnectionClosed):
                ws.send(json.dumps({"type": "state"}))
                json.loads(ws.recv(timeout=30))
        while time.monotonic() < deadline:
            time.sleep(0.1)
        for ws in sybils:
            with contextlib.suppress(ConnectionClosed, TimeoutError):
                notices.append(json.loads(ws.recv(timeout=30)))
        with open_session(full_server, "127.0.0.4") as retry:
            assert refusal(retry) is None
        assert any("the server is full" in notice["data"]["message"] for notice in notices), notices


def test_a_session_that_works_keeps_its_place_on_a_full_server(full_server: str) -> None:
    with contextlib.ExitStack() as stack:
        stop = threading.Event()
        answers: list[Any] = []
        thread = keep_working(hold(stack, full_server, "127.0.0.5", 1)[0], stop, answers)
        hold(stack, full_server, "127.0.0.6", 2)
        hold(stack, full_server, "127.0.0.7", 1)
        stop.wait(2 * FULL_IDLE_S + 1)  # the server is full: an idle place would be closed by now
        stop.set()
        thread.join(timeout=150)
        assert answers and set(answers) == {"ok"}, [answer for answer in answers if answer != "ok"]


def test_http_sessions_held_without_work_come_back_too(full_server: str) -> None:
    created = []
    with http_from(full_server, "127.0.0.8") as a, http_from(full_server, "127.0.0.9") as b:
        deadline = time.monotonic() + 30  # the places of sessions closed just before are freed asynchronously
        for http in (a, a, b, b):
            reply = http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "openenv/session/create"}).json()
            while "result" not in reply and time.monotonic() < deadline:
                time.sleep(0.2)
                reply = http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "openenv/session/create"}).json()
            assert "result" in reply, reply
            created.append(reply["result"]["session_id"])
        for http, session_id in zip((a, a, b, b), created, strict=True):  # used: a reset, then nothing
            with ws_from(full_server, "127.0.0.8" if http is a else "127.0.0.9", f"/ws?session_id={session_id}") as ws:
                observation(ask(ws, RESET))
    with contextlib.ExitStack() as stack:
        assert len(hold(stack, full_server, "127.0.0.10", 2)) == 2  # within RELEASE_WAIT_S
    for source, session_id in zip(("127.0.0.8", "127.0.0.8", "127.0.0.9", "127.0.0.9"), created, strict=True):
        with http_from(full_server, source) as http:  # the sessions not reaped above go: the server is shared
            http.post(
                "/mcp",
                json={
                    "jsonrpc": "2.0",
                    "id": 2,
                    "method": "openenv/session/close",
                    "params": {"session_id": session_id},
                },
            )


def test_a_server_that_is_not_full_keeps_idle_sessions(full_server: str) -> None:
    with contextlib.ExitStack() as stack:
        idle = hold(stack, full_server, "127.0.0.11", 1)[0]
        time.sleep(2 * FULL_IDLE_S)
        assert observation(ask(idle, CHEAP_QUERY))["status"] == "ok"


def test_a_client_closed_for_idling_cannot_take_the_place_back(full_server: str) -> None:
    """Three sessions work; a fourth only holds its place. When it is closed, its client reconnecting is refused
    (the place is kept for a waiting client), and a newcomer gets it. Each worker starts working as soon as it holds
    its place: opening the next may wait for the places of an earlier test's sessions, on a full server."""
    with contextlib.ExitStack() as stack:
        stop = threading.Event()
        answers: list[Any] = []
        threads = [
            keep_working(hold(stack, full_server, source, 1)[0], stop, answers)
            for source in ("127.0.0.20", "127.0.0.20", "127.0.0.21")
        ]
        idler = hold(stack, full_server, "127.0.0.22", 1)[0]
        try:
            notice = json.loads(idler.recv(timeout=FULL_IDLE_S + 30))
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=150)
        assert "the server is full" in notice["data"]["message"], notice
        assert answers and set(answers) == {"ok"}, [answer for answer in answers if answer != "ok"]
        with open_session(full_server, "127.0.0.22") as again:
            refused = refusal(again)
        assert refused is not None and "its place goes to them" in refused["data"]["message"], refused
        assert 1 <= refused["data"]["retry_after_s"] <= FULL_IDLE_S + 1
        with open_session(full_server, "127.0.0.23") as newcomer:
            assert refusal(newcomer) is None
