"""How long threads have waited for a core, from Linux's per-thread scheduler statistics.

/proc/<pid>/task/<tid>/schedstat holds three numbers: nanoseconds on a CPU, nanoseconds runnable but waiting on a
run queue, and timeslices. The SQL time limits' wall backstops subtract that wait: a statement that a busy machine
leaves waiting for a core keeps its time, while one that is blocked, not runnable, is still
stopped. Where the files are missing (not Linux) the readers report nothing and the backstops count wall time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping


def _queued_s(path: str) -> float | None:
    try:
        with open(path, "rb") as stats:
            return int(stats.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


def thread_queued_s(thread_id: int) -> float | None:
    """Seconds this process's thread `thread_id` (its native id) has waited for a core, or None if not reported."""
    return _queued_s(f"/proc/self/task/{thread_id}/schedstat")


def process_queued_s(pid: int) -> dict[int, float]:
    """Seconds each thread of process `pid` has waited for a core, by thread id; empty where not reported."""
    try:
        thread_ids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return {}
    waits = {int(tid): _queued_s(f"/proc/{pid}/task/{tid}/schedstat") for tid in thread_ids}
    return {tid: wait for tid, wait in waits.items() if wait is not None}


def queued_since(start: Mapping[int, float], now: Mapping[int, float]) -> float:
    """The wait of the threads in `now` since `start` (a thread started since counts from zero). By thread, not
    as one total: a thread that ended since (a retired statement thread) takes its wait with it, not back from it."""
    return sum(wait - start.get(tid, 0.0) for tid, wait in now.items())
