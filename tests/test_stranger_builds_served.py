"""Never-seen addresses resetting expensive episodes, over a real server on loopback (each address another
client): a known client's audit reset waits for about one build, whether the addresses come one after another (a
parade) or bring many sessions at once (a trainer's first rollouts). `lab/speed/attack_builds.py` measures the
same attacks longer, with a victim querying beside them."""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from collections.abc import Iterator

import pytest
from sql_helpers import server_process, ws_ask, ws_session
from websockets.exceptions import ConnectionClosed

from metric_tracker_rl.sql.known_clients import KNOWN_AFTER_S

pytestmark = pytest.mark.slow  # a server, audit builds for seconds

KNOWN = "127.0.11.1"
SEEDS = itertools.count(800_000)
PARADE_EVERY_S = 0.25
PARADE_HOLD_S = 3.0
PARADE_S = 15.0


def audit_reset() -> dict:
    return {"type": "reset", "data": {"difficulty": "audit", "seed": next(SEEDS)}}


@pytest.fixture(scope="module")
def known_server() -> Iterator[tuple[str, float]]:
    """A server, the known client's idle audit reset's wall time on it (its first build is KNOWN_AFTER_S old)."""
    env = {"SQL_WORKERS": "1", "MAX_CONCURRENT_ENVS": "80", "MAX_SESSIONS_PER_CLIENT": "16"}
    with server_process(env) as (url, _), ws_session(url, KNOWN) as ws:
        ws_ask(ws, audit_reset())  # the server learns what an audit build costs
        began = time.perf_counter()
        assert ws_ask(ws, audit_reset())["type"] == "observation"
        idle_s = time.perf_counter() - began
        time.sleep(KNOWN_AFTER_S)
        yield url, idle_s


def known_reset_s(url: str) -> float:
    with ws_session(url, KNOWN) as ws:
        began = time.perf_counter()
        reply = ws_ask(ws, audit_reset())
        assert reply["type"] == "observation", reply
        return time.perf_counter() - began


@contextlib.contextmanager
def parade(url: str) -> Iterator[list[int]]:
    """Every PARADE_EVERY_S a never-seen address sends an audit reset and drops PARADE_HOLD_S later, for PARADE_S."""
    deadline, sent = time.monotonic() + PARADE_S, [0]

    def visit(address: str) -> None:
        with contextlib.suppress(ConnectionClosed, OSError), ws_session(url, address) as ws:
            ws.send(json.dumps(audit_reset()))
            time.sleep(PARADE_HOLD_S)

    def arrive() -> None:
        for index in itertools.count():
            if time.monotonic() >= deadline:
                return
            threading.Thread(target=visit, args=(f"127.12.{index // 250}.{1 + index % 250}",), daemon=True).start()
            sent[0] += 1
            time.sleep(PARADE_EVERY_S)

    arriving = threading.Thread(target=arrive)
    arriving.start()
    try:
        yield sent
    finally:
        arriving.join()
        time.sleep(PARADE_HOLD_S)


def test_a_known_clients_reset_waits_about_one_build_during_a_parade_of_fresh_addresses(
    known_server: tuple[str, float],
) -> None:
    """The parade's builds alone would keep the builds' thread busy; a fresh address's count used to start where
    the last build served started, below the known client's, so the known client waited until the parade ended."""
    url, idle_s = known_server
    with parade(url) as sent:
        time.sleep(4.0)  # the parade's builds queue
        waited_s = known_reset_s(url)
        assert sent[0] > 10
    assert waited_s <= max(4 * idle_s, 3.0), f"idle {idle_s:.2f} s, during the parade {waited_s:.2f} s"


def test_a_known_clients_reset_waits_about_one_build_behind_many_fresh_sessions_at_once(
    known_server: tuple[str, float],
) -> None:
    """18 audit resets at once from 6 never-seen addresses: of their builds, at most two end between the known
    client's asking and its answer (the one under way and one granted as it ended); each fresh address used to
    count as a client of its own, so the known client waited for a build of each."""
    url, _ = known_server
    ended: list[float] = []

    def build(address: str) -> None:
        with ws_session(url, address) as ws:
            assert ws_ask(ws, audit_reset())["type"] == "observation"
            ended.append(time.monotonic())

    threads = [threading.Thread(target=build, args=(f"127.13.0.{1 + index % 6}",)) for index in range(18)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 120
    while not ended and time.monotonic() < deadline:  # the builds are under way and queued
        time.sleep(0.05)
    asked = time.monotonic()
    known_reset_s(url)
    answered = time.monotonic()
    for thread in threads:
        thread.join()
    between = sum(asked < when < answered for when in ended)
    assert between <= 2, f"{between} of the fresh addresses' builds ended while the known client's reset waited"
