"""Memory an ended episode freed goes back to the system: a session's close and a reset that replaces an episode
ask for a trim of the C allocator's arenas, one per wave of releases (lab/speed/memory_return.py measures a
server's memory before, at the peak of and after a warehouse load)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator

import pytest
from sql_helpers import sql_step

from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.serving.memory_release import TRIMMER, Trimmer
from metric_tracker_rl.sql import pool as sql_pool
from metric_tracker_rl.sql import worker_process
from metric_tracker_rl.sql.allocator import malloc_trim
from metric_tracker_rl.sql.pool import SqlPool

# Real SQL workers, a served app and the trimmer's timers: the whole suite's, not the edit loop's.
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not TRIMMER.available, reason="the C library has no malloc_trim")]

# A fresh interpreter frees 256 MB of 64 KB blocks (under malloc's mmap threshold: they live in an arena) that a
# thread allocated, keeping one block allocated after them so the arena cannot shrink from its top; it prints its
# resident MB after the free and after the trim that a release asks for.
FREED_THEN_RELEASED = textwrap.dedent("""
    import threading
    from metric_tracker_rl.serving.memory_release import TRIMMER, release_soon

    def rss_mb():
        return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20

    held = []
    def allocate():
        held.extend(bytearray(64 * 1024) for _ in range(4096))
        held.append(bytearray(64 * 1024))
    worker = threading.Thread(target=allocate)
    worker.start()
    worker.join()
    pinned = held.pop()
    held.clear()
    freed = rss_mb()
    release_soon()
    assert TRIMMER.wait_for(1, 60)
    print(freed, rss_mb())
""")


def test_a_release_gives_freed_arena_memory_back_to_the_system() -> None:
    result = subprocess.run(
        [sys.executable, "-c", FREED_THEN_RELEASED], capture_output=True, text=True, timeout=120, check=True
    )
    freed_mb, trimmed_mb = map(float, result.stdout.split())
    assert freed_mb - trimmed_mb > 128, (freed_mb, trimmed_mb)  # most of the 256 MB went back


def test_a_wave_of_releases_costs_one_trim() -> None:
    wave = Trimmer(malloc_trim(), delay_s=600)  # its trim is still pending when the wave ends
    callers = [threading.Thread(target=lambda: [wave.soon() for _ in range(50)]) for _ in range(8)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    assert wave.scheduled == 1 and wave.trims == 0  # the 400 requests of the wave are one trim
    quick = Trimmer(malloc_trim(), delay_s=0.01)
    quick.soon()
    assert quick.wait_for(1, 30)
    quick.soon()
    assert quick.wait_for(2, 30) and quick.scheduled == 2  # a release after the trim asks again


def test_closing_a_session_and_replacing_an_episode_each_ask_for_a_trim() -> None:
    env = MetricTrackerRlEnvironment()
    env.reset(seed=3, difficulty="easy")
    before = TRIMMER.trims
    env.reset(seed=4, difficulty="easy")  # the first episode is let go
    assert TRIMMER.wait_for(before + 1, 30)
    before = TRIMMER.trims
    env.close()
    assert TRIMMER.wait_for(before + 1, 30)


def test_a_request_body_the_server_drops_asks_for_a_trim() -> None:
    """A body over the message cap is answered 413 and dropped: its megabyte of chunks was freed in the middle of
    the heap, and the server asks for it to go back to the system (a body it serves asks for nothing). Sent in
    chunks, without a length (one that declares its length past the cap is refused before a byte is read)."""
    import httpx

    from metric_tracker_rl.serving.hardening import MAX_MESSAGE_BYTES
    from metric_tracker_rl.serving.local_server import local_server

    with local_server(in_process=True) as url, httpx.Client(base_url=url, timeout=60) as http:
        assert http.get("/health").status_code == 200
        before = TRIMMER.trims
        chunks = (b"x" * 65536 for _ in range(2 * MAX_MESSAGE_BYTES // 65536))
        assert http.post("/mcp", content=chunks).status_code == 413
        assert TRIMMER.wait_for(before + 1, 30)


@pytest.fixture
def one_worker(monkeypatch: pytest.MonkeyPatch) -> Iterator[SqlPool]:
    fresh = SqlPool(size=1)
    monkeypatch.setattr(sql_pool, "_POOL", fresh)
    try:
        yield fresh
    finally:
        fresh.close()


def test_an_idle_worker_drops_a_closed_episodes_tables_at_once(one_worker: SqlPool) -> None:
    """Closing an episode tells the idle worker holding its tables to drop them now (it used to wait for the
    worker's next statement, holding them meanwhile): asked about that episode afterwards, the worker no longer
    has it."""
    env = MetricTrackerRlEnvironment()
    env.reset(seed=3, difficulty="easy")
    assert sql_step(env).status == "ok"
    with one_worker._condition:
        (worker,) = one_worker._workers
        (key,) = worker.loaded
    env.close()
    deadline = time.monotonic() + 60
    while True:
        with one_worker._condition:
            if worker in one_worker._idle and not worker.forget:
                one_worker._idle.remove(worker)  # taken, as a statement would take it
                break
        assert time.monotonic() < deadline, "the worker was not given back"
        time.sleep(0.01)
    assert one_worker.replaced == 0
    reply = worker.call(("query", key, None, "SELECT 1 AS one", 0, 1, []), 30, None)
    assert reply[0] == "refused" and "KeyError" in reply[1], reply


def test_a_worker_left_empty_and_grown_retires_and_a_fresh_one_serves(
    one_worker: SqlPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that holds no episode after a forget, its memory still past its idle size by IDLE_SLACK_MB (here
    0: any growth), exits and the pool starts a fresh one, so what DuckDB and the allocators kept goes back."""
    monkeypatch.setattr(worker_process, "IDLE_SLACK_MB", 0)
    env = MetricTrackerRlEnvironment()
    env.reset(seed=3, difficulty="easy")
    assert sql_step(env).status == "ok"
    (first,) = one_worker.worker_pids()
    env.close()
    deadline = time.monotonic() + 60
    while one_worker.replaced == 0:
        assert time.monotonic() < deadline, "the grown worker did not retire"
        time.sleep(0.01)
    env = MetricTrackerRlEnvironment()
    env.reset(seed=3, difficulty="easy")
    answer = sql_step(env)
    assert answer.status == "ok" and answer.analysis_result["rows"] == [{"n": 28}]
    assert one_worker.worker_pids() != [first] and one_worker.replaced == 1
    env.close()
