"""A SQL worker process: `python -m metric_tracker_rl.sql.worker QUERY_MB CACHE_MB IDLE_SLACK_MB`.

It reads requests from stdin, one pickled tuple each, and writes replies to stdout, each a pickled tuple after its
length (REPLY_HEADER bytes, big-endian), so the pool can read a reply in pieces as they arrive without waiting on
the pipe (metric_tracker_rl.sql.pool starts it, owns both pipes and is the only peer). Before serving it limits
its own address space to what it holds after start-up plus CACHE_MB for episodes' tables plus QUERY_MB for one
query, and moves to "/", so a runaway query fails here (or the pool kills this process at
the deadline) and never in the server.

The pool stops a statement whose step was given up (its connection closed, its time bound passed) with SIGUSR1
(STOP_SIGNAL): the running statement is interrupted and answered as refused, and the worker serves the next.
A worker runs at the server's own priority: fairness between statements is the pool's and the gate's to keep,
never bought with priority against the rest of the machine (a trainer or another server beside it).

Requests:
- ("query", key, tables or None, sql, offset, limit, forget): run `sql` over episode `key`'s tables (loaded from
  `tables` first when given), after closing the episodes listed in `forget`. Replies ("ok", columns, rows, count,
  retire), ("refused", message, restart) or ("stalled", True) (stopped in wall time while it neither ran nor waited
  for a core: the machine's doing); a worker that says retire or restart exits after its reply.
- ("forget", keys): close the episodes listed (the pool sends it to an idle worker when episodes it holds are
  closed, so their memory goes back to the system without waiting for a statement). Replies ("forgot", retire):
  a worker left holding no episode whose resident memory is still IDLE_SLACK_MB past what it held when it became
  ready (what DuckDB and the allocators keep from the statements it ran) retires, and the pool starts a fresh one.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import resource
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, BinaryIO

from metric_tracker_rl.sql.schedstat import thread_queued_s

if TYPE_CHECKING:  # the engine (and DuckDB) is imported by the worker only, once it runs
    from duckdb import DuckDBPyConnection

    from metric_tracker_rl.sql.engine import EpisodeTables

STOP_SIGNAL = signal.SIGUSR1  # the pool's word to stop the running statement (see `Watchdog.stop_running`)
# The watchdog reads the CPU time of a statement still running after SLOW_AFTER_S (a typical one takes milliseconds).
SLOW_AFTER_S = 0.05
CPU_POLL_S = 0.02  # how often the watchdog reads the CPU time of a statement past SLOW_AFTER_S
# Times the time limit: a statement that neither finishes nor runs is stopped in wall time too, less the time its
# thread waited for a core (metric_tracker_rl.sql.schedstat), so a statement starved on a busy machine keeps its time.
WALL_BACKSTOP = 8.0


REPLY_HEADER = 8  # bytes of a reply's length, before the pickled reply


def write_reply(replies: BinaryIO, reply: tuple[Any, ...]) -> None:
    body = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
    replies.write(len(body).to_bytes(REPLY_HEADER, "big") + body)
    replies.flush()


_STATM: list[int] = []  # /proc/self/statm, opened once: read after every statement
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def address_space_bytes() -> int:
    return _statm(0)


def resident_bytes() -> int:
    return _statm(1)


def _statm(field: int) -> int:
    if not _STATM:
        _STATM.append(os.open("/proc/self/statm", os.O_RDONLY))
    return int(os.pread(_STATM[0], 256, 0).split()[field]) * _PAGE_BYTES


class Watchdog:
    """One thread that watches the running statement: once the statement has used the time limit in CPU time (the
    worker's, which runs one statement at a time) it interrupts it. CPU time, not wall time: a statement left
    waiting for a core on a busy machine has not used its time, while a runaway uses it all the same. WALL_BACKSTOP
    bounds the wall time too, less the time the statement's thread waited for a core (`queued_clock`, None where
    the system does not tell), both counted from SLOW_AFTER_S on: the backstop is never reached sooner than if they
    were counted from the start.

    Most statements end before SLOW_AFTER_S: the watchdog wakes only for a statement that starts while it is idle,
    and at SLOW_AFTER_S after the start of the statement it watches (then finding it ended, or another running),
    never at a statement's end; a burst of quick statements wakes it about once per SLOW_AFTER_S."""

    def __init__(
        self,
        time_limit_s: float,
        cpu_clock: Callable[[], float] = time.process_time,
        wall_clock: Callable[[], float] = time.monotonic,
        queued_clock: Callable[[int], float | None] = thread_queued_s,
    ) -> None:
        self.time_limit_s = time_limit_s
        self.cpu_clock, self.wall_clock, self.queued_clock = cpu_clock, wall_clock, queued_clock
        self.queued_start: float | None = None  # the statement's thread's wait for a core at SLOW_AFTER_S
        self.condition = threading.Condition()
        self.idle = False  # waiting for a statement to start: the next start wakes it
        self.watching_slow = False  # watching a statement past SLOW_AFTER_S: its end wakes it
        self.slow_at = 0.0  # when (time.monotonic) the running statement becomes slow
        self.target: Any = None
        self.thread_id = 0
        self.generation = 0
        self.stalled = False  # the last statement was stopped by WALL_BACKSTOP, not by its CPU time
        self.cpu_start = 0.0  # the worker's CPU time when the statement began
        self.wall_start = 0.0  # the wall clock at SLOW_AFTER_S
        threading.Thread(target=self._watch, daemon=True, name="sql-watchdog").start()

    def start(self, target: Any, thread_id: int) -> None:
        with self.condition:
            self.target, self.thread_id, self.stalled = target, thread_id, False
            self.cpu_start, self.slow_at = self.cpu_clock(), time.monotonic() + SLOW_AFTER_S
            self.generation += 1
            if self.idle:
                self.condition.notify()

    def stop(self) -> None:
        with self.condition:
            self.target = None
            self.generation += 1
            if self.watching_slow:
                self.condition.notify()

    def _watch(self) -> None:
        with self.condition:
            while True:
                while self.target is None:
                    self.idle = True
                    self.condition.wait()
                self.idle = False
                ended = self._changed(self.generation)
                if self.condition.wait_for(ended, timeout=self.slow_at - time.monotonic()):
                    continue
                self.wall_start, self.queued_start = self.wall_clock(), self.queued_clock(self.thread_id)
                self.watching_slow = True
                while not self.condition.wait_for(ended, timeout=CPU_POLL_S):
                    spent = self.cpu_clock() - self.cpu_start > self.time_limit_s
                    if spent or self._stalled():
                        self.stalled = not spent
                        self.target.interrupt()
                        self.condition.wait_for(ended)
                        break
                self.watching_slow = False

    def stop_running(self) -> None:
        """Interrupt the running statement, if any, at once (the pool's STOP_SIGNAL: its step was given up). Called
        from the signal handler in the main thread, which never holds the condition."""
        with self.condition:
            if self.target is not None:
                self.target.interrupt()

    def _stalled(self) -> bool:
        """Whether the statement has been neither running nor waiting for a core for WALL_BACKSTOP times the limit
        (its wall time, less its thread's wait for a core where the system reports it)."""
        backstop = self.time_limit_s * WALL_BACKSTOP
        wall = self.wall_clock() - self.wall_start
        if wall <= backstop:
            return False  # the wait is read only past the backstop: most statements end long before
        queued = self.queued_clock(self.thread_id)
        if queued is None or self.queued_start is None:
            return True
        return wall - (queued - self.queued_start) > backstop

    def _changed(self, generation: int) -> Callable[[], bool]:
        """Whether the statement watched at `generation` has ended (another started or none runs)."""
        return lambda: self.generation != generation


