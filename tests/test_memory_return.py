"""Memory an ended episode freed goes back to the system: a session's close and a reset that replaces an episode
ask for a trim of the C allocator's arenas, one per wave of releases (lab/speed/memory_return.py measures a
server's memory before, at the peak of and after a warehouse load)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import pytest

from metric_tracker_rl.serving import memory_release
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.serving.memory_release import TRIMMER, Trimmer

pytestmark = pytest.mark.skipif(not TRIMMER.available, reason="the C library has no malloc_trim")

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
    result = subprocess.run([sys.executable, "-c", FREED_THEN_RELEASED], capture_output=True, text=True,
                            timeout=120, check=True)
    freed_mb, trimmed_mb = map(float, result.stdout.split())
    assert freed_mb - trimmed_mb > 128, (freed_mb, trimmed_mb)  # most of the 256 MB went back


def test_a_wave_of_releases_costs_one_trim() -> None:
    trimmer = Trimmer(memory_release._malloc_trim(), delay_s=0.05)
    callers = [threading.Thread(target=lambda: [trimmer.soon() for _ in range(50)]) for _ in range(8)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    assert trimmer.wait_for(1, 30)
    assert not trimmer.wait_for(2, 0.5)  # the 400 requests of the wave were one trim
    trimmer.soon()
    assert trimmer.wait_for(2, 30)  # a later release asks again


def test_closing_a_session_and_replacing_an_episode_each_ask_for_a_trim() -> None:
    env = MetricTrackerRlEnvironment()
    env.reset(seed=3, difficulty="easy")
    before = TRIMMER.trims
    env.reset(seed=4, difficulty="easy")  # the first episode is let go
    assert TRIMMER.wait_for(before + 1, 30)
    before = TRIMMER.trims
    env.close()
    assert TRIMMER.wait_for(before + 1, 30)
