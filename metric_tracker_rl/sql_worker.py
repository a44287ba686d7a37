"""A SQL worker process: `python -m metric_tracker_rl.sql_worker QUERY_MB CACHE_MB`.

It reads requests from stdin and writes replies to stdout, one pickled tuple each (metric_tracker_rl.sql_pool
starts it, owns both pipes and is the only peer). Before serving it limits its own address space to what it holds
after start-up plus CACHE_MB for episodes' tables plus QUERY_MB for one query, moves to "/" and lowers its CPU
priority, so a runaway query fails here (or the pool kills this process at the deadline) and never in the server.

Requests:
- ("query", key, tables or None, sql, offset, limit, forget): run `sql` over episode `key`'s tables (loaded from
  `tables` first when given), after closing the episodes listed in `forget`. Replies ("ok", columns, rows, count)
  or ("refused", message, restart).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import resource
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any, BinaryIO

NICENESS = 5  # below the server process: the event loop answers every session first


def address_space_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


class Watchdog:
    """One thread that interrupts the running statement at the time limit (cheaper than a timer a query)."""

    def __init__(self, time_limit_s: float) -> None:
        self.time_limit_s = time_limit_s
        self.condition = threading.Condition()
        self.target: Any = None
        self.generation = 0
        threading.Thread(target=self._watch, daemon=True, name="sql-watchdog").start()

    def start(self, target: Any) -> None:
        with self.condition:
            self.target = target
            self.generation += 1
            self.condition.notify()

    def stop(self) -> None:
        with self.condition:
            self.target = None
            self.generation += 1
            self.condition.notify()

    def _watch(self) -> None:
        with self.condition:
            while True:
                while self.target is None:
                    self.condition.wait()
                if not self.condition.wait_for(self._changed(self.generation), timeout=self.time_limit_s):
                    self.target.interrupt()
                    self.condition.wait_for(self._changed(self.generation))

    def _changed(self, generation: int) -> Callable[[], bool]:
        """Whether the statement watched at `generation` has ended (another started or none runs)."""
        return lambda: self.generation != generation


def serve(requests: BinaryIO, replies: BinaryIO, query_mb: int, cache_mb: int) -> None:
    from metric_tracker_rl.sql_engine import TIME_LIMIT_S, EpisodeTables, Refusal, open_database

    database = open_database()
    database.execute("SELECT 1").fetchall()
    watchdog = Watchdog(TIME_LIMIT_S)
    with contextlib.suppress(ValueError, OSError):  # an address-space limit is a Linux and macOS facility
        limit = address_space_bytes() + (query_mb + cache_mb) * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    episodes: dict[int, EpisodeTables] = {}
    pickle.dump(("ready", os.getpid()), replies)
    replies.flush()
    while True:
        try:
            request = pickle.load(requests)
        except EOFError:
            return
        _, key, tables, sql, offset, limit_rows, forget = request
        for old in forget:
            episode = episodes.pop(old, None)
            if episode is not None:
                episode.close()
        reply: tuple[Any, ...]
        try:
            if tables is not None:
                episodes.pop(key, None)
                episodes[key] = EpisodeTables(database, tables)
            episode = episodes[key]
            watchdog.start(episode)
            try:
                columns, rows, count = episode.run(sql, offset, limit_rows)
            finally:
                watchdog.stop()
            reply = ("ok", columns, rows, count)
        except Refusal as refusal:
            reply = ("refused", str(refusal), refusal.restart)
        except MemoryError:
            reply = ("refused", "memory", True)
        except Exception as exc:  # any other failure of the driver is the agent's query's, never the server's
            traceback.print_exc(file=sys.stderr)
            reply = ("refused", f"the SQL engine could not run this statement ({type(exc).__name__}: "
                                f"{str(exc)[:200]})", True)
        pickle.dump(reply, replies, protocol=pickle.HIGHEST_PROTOCOL)
        replies.flush()
        if reply[0] == "refused" and reply[2]:
            return  # the pool starts a fresh worker


def main() -> None:
    query_mb, cache_mb = int(sys.argv[1]), int(sys.argv[2])
    os.chdir("/")
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    import duckdb  # noqa: F401 - imported before the address-space limit is measured
    import numpy  # noqa: F401
    import pandas  # noqa: F401

    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write to the reply pipe
    serve(requests, replies, query_mb, cache_mb)


if __name__ == "__main__":
    main()