class StatementThread:
    """The thread that runs statements, one at a time (DuckDB's per-thread state stays warm between them); the main
    thread stays free to read requests and to take the pool's STOP_SIGNAL."""

    def __init__(self) -> None:
        # Each thread reads a queue of its own: a retired thread must never take a job meant for its successor.
        self.jobs: queue.SimpleQueue[Callable[[], None] | None] | None = None
        self.done: queue.SimpleQueue[None] = queue.SimpleQueue()
        self.thread_id = 0

    def run(self, job: Callable[[], None]) -> None:
        if self.jobs is None:
            jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
            started = threading.Event()
            threading.Thread(target=self._serve, args=(jobs, started), daemon=True, name="sql-statement").start()
            started.wait()
            self.jobs = jobs
        self.jobs.put(job)
        self.done.get()

    def retire(self) -> None:
        if self.jobs is not None:
            self.jobs.put(None)
        self.jobs = None

    def _serve(self, jobs: queue.SimpleQueue[Callable[[], None] | None], started: threading.Event) -> None:
        self.thread_id = threading.get_native_id()
        started.set()
        while (job := jobs.get()) is not None:
            try:
                job()
            finally:
                job = None  # the finished statement's closure (and the engine it names) is not kept while idle
                self.done.put(None)


def serve(requests: BinaryIO, replies: BinaryIO, query_mb: int, cache_mb: int, idle_slack_mb: int) -> None:
    from metric_tracker_rl.sql.engine import TIME_LIMIT_S, open_database

    database = open_database()
    database.execute("SELECT 1").fetchall()
    watchdog = Watchdog(TIME_LIMIT_S)
    signal.signal(STOP_SIGNAL, lambda *_: watchdog.stop_running())
    limit = address_space_bytes() + (query_mb + cache_mb) * 2**20
    with contextlib.suppress(ValueError, OSError):  # an address-space limit is a Linux and macOS facility
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    # Past this the worker retires after its reply (the pool starts a fresh one): memory the allocators kept from
    # earlier queries must not leave the next query less than half its room.
    retire_at = limit - query_mb * 2**20 // 2
    episodes: dict[int, EpisodeTables] = {}
    runner = StatementThread()
    retire_idle_at = resident_bytes() + idle_slack_mb * 2**20
    write_reply(replies, ("ready", os.getpid()))
    try:
        _serve_requests(requests, replies, database, episodes, runner, watchdog, (retire_at, retire_idle_at))
    finally:
        # Closed here, not left for the interpreter to tear down at exit (DuckDB's bindings then report every
        # object still alive as a leak on stderr).
        runner.retire()
        for episode in episodes.values():
            episode.close()
        episodes.clear()
        database.close()


