"""A training run outlives the server: clients wait out a restart, and a stopping server drains its sessions."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import httpx
import pytest
from conftest import ROOT
from text_reader import read_observation
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.protocol import State
from websockets.sync.client import connect

from metric_tracker_rl.adapters.trl import URL_VAR, MetricTrackerToolEnv
from metric_tracker_rl.client import MetricTrackerRlEnv
from metric_tracker_rl.models import MetricTrackerRlAction
from metric_tracker_rl.reconnect import (
    RETRY_DEADLINE_VAR,
    ServerUnavailable,
    SessionLost,
    backoff_waits,
    reset_until_served,
)
from metric_tracker_rl.server_process import free_port, healthy, serving
from metric_tracker_rl.serving.lifecycle import GOING_AWAY, STOPPING_REASON, Lifecycle, _Session
from metric_tracker_rl.settings import ClientSettings, ServerSettings, SettingsError

pytestmark = pytest.mark.slow
DRAIN_VAR = "METRIC_TRACKER_DRAIN_S"


def server_command(port: int, workers: int = 1) -> list[str]:
    return [
        sys.executable,
        "-m",
        "server.app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-web",
        "--workers",
        str(workers),
    ]


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


# --- the retry policy, without a server --------------------------------------------------------------


def test_backoff_doubles_to_a_cap_with_jitter() -> None:
    waits = backoff_waits()
    first = [next(waits) for _ in range(12)]
    assert 0.25 <= first[0] <= 0.5 and all(0 < w <= 15.0 for w in first)
    assert max(first[-4:]) > 7.5  # reached the cap's half at least: the doubling went on
    assert len({round(w, 6) for w in first}) == len(first)  # jittered


def test_a_reset_gives_up_at_the_deadline_naming_the_url_and_the_error() -> None:
    clock = [0.0]
    calls: list[str] = []

    def refused() -> None:
        calls.append("reset")
        raise ConnectionError("Connect call failed ('127.0.0.1', 9)")

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    with pytest.raises(ServerUnavailable, match=r"http://127\.0\.0\.1:9 within 20 s .*Connect call failed"):
        reset_until_served(
            refused, lambda: None, "http://127.0.0.1:9", deadline_s=20, clock=lambda: clock[0], sleep=sleep
        )
    assert 3 <= len(calls) <= 8 and clock[0] <= 20


def test_a_mistake_is_not_retried() -> None:
    with pytest.raises(ValueError, match="difficulty"):
        reset_until_served(
            lambda: (_ for _ in ()).throw(ValueError("bad difficulty")),
            lambda: None,
            "u",
            deadline_s=60,
            sleep=lambda _: pytest.fail("a mistake must not wait"),
        )


@pytest.mark.parametrize("raw", ["soon", "-1"])
def test_bad_settings_are_clear_errors(raw: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(RETRY_DEADLINE_VAR, raw)
    with pytest.raises(SettingsError, match=RETRY_DEADLINE_VAR):
        ClientSettings.load()
    monkeypatch.setenv(DRAIN_VAR, raw)
    with pytest.raises(SettingsError, match=DRAIN_VAR):
        ServerSettings.load()


def test_a_drain_waits_for_the_step_in_flight_then_closes_with_going_away() -> None:
    sent: list[tuple[float, dict]] = []
    lifecycle = Lifecycle()

    async def run() -> float:
        async def send(message: dict) -> None:
            sent.append((time.monotonic(), message))

        busy, idle = _Session(send, busy=True), _Session(send)
        lifecycle.sessions.update({busy, idle})

        async def finish_step() -> float:
            await asyncio.sleep(0.3)
            busy.busy = False
            return time.monotonic()

        finished, _ = await asyncio.gather(finish_step(), lifecycle.drain(0.0, step_grace_s=5.0))
        return finished

    finished = asyncio.run(run())
    assert lifecycle.draining and not lifecycle.sessions
    assert len(sent) == 2 and all(at >= finished for at, _ in sent)
    assert all(m == {"type": "websocket.close", "code": GOING_AWAY, "reason": STOPPING_REASON} for _, m in sent)


def test_the_worker_side_imports_no_application_code() -> None:
    """A spawned worker unpickles metric_tracker_rl.serving.process before it can answer the supervisor's 5 s health
    check; if that import pulled in the application (OpenEnv, gradio: seconds), workers would be killed and
    respawned. Only the package's light `__init__` modules may come with it."""
    code = (
        "import sys, metric_tracker_rl.serving.process; print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('gradio', 'openenv', 'metric_tracker_rl') and m not in "
        "('metric_tracker_rl', 'metric_tracker_rl.serving', 'metric_tracker_rl.serving.process')))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stdout + result.stderr


# --- against real server processes -----------------------------------------------------------------------


def test_a_reset_waits_out_a_restart(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """The only server goes away and comes back 4 s later: a reset issued meanwhile waits, then starts the
    episode; the wait is written once per attempt."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    monkeypatch.setenv(URL_VAR, url)
    env_vars = {**os.environ, "ENABLE_WEB_INTERFACE": "false"}
    with tempfile.TemporaryFile() as log, serving(server_command(port), port, env_vars, log, cwd=ROOT):
        tool_env = MetricTrackerToolEnv()
        tool_env.reset(seed=1, difficulty="easy")
    assert not healthy(url, timeout_s=0.5)  # the server is down

    outcome: dict[str, object] = {}

    def reset_during_outage() -> None:
        started = time.monotonic()
        outcome["brief"] = tool_env.reset(seed=2, difficulty="medium")
        outcome["waited"] = time.monotonic() - started

    caplog.set_level(logging.WARNING, logger="metric_tracker_rl.reconnect")
    waiter = threading.Thread(target=reset_during_outage)
    waiter.start()
    time.sleep(4)
    with tempfile.TemporaryFile() as log, serving(server_command(port), port, env_vars, log, cwd=ROOT):
        waiter.join(timeout=120)
        assert not waiter.is_alive()
        brief = read_observation(str(outcome["brief"]))
        assert brief.config["seed"] == 2 and outcome["waited"] >= 4
        with tool_env:  # leaving closes its session
            assert read_observation(tool_env.task_overview()).status == "ok"  # the new session works
    waits = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    assert waits and all(url in line for line in waits)


def test_a_stopping_server_lets_a_training_rollout_finish_its_step_and_then_tells_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SIGTERM with a rollout open: its tool calls are served through the drain period, then one answers with an
    error text (never an exception into the rollout), and a reset with nothing to reach gives up at its deadline
    with the URL and the last error."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    monkeypatch.setenv(URL_VAR, url)
    monkeypatch.setenv(RETRY_DEADLINE_VAR, "2")
    env_vars = {**os.environ, "ENABLE_WEB_INTERFACE": "false", DRAIN_VAR: "3"}
    with tempfile.TemporaryFile() as log, serving(server_command(port), port, env_vars, log, cwd=ROOT) as process:
        assert status_of(f"{url}/ready") == 200
        rollout = MetricTrackerToolEnv()
        rollout.reset(seed=3, difficulty="easy")
        process.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        answers = []
        while time.monotonic() - stopped < 10:
            answers.append(rollout.get_annotations())
            if answers[-1].startswith("error:"):
                break
            time.sleep(0.2)
        assert read_observation(answers[0]).status == "ok"  # served during the drain
        assert answers[-1].startswith("error:") and "episode is over" in answers[-1]
        assert time.monotonic() - stopped >= 2.5
        assert process.wait(timeout=30) == 0
        with pytest.raises(ServerUnavailable, match=rf"127\.0\.0\.1:{port}.*last error"):
            rollout.reset(seed=4, difficulty="easy")


@pytest.mark.parametrize("workers", [1, 2])
def test_a_draining_server_serves_open_sessions_answers_503_on_ready_and_refuses_new_ones(workers: int) -> None:
    """During the drain period readiness fails and new sessions are refused (on /ws, /mcp and over HTTP), while an
    open session's episode goes on; at the end it is closed with 1001. With workers, the supervisor passes the
    stop to each of them."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env_vars = {**os.environ, "ENABLE_WEB_INTERFACE": "false", DRAIN_VAR: "6"}
    with (
        tempfile.TemporaryFile() as log,
        serving(server_command(port, workers), port, env_vars, log, cwd=ROOT) as process,
    ):
        ws_url = f"ws://127.0.0.1:{port}/ws"
        with connect(ws_url) as held:
            held.send('{"type": "reset", "data": {"seed": 4}}')
            held.recv(timeout=30)
            stopped = time.monotonic()
            process.send_signal(signal.SIGTERM)
            time.sleep(1.5)  # the supervisor looks at its signals every 0.5 s
            assert all(status_of(f"{url}/ready") == 503 for _ in range(4 * workers))
            assert status_of(f"{url}/health") == 200
            with pytest.raises(InvalidStatus) as refused:
                connect(ws_url)
            assert refused.value.response.status_code == 503
            assert b"reset" in refused.value.response.body
            with pytest.raises(InvalidStatus) as refused:  # an MCP client's session too
                connect(f"ws://127.0.0.1:{port}/mcp")
            assert refused.value.response.status_code == 503
            created = httpx.post(
                f"{url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "openenv/session/create"}, timeout=30
            )
            assert created.status_code == 503 and "stopping" in created.json()["error"]["message"]
            listed = httpx.post(f"{url}/mcp", json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, timeout=30)
            assert listed.status_code == 200 and listed.json()["result"]["tools"]  # other calls go on
            held.send('{"type": "step", "data": {"analysis_method": "get_annotations"}}')
            assert '"observation"' in held.recv(timeout=10)  # the open episode goes on
            with pytest.raises(ConnectionClosed) as closed:
                held.recv(timeout=30)
            assert closed.value.rcvd.code == GOING_AWAY and time.monotonic() - stopped >= 5.5
        assert process.wait(timeout=30) == 0


def test_a_step_after_the_episode_session_closed_says_what_happened_until_a_reset() -> None:
    """MetricTrackerRlEnv after its session was closed (here: idle past SESSION_TIMEOUT_S): a step is not sent to a
    new session (which has no episode, and whose error would advise HTTP users); it raises SessionLost naming what
    closed the session, until a reset starts a new episode, which then plays."""
    port = free_port()
    env_vars = {**os.environ, "ENABLE_WEB_INTERFACE": "false", "SESSION_TIMEOUT_S": "2"}
    action = MetricTrackerRlAction(analysis_method="get_annotations")
    with (
        tempfile.TemporaryFile() as log,
        serving(server_command(port), port, env_vars, log, cwd=ROOT),
        MetricTrackerRlEnv(base_url=f"http://127.0.0.1:{port}").sync() as client,
    ):
        client.reset(seed=1, difficulty="easy")
        assert client.step(action).observation.status == "ok"
        deadline = time.monotonic() + 60
        while client.async_client._ws.state is not State.CLOSED:  # the server closes the idle session
            assert time.monotonic() < deadline, "the idle session was never closed"
            time.sleep(0.1)
        opened = client.async_client.sessions_opened
        for _ in range(2):  # every step until the reset
            with pytest.raises(SessionLost) as lost:
                client.step(action)
            text = str(lost.value)
            assert "episode" in text and "reset()" in text and "HTTP" not in text, text
        assert "no message for 2 s (SESSION_TIMEOUT_S)" in text, text
        assert client.async_client.sessions_opened == opened  # nothing was sent to a new session
        brief = client.reset(seed=2, difficulty="easy").observation
        assert brief.status == "ready" and client.step(action).observation.status == "ok"
