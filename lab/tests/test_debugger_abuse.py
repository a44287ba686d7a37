"""The /web debugger attacked as a script against a public Space would, over Gradio's own queue protocol, against live
servers: results never read, page loads refused by the per-client cap, one address's slow events, another
visitor's tab, heap addresses, held-out charts and a SIGTERM with a tab open.

Clients are told apart by their loopback source address. What the attacks cost in latency and memory is
lab/speed/debugger_attacks.py's; these check the bounds and releases themselves."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest

from lab.speed.debugger_attacks import RESET_FORM, Page, new_tab, process_counts
from lab.tests.helpers import ROOT, hold
from metric_tracker_rl import server_process

pytestmark = pytest.mark.slow  # starts server processes

SLOW_SQL = json.dumps({"sql": "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r"})
HEAP_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")
CHROMIUM = "/usr/bin/chromium"
DRAIN_S = 2
# From uvicorn's last line to the process's end: what is left to do then is to run the exit functions.
EXIT_AFTER_SERVING_S = 0.75


@contextlib.contextmanager
def debugger_server(log: IO[bytes] | None = None, **extra: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """A server with the debugger on, its output into `log` (a temporary file by default)."""
    port = server_process.free_port()
    env = {
        **os.environ,
        "ENABLE_WEB_INTERFACE": "true",
        "METRIC_TRACKER_DEBUG": "",
        "MAX_SESSIONS_PER_CLIENT": "3",
        "SQL_WORKERS": "2",
        "METRIC_TRACKER_DRAIN_S": str(DRAIN_S),
        **extra,
    }
    env.pop("METRIC_TRACKER_SELF_URL", None)
    command = [sys.executable, "-m", "server.app", "--host", "127.0.0.1", "--port", str(port)]
    with contextlib.ExitStack() as stack:
        output = log if log is not None else stack.enter_context(tempfile.TemporaryFile())
        process = stack.enter_context(server_process.serving(command, port, env, output, cwd=ROOT))
        yield f"http://127.0.0.1:{port}", process


@pytest.fixture(scope="module")
def space() -> Iterator[tuple[str, subprocess.Popen]]:
    with debugger_server() as served:
        yield served


def test_a_tabs_unread_results_are_bounded(space: tuple[str, subprocess.Popen]) -> None:
    """One tab joins 10 cheap events and never reads: a few are kept, the rest are refused at once."""
    page, tab = Page(space[0], "127.0.0.21"), new_tab()
    codes = [page.join("select_difficulty", ["hard"], tab).status_code for _ in range(10)]
    assert 1 <= codes.count(200) <= 4 and codes.count(503) == 10 - codes.count(200), codes
    assert page.results(tab)  # reading them frees the tab
    assert page.join("select_difficulty", ["hard"], tab).status_code == 200


def test_an_addresss_tabs_with_unread_results_are_bounded(space: tuple[str, subprocess.Popen]) -> None:
    page, other = Page(space[0], "127.0.0.22"), Page(space[0], "127.0.0.23")
    codes = [page.join("select_difficulty", ["hard"], new_tab()).status_code for _ in range(24)]
    assert codes.count(200) <= 16 and codes.count(503) >= 8, codes
    assert other.call("select_difficulty", ["hard"], new_tab()).get("success")


def test_refused_page_loads_release_their_threads_and_files(space: tuple[str, subprocess.Popen]) -> None:
    """An address at its cap loads the page 30 times: each load's reset is refused, and leaves nothing behind."""
    url, server = space
    page = Page(url, "127.0.0.24")
    with contextlib.ExitStack() as stack:
        hold(stack, url, "127.0.0.24", 3)
        before = process_counts(server.pid)
        for _ in range(30):
            status = page.call("do_reset", RESET_FORM, new_tab())["output"]["data"][1]
            assert "capacity" in status, status
        after = process_counts(server.pid)
    assert after["threads"] <= before["threads"] + 3 and after["fds"] <= before["fds"] + 6, (before, after)


def test_a_tab_belongs_to_its_address(space: tuple[str, subprocess.Popen]) -> None:
    """Another address that learns a tab's session hash can neither drive the tab nor read its results."""
    url = space[0]
    owner, stranger, tab = Page(url, "127.0.0.25"), Page(url, "127.0.0.26"), new_tab()
    assert owner.call("select_difficulty", ["hard"], tab).get("success")
    assert stranger.join("do_reset", RESET_FORM, tab).status_code == 503
    with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.26"), timeout=30) as http:
        assert http.get(f"{url}/web/gradio_api/queue/data", params={"session_hash": tab}).status_code == 403
        assert http.get(f"{url}/web/gradio_api/heartbeat/{tab}").status_code == 403
    assert owner.call("select_difficulty", ["hard"], tab).get("success")


