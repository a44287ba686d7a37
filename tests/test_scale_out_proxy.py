"""Replicas behind a real load balancer: Debian's HAProxy, started on loopback with the shipped deploy/haproxy.cfg.

Sessions spread over the replicas, each on the replica that created it (its affinity cookie brings its socket
there), so a dropped connection comes back to its episode through the proxy and no session is left unattached;
killing one replica costs only the episodes it held, and every rollout finishes its next episode on the survivor;
with METRIC_TRACKER_SECRET shared, each replica serves held-out episodes, a fresh one at every reset. Behind a
balancer without affinity, the clients close the sessions their sockets could not reach and play on plain sockets.
A replica stopped gracefully (SIGTERM) keeps serving its open episodes through the proxy for its drain period
while new sessions go to the other one."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import ROOT
from text_reader import read_observation
from websockets.sync.client import ClientConnection, connect

from lab.speed.scale_out import haproxy_in_front
from metric_tracker_rl.adapters.trl import URL_VAR, MetricTrackerToolEnv
from metric_tracker_rl.compat.openenv import (
    SESSION_CLOSE_METHOD,
    SESSION_CREATE_METHOD,
    client_socket,
    created_session_id,
    is_capacity_error_body,
)
from metric_tracker_rl.reconnect import RETRY_DEADLINE_VAR
from metric_tracker_rl.server_process import free_port, serving
from metric_tracker_rl.view.tool_schemas import SUBMIT_REPORT

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("haproxy") is None,
        reason="HAProxy is not installed (apt-get install haproxy; .ci/run installs it)",
    ),
]

ROLLOUTS = 8
DRAIN_S = 60  # far longer than the test needs: the drain ends when its last session closes
STEPPING_PAST_DOWN_S = 4.0  # how long the episode goes on after HAProxy marked its replica down
STEP_PAUSE_S = 0.2  # a step every so often, as an agent thinking between calls (and within the step budget)
PER_CLIENT_CAP = 24  # the replicas' MAX_SESSIONS_PER_CLIENT where a test counts the places a client holds
SHIPPED_CONFIG = ROOT / "deploy" / "haproxy.cfg"


def replica_command(port: int) -> list[str]:
    return [sys.executable, "-m", "server.app", "--host", "127.0.0.1", "--port", str(port), "--no-web"]


def replica_rows(stats_url: str) -> dict[str, dict[str, str]]:
    """HAProxy's statistics row of each replica."""
    with urllib.request.urlopen(stats_url, timeout=5) as response:
        rows = csv.DictReader(io.StringIO(response.read().decode().lstrip("# ")))
        return {row["svname"]: row for row in rows if row["svname"].startswith("replica")}


def open_sessions(stats_url: str) -> dict[str, int]:
    """Open sessions per replica, from HAProxy's statistics."""
    return {name: int(row["scur"]) for name, row in replica_rows(stats_url).items()}


def places_held(port: int) -> int:
    """Places this host's client holds on the replica at `port`, every kind of session counted (attached or not):
    sessions are created on it until its per-client cap (PER_CLIENT_CAP) refuses one, then closed."""
    url, probes = f"http://127.0.0.1:{port}/mcp", []
    try:
        while len(probes) <= PER_CLIENT_CAP:
            answer = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": SESSION_CREATE_METHOD}).json()
            session_id = created_session_id(answer)
            if session_id is None:
                assert is_capacity_error_body(answer.get("error")), answer
                return PER_CLIENT_CAP - len(probes)
            probes.append(session_id)
        raise AssertionError("the per-client cap never refused a session")
    finally:
        for session_id in probes:
            httpx.post(
                url,
                json={"jsonrpc": "2.0", "id": 2, "method": SESSION_CLOSE_METHOD, "params": {"session_id": session_id}},
            )


def unattached_sessions(ports: list[int], stats_url: str) -> dict[str, int]:
    """Per replica, the places this client holds beyond its open sockets: sessions nothing is attached to."""
    sockets = open_sessions(stats_url)
    return {
        f"replica{index + 1}": places_held(port) - sockets[f"replica{index + 1}"] for index, port in enumerate(ports)
    }


def steps_left(answer: str) -> int:
    observation = read_observation(answer)
    assert observation.status == "ok", answer
    return observation.steps_remaining


