"""Replicas behind a real load balancer: Debian's HAProxy, started on loopback with the shipped deploy/haproxy.cfg.

Sessions spread over the replicas; killing one costs only the episodes it held, and every rollout finishes its
next episode on the survivor; with METRIC_TRACKER_SECRET shared, a seed gives the same episode on each replica."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import shutil
import sys
import tempfile
import time
import urllib.request

import pytest
from conftest import ROOT

from benchmarks.scale_out import haproxy_in_front
from metric_tracker_rl.local_server import free_port, serving
from metric_tracker_rl.reconnect import RETRY_DEADLINE_VAR
from metric_tracker_rl.tool_calls import SUBMIT_REPORT, read_observation
from metric_tracker_rl.tool_env import URL_VAR, MetricTrackerToolEnv

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("haproxy") is None,
                                 reason="HAProxy is not installed (apt-get install haproxy; .ci/run installs it)")]

ROLLOUTS = 8


def replica_command(port: int) -> list[str]:
    return [sys.executable, "-m", "server.app", "--host", "127.0.0.1", "--port", str(port), "--no-web"]


def open_sessions(stats_url: str) -> dict[str, int]:
    """Open sessions per replica, from HAProxy's statistics."""
    with urllib.request.urlopen(stats_url, timeout=5) as response:
        rows = csv.DictReader(io.StringIO(response.read().decode().lstrip("# ")))
        return {row["svname"]: int(row["scur"]) for row in rows if row["svname"].startswith("replica")}


def wait_until_both_up(stats_url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with urllib.request.urlopen(stats_url, timeout=5) as response:
            rows = list(csv.DictReader(io.StringIO(response.read().decode().lstrip("# "))))
        if all(row["status"] == "UP" for row in rows if row["svname"].startswith("replica")):
            return
        time.sleep(0.3)
    raise AssertionError("the replicas did not pass HAProxy's health checks")


def test_sessions_spread_a_dead_replica_costs_only_its_episodes_and_seeds_agree(
        monkeypatch: pytest.MonkeyPatch) -> None:
    ports = [free_port(), free_port()]
    env = {**os.environ, "ENABLE_WEB_INTERFACE": "false", "METRIC_TRACKER_SECRET": "shared-by-every-replica"}
    with contextlib.ExitStack() as stack:
        replicas = []
        for port in ports:
            log = stack.enter_context(tempfile.TemporaryFile())
            replicas.append(stack.enter_context(serving(replica_command(port), port, env, log, cwd=ROOT)))
        url, stats_url = stack.enter_context(haproxy_in_front(ports))
        wait_until_both_up(stats_url)

        # The same seed is the same episode on every replica (the secret is shared).
        shown = []
        for port in ports:
            monkeypatch.setenv(URL_VAR, f"http://127.0.0.1:{port}")
            with MetricTrackerToolEnv() as direct:
                shown.append((direct.reset(seed=77, difficulty="hard"), direct.list_suspicious_dates(limit=28)))
        assert shown[0] == shown[1]
        assert read_observation(shown[0][0]).config["held_out"] is True

        # Rollouts through the proxy spread over both replicas.
        monkeypatch.setenv(URL_VAR, url)
        monkeypatch.setenv(RETRY_DEADLINE_VAR, "60")
        rollouts = [stack.enter_context(MetricTrackerToolEnv()) for _ in range(ROLLOUTS)]
        for index, rollout in enumerate(rollouts):
            rollout.reset(seed=100 + index, difficulty="medium")
        spread = open_sessions(stats_url)
        assert sum(spread.values()) == ROLLOUTS and min(spread.values()) >= ROLLOUTS // 2 - 1, spread

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
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Replicas with the image's settings and deploy/compose.yaml's on top (the proxy's address is loopback here),
    HAProxy with deploy/haproxy.cfg: one trainer opens as many rollouts as docs/training.md tells it to."""
    from test_deploy_files import shipped_settings, trainer_sessions

    settings = {**shipped_settings()["compose"], "FORWARDED_ALLOW_IPS": "127.0.0.1",
                "METRIC_TRACKER_SECRET": "shared-by-every-replica", "ENABLE_WEB_INTERFACE": "false"}
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