def test_another_address_cannot_cancel_a_tabs_event(space: tuple[str, subprocess.Popen]) -> None:
    """A tab's running event is cancelled only from its own address: a stranger's /cancel naming it answers 403 and
    the event ends with its result."""
    url = space[0]
    owner, stranger, tab = Page(url, "127.0.0.28"), Page(url, "127.0.0.29"), new_tab()
    assert owner.call("do_reset", RESET_FORM, tab).get("success")
    joined = owner.join("run_tool", [None, "query", json.dumps({"sql": "SELECT 1 AS one"})], tab)
    assert joined.status_code == 200, joined.text
    cancel = {"session_hash": tab, "fn_index": owner.fn_ids["run_tool"], "event_id": joined.json()["event_id"]}
    assert stranger.http.post("/cancel", json=cancel).status_code == 403
    finished = owner.results(tab)[-1]
    assert finished.get("success") and "ok" in json.dumps(finished["output"]["data"]), finished
    assert owner.http.post("/cancel", json=cancel).status_code == 200  # its own address may


def test_no_heap_address_in_the_config_or_gradios_errors(space: tuple[str, subprocess.Popen]) -> None:
    url = space[0]
    assert not HEAP_ADDRESS.search(httpx.get(f"{url}/web/config", timeout=60).text)
    page = Page(url, "127.0.0.27")
    wrong_inputs = page.call("do_reset", RESET_FORM[1:], new_tab())  # one input short: gradio lists what it wanted
    assert not wrong_inputs.get("success") and "Wanted inputs" in wrong_inputs["output"]["error"], wrong_inputs
    assert not HEAP_ADDRESS.search(json.dumps(wrong_inputs)), wrong_inputs


def test_one_address_cannot_take_every_event_slot() -> None:
    """41 tabs of one address run slow queries at once (its SQL runs one statement at a time, so the others wait
    holding their events): another visitor's cheap event is answered before any of them ends."""
    with debugger_server(MAX_SESSIONS_PER_CLIENT="64") as (url, _):
        attacker = Page(url, "127.0.0.31")
        tabs = [new_tab() for _ in range(41)]
        for tab in tabs:
            attacker.call("do_reset", RESET_FORM, tab)
        ended: list[float] = []  # when each slow query that ran ended (a tab closed to make room runs none)

        def slow(tab: str) -> None:
            if attacker.join("run_tool", [None, "query", SLOW_SQL], tab).status_code == 200:
                status = attacker.results(tab)[-1]["output"]["data"][1]
                if "no episode" not in status:
                    ended.append(time.monotonic())

        # The most recent tabs first: a server that keeps only some of an address's tabs keeps those.
        threads = [threading.Thread(target=slow, args=(tab,), daemon=True) for tab in reversed(tabs)]
        for thread in threads:
            thread.start()
        time.sleep(0.5)  # every slow event is queued or running
        victim = Page(url, "127.0.0.32").call("select_difficulty", ["hard"], new_tab())
        answered = time.monotonic()
        for thread in threads:
            thread.join(timeout=300)
        assert victim.get("success"), victim
        assert ended and min(ended) > answered, "the victim waited for the attacker's events"


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing")
def test_a_server_with_a_tab_open_stops_promptly(tmp_path: Path) -> None:
    """SIGTERM with a tab open: the server drains, stops the page, and the process ends as soon as uvicorn is done
    (no teardown of the interpreter's heap after its last line)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs the browser group: uv sync --group browser")
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log, debugger_server(log) as (url, server), sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(f"{url}/web/")
        page.get_by_text("Episode ready", exact=False).first.wait_for(timeout=120_000)
        server.send_signal(signal.SIGTERM)
        try:
            finished_at = when_logged(log_path, "Finished server process", timeout_s=20)
            server.wait(timeout=20)
            ended_at = time.monotonic()
        finally:
            browser.close()
        assert server.returncode == 0
        assert ended_at - finished_at < EXIT_AFTER_SERVING_S, ended_at - finished_at


def when_logged(path: Path, line: str, timeout_s: float) -> float:
    """The monotonic time `line` first appears in the file at `path` (polled every 10 ms)."""
    deadline = time.monotonic() + timeout_s
    while line not in path.read_text(errors="replace"):
        assert time.monotonic() < deadline, f"{line!r} never logged"
        time.sleep(0.01)
    return time.monotonic()


def test_held_out_tabs_draw_no_charts_of_another_episode() -> None:
    """In held-out mode a read-only session would reset into another episode: the page says so instead of drawing
    that episode's charts, and its cuboid reads are refused."""
    with debugger_server(METRIC_TRACKER_SECRET="a test secret") as (url, _):
        page, tab = Page(url, "127.0.0.33"), new_tab()
        reset = page.call("do_reset", RESET_FORM, tab)["output"]["data"]
        assert reset[1].startswith("**ready**"), reset[1]
        assert "Held-out mode" in reset[2] and "<svg" not in json.dumps(reset), reset[2]