def wait_until_both_up(stats_url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with urllib.request.urlopen(stats_url, timeout=5) as response:
            rows = list(csv.DictReader(io.StringIO(response.read().decode().lstrip("# "))))
        if all(row["status"] == "UP" for row in rows if row["svname"].startswith("replica")):
            return
        time.sleep(0.3)
    raise AssertionError("the replicas did not pass HAProxy's health checks")


@contextlib.contextmanager
def replicas_behind_haproxy(ports: list[int], env: dict[str, str]) -> Iterator[tuple[list[subprocess.Popen], str, str]]:
    """Replicas on `ports` and HAProxy in front of them, all up: (the replica processes, HAProxy's URL, its
    statistics URL); stopped on exit."""
    with contextlib.ExitStack() as stack:
        replicas = []
        for port in ports:
            log = stack.enter_context(tempfile.TemporaryFile())
            replicas.append(stack.enter_context(serving(replica_command(port), port, env, log, cwd=ROOT)))
        url, stats_url = stack.enter_context(haproxy_in_front(ports))
        wait_until_both_up(stats_url)
        yield replicas, url, stats_url


def test_sessions_spread_a_dead_replica_costs_only_its_episodes_and_held_out_resets_differ(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ports = [free_port(), free_port()]
    env = {
        **os.environ,
        "ENABLE_WEB_INTERFACE": "false",
        "METRIC_TRACKER_SECRET": "shared-by-every-replica",
        "MAX_SESSIONS_PER_CLIENT": str(PER_CLIENT_CAP),
    }
    with contextlib.ExitStack() as stack:
        replicas, url, stats_url = stack.enter_context(replicas_behind_haproxy(ports, env))

        # Every replica serves held-out episodes, a fresh one at every reset (the same seed gives another episode).
        shown = []
        for port in ports:
            monkeypatch.setenv(URL_VAR, f"http://127.0.0.1:{port}")
            with MetricTrackerToolEnv() as direct:
                shown.append((direct.reset(seed=77, difficulty="hard"), direct.list_suspicious_dates(limit=28)))
        assert shown[0][1] != shown[1][1]
        assert all(read_observation(reset).config["held_out"] is True for reset, _ in shown)

        # Rollouts through the proxy spread over both replicas.
        monkeypatch.setenv(URL_VAR, url)
        monkeypatch.setenv(RETRY_DEADLINE_VAR, "60")
        rollouts = [stack.enter_context(MetricTrackerToolEnv()) for _ in range(ROLLOUTS)]
        for index, rollout in enumerate(rollouts):
            rollout.reset(seed=100 + index, difficulty="medium")
        spread = open_sessions(stats_url)
        assert sum(spread.values()) == ROLLOUTS and min(spread.values()) >= ROLLOUTS // 2 - 1, spread

        # Each rollout's socket is attached to the session it created (its replica holds no other), so a dropped
        # connection comes back to its episode through the proxy: the call is answered, once.
        clients = [rollout._client.async_client for rollout in rollouts]
        assert all(client._session_id is not None for client in clients)
        assert unattached_sessions(ports, stats_url) == {"replica1": 0, "replica2": 0}
        for rollout, client in zip(rollouts, clients, strict=True):
            before = steps_left(rollout.get_annotations())
            client_socket(client).transport.abort()
            assert steps_left(rollout.get_annotations()) == before - 1
        assert open_sessions(stats_url) == spread

        # One replica dies: only the episodes it held are lost, and each says so in its tool result.
        replicas[0].kill()  # as an out-of-memory kill would: no drain
        replicas[0].wait(timeout=30)
        killed = time.monotonic()
        answers = [rollout.get_annotations() for rollout in rollouts]
        lost = [answer for answer in answers if answer.startswith("error:")]
        assert 1 <= len(lost) < ROLLOUTS and all("episode is over" in answer for answer in lost)
        assert all(read_observation(answer).status == "ok" for answer in answers if answer not in lost)

        # Every rollout finishes its next episode, on the survivor.
        for index, rollout in enumerate(rollouts):
            rollout.reset(seed=200 + index, difficulty="medium")
            graded = read_observation(getattr(rollout, SUBMIT_REPORT)(rows=[]))
            assert graded.status == "graded"
        recovered_s = time.monotonic() - killed
        assert open_sessions(stats_url)["replica1"] == 0
        print(f"every rollout ran again {recovered_s:.2f} s after the replica died")


def test_one_trainer_behind_the_shipped_proxy_gets_the_sessions_the_training_docs_configure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Replicas with the image's settings and deploy/compose.yaml's on top (the proxy's address is loopback here),
    HAProxy with deploy/haproxy.cfg: one trainer opens as many rollouts as docs/training.md tells it to."""
    from deploy_helpers import shipped_settings, trainer_sessions

    settings = {
        **shipped_settings()["compose"],
        "FORWARDED_ALLOW_IPS": "127.0.0.1",
        "METRIC_TRACKER_SECRET": "shared-by-every-replica",
        "ENABLE_WEB_INTERFACE": "false",
    }
    ports = [free_port(), free_port()]
    with contextlib.ExitStack() as stack:
        for port in ports:
            log = stack.enter_context(tempfile.TemporaryFile())
            stack.enter_context(serving(replica_command(port), port, {**os.environ, **settings}, log, cwd=ROOT))
        url, stats_url = stack.enter_context(haproxy_in_front(ports))
        wait_until_both_up(stats_url)
        monkeypatch.setenv(URL_VAR, url)
        monkeypatch.setenv(RETRY_DEADLINE_VAR, "10")  # a refused session fails the test instead of waiting
        rollouts = [stack.enter_context(MetricTrackerToolEnv()) for _ in range(trainer_sessions())]
        for index, rollout in enumerate(rollouts):
            assert read_observation(rollout.reset(seed=index, difficulty="easy")).status == "ready"
        assert sum(open_sessions(stats_url).values()) == trainer_sessions()


def test_behind_a_balancer_without_affinity_clients_close_the_sessions_they_cannot_reach(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The shipped configuration without its affinity cookie, alternating replicas: a rollout's socket reaches
    another replica than the one that created its session, which answers that it does not know it. The client
    closes that session and plays on a plain socket: every episode is played, no replica keeps a session nothing
    is attached to (each would hold a place of the client's until it is reaped), and closing the rollouts leaves
    none."""
    without_affinity = re.sub(r"^\s*cookie .*\n| cookie replica\d+", "", SHIPPED_CONFIG.read_text(), flags=re.M)
    config = tmp_path / "haproxy.cfg"
    config.write_text(without_affinity.replace("balance leastconn", "balance roundrobin"))
    assert "insert" not in config.read_text() and "balance roundrobin" in config.read_text()
    ports = [free_port(), free_port()]
    env = {**os.environ, "ENABLE_WEB_INTERFACE": "false", "MAX_SESSIONS_PER_CLIENT": str(PER_CLIENT_CAP)}
    with contextlib.ExitStack() as stack:
        for port in ports:
            log = stack.enter_context(tempfile.TemporaryFile())
            stack.enter_context(serving(replica_command(port), port, env, log, cwd=ROOT))
        url, stats_url = stack.enter_context(haproxy_in_front(ports, config))
        wait_until_both_up(stats_url)
        monkeypatch.setenv(URL_VAR, url)
        rollouts = [stack.enter_context(MetricTrackerToolEnv()) for _ in range(ROLLOUTS)]
        for index, rollout in enumerate(rollouts):
            assert read_observation(rollout.reset(seed=300 + index, difficulty="easy")).status == "ready"
            steps_left(rollout.get_annotations())
        fell_back = [rollout for rollout in rollouts if not rollout._client.async_client.resume_sessions]
        assert fell_back, "no socket reached another replica than its session's: the test shows nothing"
        assert sum(open_sessions(stats_url).values()) == ROLLOUTS
        assert unattached_sessions(ports, stats_url) == {"replica1": 0, "replica2": 0}
        for rollout in rollouts:
            rollout._close()
        deadline = time.monotonic() + 30
        while sum(places_held(port) for port in ports):
            assert time.monotonic() < deadline, "closed rollouts left sessions on the replicas"
            time.sleep(0.2)


def exchange(ws: ClientConnection, message: dict) -> dict:
    ws.send(json.dumps(message))
    reply = json.loads(ws.recv(timeout=60))
    assert reply["type"] == "observation", reply
    return reply["data"]["observation"]


def test_a_draining_replica_serves_its_episodes_through_the_proxy_while_new_sessions_go_to_the_other() -> None:
    """The shipped configuration with a rolling restart's first step: SIGTERM one replica while an episode runs
    on it. HAProxy marks the replica down (its /ready answers 503) and sends new sessions to the other replica,
    but the open episode goes on stepping through the proxy, seconds past the health check's fall time, until it
    is graded; closing it ends the drain, and the replica exits cleanly."""
    ports = [free_port(), free_port()]
    env = {**os.environ, "ENABLE_WEB_INTERFACE": "false", "METRIC_TRACKER_DRAIN_S": str(DRAIN_S)}
    with contextlib.ExitStack() as stack:
        replicas, url, stats_url = stack.enter_context(replicas_behind_haproxy(ports, env))
        ws_url = url.replace("http", "ws", 1) + "/ws"

        with connect(ws_url, open_timeout=30) as episode:
            assert exchange(episode, {"type": "reset", "data": {"seed": 5, "difficulty": "hard"}})["status"] == "ready"
            (draining,) = [name for name, count in open_sessions(stats_url).items() if count == 1]
            (other,) = [name for name in open_sessions(stats_url) if name != draining]
            replicas[int(draining.removeprefix("replica")) - 1].send_signal(signal.SIGTERM)

            deadline = time.monotonic() + 30
            while not replica_rows(stats_url)[draining]["status"].startswith("DOWN"):
                assert time.monotonic() < deadline, "HAProxy never marked the draining replica down"
                assert (
                    exchange(episode, {"type": "step", "data": {"analysis_method": "get_annotations"}})["status"]
                    == "ok"
                )
                time.sleep(STEP_PAUSE_S)
            marked_down = time.monotonic()
            while time.monotonic() - marked_down < STEPPING_PAST_DOWN_S:
                step = exchange(episode, {"type": "step", "data": {"analysis_method": "get_annotations"}})
                assert step["status"] == "ok", step
                time.sleep(STEP_PAUSE_S)

            with connect(ws_url, open_timeout=30) as fresh:  # a new session goes to the replica that stays
                assert exchange(fresh, {"type": "reset", "data": {"seed": 6}})["status"] == "ready"
                assert open_sessions(stats_url) == {draining: 1, other: 1}
            graded = exchange(episode, {"type": "step", "data": {"classifications": []}})
            assert graded["status"] == "graded", graded
        stopped = replicas[int(draining.removeprefix("replica")) - 1]
        assert stopped.wait(timeout=60) == 0  # its last session closed: the drain ended early and cleanly