def _forget(episodes: dict[int, EpisodeTables], keys: list[int]) -> None:
    """Close the episodes of `keys`, and give what they held back to the system."""
    from metric_tracker_rl.sql.allocator import malloc_trim

    closed = [episode for episode in (episodes.pop(key, None) for key in keys) if episode is not None]
    for episode in closed:
        episode.close()
    if closed and (trim := malloc_trim()) is not None:
        del episode, closed
        trim()


def _serve_requests(
    requests: BinaryIO,
    replies: BinaryIO,
    database: DuckDBPyConnection,
    episodes: dict[int, EpisodeTables],
    runner: StatementThread,
    watchdog: Watchdog,
    retire: tuple[int, int],
) -> None:
    """Answer statements until the requests end or a reply says this worker retires or restarts. `retire`: the
    address space past which a statement's reply retires it, and the resident memory past which one that holds no
    episode after a forget does."""
    retire_at, retire_idle_at = retire
    from metric_tracker_rl.sql.engine import MEMORY_MESSAGE, EpisodeTables, Refusal

    while True:
        try:
            request = pickle.load(requests)
        except EOFError:
            return
        if request[0] == "forget":
            _forget(episodes, request[1])
            bloated = not episodes and resident_bytes() > retire_idle_at
            write_reply(replies, ("forgot", bloated))
            if bloated:
                return
            continue
        _, key, tables, sql, offset, limit_rows, forget = request
        _forget(episodes, forget)
        replied: list[tuple[Any, ...]] = []

        def answer(
            key: int = key,
            tables: Any = tables,
            sql: str = sql,
            offset: int = offset,
            limit_rows: int = limit_rows,
            replied: list[tuple[Any, ...]] = replied,
        ) -> None:
            try:
                if tables is not None:
                    episodes.pop(key, None)
                    episodes[key] = EpisodeTables(database, tables)
                episode = episodes[key]
                watchdog.start(episode, runner.thread_id)
                try:
                    columns, rows, count = episode.run(sql, offset, limit_rows)
                finally:
                    watchdog.stop()
                replied.append(("ok", columns, rows, count, False))
            except Refusal as refusal:
                replied.append(("refused", str(refusal), refusal.restart))
            except MemoryError:
                replied.append(("refused", MEMORY_MESSAGE, True))
            except Exception as exc:  # any other failure of the driver is the agent's query's, never the server's
                traceback.print_exc(file=sys.stderr)
                replied.append(
                    (
                        "refused",
                        f"the SQL engine could not run this statement ({type(exc).__name__}: {str(exc)[:200]})",
                        True,
                    )
                )

        try:
            runner.run(answer)
        except RuntimeError:  # no room left for a thread's stack: this worker is done
            replied.append(("refused", MEMORY_MESSAGE, True))
        reply = replied[0] if replied else ("refused", MEMORY_MESSAGE, True)
        if watchdog.stalled and reply[0] == "refused":
            reply = ("stalled", True)  # the machine's doing, not the statement's: the sandbox runs it again
        if reply[0] == "ok" and address_space_bytes() > retire_at:
            reply = (*reply[:-1], True)
        write_reply(replies, reply)
        if reply[-1]:
            return  # the pool starts a fresh worker
        del request, tables, answer  # an episode's arrays stay in `episodes` alone: forgetting it frees them


def main() -> None:
    query_mb, cache_mb, idle_slack_mb = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    os.chdir("/")
    import duckdb  # noqa: F401 - imported before the address-space limit is measured
    import numpy  # noqa: F401
    import pandas  # noqa: F401

    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write to the reply pipe
    serve(requests, replies, query_mb, cache_mb, idle_slack_mb)


if __name__ == "__main__":
    main()
