"""Another visitor's cheap reset under a flood of expensive ones, over a real server on loopback (each address
another client): 8 addresses reset warehouse episodes back to back, and a frontier reset, which builds in a
fraction of a warehouse build's time, stays within a few times its idle time instead of waiting for a warehouse
build under way. `lab/speed/attack_held_work.py` measures the same attack longer."""

from __future__ import annotations

import contextlib
import statistics
import threading
import time
from collections.abc import Iterator

import pytest
from sql_helpers import server_process, ws_ask, ws_session
from websockets.exceptions import ConnectionClosed

pytestmark = pytest.mark.slow  # a server, warehouse builds for seconds

ATTACKERS = [f"127.0.3.{host}" for host in range(1, 9)]
VICTIM = "127.0.4.1"
VICTIM_RESETS = 12
SLOWDOWN_BOUND = 5.0  # the victim's median reset under the flood, against its idle median


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, int]]:
    with server_process({"SQL_WORKERS": "2", "MAX_CONCURRENT_ENVS": "40", "MAX_SESSIONS_PER_CLIENT": "8"}) as found:
        yield found


def frontier_resets(url: str, first_seed: int) -> list[float]:
    """The walls of VICTIM_RESETS frontier resets of fresh seeds, one at a time, over one session."""
    walls = []
    with ws_session(url, VICTIM) as ws:
        for seed in range(first_seed, first_seed + VICTIM_RESETS):
            began = time.perf_counter()
            reply = ws_ask(ws, {"type": "reset", "data": {"difficulty": "frontier", "seed": seed}})
            walls.append(time.perf_counter() - began)
            assert reply["type"] == "observation", reply
    return walls


@contextlib.contextmanager
def warehouse_flood(url: str) -> Iterator[list[int]]:
    """8 addresses x 2 sessions resetting warehouse episodes of fresh seeds back to back, until the block ends."""
    stop, built = threading.Event(), [0]
    seeds = iter(range(500_000, 600_000))

    def one(address: str) -> None:
        with contextlib.suppress(ConnectionClosed, OSError), ws_session(url, address) as ws:
            while not stop.is_set():
                ws_ask(ws, {"type": "reset", "data": {"difficulty": "warehouse", "seed": next(seeds)}})
                built[0] += 1

    threads = [threading.Thread(target=one, args=(address,), daemon=True) for address in ATTACKERS * 2]
    for thread in threads:
        thread.start()
    try:
        time.sleep(3)  # the flood's builds queue
        yield built
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=120)


def test_a_cheap_reset_does_not_wait_for_a_flood_of_warehouse_builds(server: tuple[str, int]) -> None:
    url, _ = server
    frontier_resets(url, 900_000)  # the server has built both kinds: it knows what each costs
    with ws_session(url, ATTACKERS[0]) as ws:
        ws_ask(ws, {"type": "reset", "data": {"difficulty": "warehouse", "seed": 499_999}})
    idle = statistics.median(frontier_resets(url, 910_000))
    with warehouse_flood(url) as built:
        under = statistics.median(frontier_resets(url, 920_000))
        assert built[0] > 0, "the flood built nothing"
    assert under <= SLOWDOWN_BOUND * idle, f"idle {idle * 1000:.0f} ms, under the flood {under * 1000:.0f} ms"
