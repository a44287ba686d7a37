"""Where SQL runs: a small pool of worker processes (metric_tracker_rl.sql.worker), and fair turns at them.

A statement runs in a worker process whose address space is limited; the pool kills a worker that has not
answered by the time limit plus a grace period and starts a fresh one, so query planning, one long function call
and result conversion are all inside the limits, and a runaway costs one query's error, never the server. Each
worker keeps the tables of the episodes it served last (sent once, as arrays, then kept until the pool tells it to
forget them: the episode closed, or the worker's share of memory for tables is full). A statement goes to a worker
that holds its episode's tables; when those are all busy, it loads them into an idle worker only if that one has
room for them, and otherwise waits for a holder: with many sessions, sending an episode's tables again and again
(megabytes each time, while evicting another episode's) would cost far more than the wait.

`FairGate` (metric_tracker_rl.sql.fair_gate) hands out turns at the workers to the server's sessions: at most
`per_client` statements of one client run at once, the rest wait in that client's own queue, and a free worker
goes to the waiting client that runs the fewest. Clients whose statements are slow hold all workers but one
together, so slow queries from any number of addresses leave a worker to every other client's cheap ones. The
server names the client (its peer address) through `CLIENT`, which it sets for each connection; code outside a
server (tests, a trainer stepping environments in process) has no gate and takes the first free worker.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import contextlib
import os
import pickle
import selectors
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import IO, Any

from metric_tracker_rl.sql.columns import PackedTable, ServedTable
from metric_tracker_rl.sql.engine import CACHE_MB, QUERY_MB, TIME_LIMIT_S
from metric_tracker_rl.sql.fair_gate import FairGate
from metric_tracker_rl.sql.schedstat import process_queued_s, queued_since

DEFAULT_WORKERS = 3
KILL_GRACE_S = 0.5  # past the time limit before a worker that does not answer is killed
LOAD_GRACE_S = 2.0  # more for a statement whose episode's tables are sent with it
# A statement's limit is the worker's own CPU time where the system reports it (Linux): a worker that a busy machine
# leaves waiting for a core is not the statement's fault, while a runaway burns CPU and meets the limit all the same.
# WALL_BACKSTOP bounds the wait in wall time too, for a worker that neither answers nor runs: less the time its
# threads waited for a core (metric_tracker_rl.sql.schedstat), so a busy machine does not stop a starved worker.
WALL_BACKSTOP = 8.0  # times the CPU deadline
POLL_S = 0.05
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
START_TIMEOUT_S = 60.0
FIRST_BACKOFF_S = 0.25  # after a worker died before it was ready; doubled with each failure in a row
MAX_BACKOFF_S = 4.0
# How long a statement waits for a busy worker that holds its episode's tables before loading them into an idle
# one (evicting another episode's): a holder busy with a slow statement may take the whole time limit.
HOLDER_WAIT_S = 0.5
# The peer address of the connection a step came from; set by the server for each connection, read where a SQL
# step is scheduled (MetricTrackerRlEnvironment.step_async).
CLIENT: ContextVar[str] = ContextVar("sql_client", default="local")
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)


class WorkerFailed(Exception):
    """The worker did not answer: it was killed at the deadline, or died (its address-space limit)."""

    def __init__(self, timed_out: bool, started: bool = True, sent: bool = True, stalled: bool = False) -> None:
        super().__init__("timed out" if timed_out else "died" if started else "could not start")
        self.timed_out = timed_out
        self.stalled = stalled  # killed at WALL_BACKSTOP with CPU time to spare: the machine's doing
        self.started = started
        self.sent = sent  # False: the worker was gone before it received the statement (it can go to another)


class Overdue:
    """Whether a worker that has not answered is past its deadline: `deadline_s` of its CPU time (`cpu`, None where
    the system does not tell), or WALL_BACKSTOP times it in wall time less its threads' wait for a core (`queued`,
    by thread; empty where not reported). Without CPU time, the deadline is wall time."""

    def __init__(self, deadline_s: float, cpu: Callable[[], float | None],
                 queued: Callable[[], Mapping[int, float]], wall: Callable[[], float] = time.monotonic) -> None:
        self.deadline_s, self.cpu, self.queued, self.wall = deadline_s, cpu, queued, wall
        self.cpu_start, self.wall_start, self.queued_start = cpu(), wall(), queued()
        self.stalled = False  # overdue in wall time with CPU time to spare

    def __call__(self) -> bool:
        cpu = self.cpu()
        if cpu is not None and self.cpu_start is not None and cpu - self.cpu_start > self.deadline_s:
            return True
        backstop = self.deadline_s * (WALL_BACKSTOP if cpu is not None else 1.0)
        waited = self.wall() - self.wall_start
        # The wait for a core is read only past the backstop: most statements answer long before.
        over = waited > backstop and waited - queued_since(self.queued_start, self.queued()) > backstop
        self.stalled = over and cpu is not None
        return over


class _Worker:
    def __init__(self) -> None:
        # Nothing of the server's environment but what Python needs: no secret reaches a process that runs SQL.
        inherited = {name: os.environ[name] for name in ("PATH", "LANG", "LC_ALL", "VIRTUAL_ENV", "SYSTEMROOT")
                     if name in os.environ}
        environment = {**inherited, "MALLOC_ARENA_MAX": "2", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                       "HOME": "/", "PYTHONPATH": os.pathsep.join(filter(None, [_PACKAGE_ROOT,
                                                                               os.environ.get("PYTHONPATH")]))}
        self.process = subprocess.Popen([sys.executable, "-m", "metric_tracker_rl.sql.worker", str(QUERY_MB),
                                         str(CACHE_MB)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        env=environment, cwd="/")
        if self.process.stdin is None or self.process.stdout is None:
            raise RuntimeError("a SQL worker is started with pipes to its stdin and stdout")
        self.requests: IO[bytes] = self.process.stdin
        self.replies: IO[bytes] = self.process.stdout
        self.loaded: collections.OrderedDict[int, int] = collections.OrderedDict()  # episode key -> bytes
        self.forget: list[int] = []
        self._stat: int | None = None  # /proc/<pid>/stat, opened on first read (read at every statement)

    def wait_ready(self) -> None:
        self._reply(START_TIMEOUT_S)

    def call(self, request: tuple[Any, ...], deadline_s: float) -> tuple[Any, ...]:
        if not self.alive:  # ended while idle (killed from outside): the statement can go to another worker
            self.kill()
            raise WorkerFailed(timed_out=False, sent=False)
        try:
            pickle.dump(request, self.requests, protocol=pickle.HIGHEST_PROTOCOL)
            self.requests.flush()
        except (BrokenPipeError, OSError):
            self.kill()
            raise WorkerFailed(timed_out=False, sent=False) from None
        return self._reply(deadline_s)

    def _reply(self, deadline_s: float) -> tuple[Any, ...]:
        # A selector, not `select.select`: a server with many connections open gives the pipes descriptors past
        # 1023, which `select` refuses.
        try:
            overdue = Overdue(deadline_s, self.cpu_seconds, lambda: process_queued_s(self.process.pid))
            with selectors.DefaultSelector() as replies:
                replies.register(self.replies, selectors.EVENT_READ)
                while True:
                    if replies.select(POLL_S):
                        return pickle.load(self.replies)
                    if overdue():
                        self.kill()
                        raise WorkerFailed(timed_out=True, stalled=overdue.stalled)
        except (EOFError, pickle.UnpicklingError, OSError, ValueError):  # ValueError: the pool closed the pipe
            self.kill()
            raise WorkerFailed(timed_out=False) from None

    def cpu_seconds(self) -> float | None:
        """The worker's CPU time so far (user and system, every thread), or None where /proc does not tell."""
        try:
            if self._stat is None:
                self._stat = os.open(f"/proc/{self.process.pid}/stat", os.O_RDONLY)
            fields = os.pread(self._stat, 4096, 0).rsplit(b")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
        except (OSError, IndexError, ValueError):
            return None

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.process.kill()
        self.process.wait()
        for pipe in (self.requests, self.replies):
            with contextlib.suppress(OSError):
                pipe.close()
        if self._stat is not None:
            with contextlib.suppress(OSError):
                os.close(self._stat)
            self._stat = None

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


class SqlPool:
    """`size` worker processes, started on the first query; `run` takes a free one (one that holds the
    episode's tables first) and waits for one when all are busy."""

    def __init__(self, size: int = DEFAULT_WORKERS) -> None:
        self.size = size
        self._condition = threading.Condition()
        self._idle: list[_Worker] = []
        self._workers: set[_Worker] = set()  # started or starting
        self._closed = False
        self.replaced = 0  # workers killed or lost and started again (for tests and operators)
        self.start_failures = 0  # workers in a row that could not start
        self._restarting = 0  # workers that died before they were ready, to be started again after a backoff
        self._busy = 0

    def run(self, key: int, tables: Callable[[], Mapping[str, ServedTable]], sql: str, offset: int,
            limit: int) -> tuple[Any, ...]:
        """The worker's reply to one statement over episode `key` (`tables()` gives its tables when the worker
        lacks them). Raises WorkerFailed when the worker had to be killed or died; a fresh one replaces it. A
        worker found gone before it received the statement (killed from outside) passes it to another."""
        for _ in range(self.size + 1):
            try:
                return self._run_once(key, tables, sql, offset, limit)
            except WorkerFailed as failure:
                if failure.sent:
                    raise
        raise WorkerFailed(timed_out=False)

    @property
    def busy(self) -> int:
        """Workers running a statement now."""
        with self._condition:
            return self._busy

    def _run_once(self, key: int, tables: Callable[[], Mapping[str, ServedTable]], sql: str, offset: int,
                  limit: int) -> tuple[Any, ...]:
        worker = self._take(key)
        healthy = False
        try:
            with self._condition:  # `forget` changes what a worker holds from other threads
                send = None if key in worker.loaded else tables()
                if send is not None:
                    worker.loaded[key] = 2 * _table_bytes(send) + 2**20  # arrays, frames over them, views
                    while sum(worker.loaded.values()) > CACHE_MB * 2**20 and len(worker.loaded) > 1:
                        worker.forget.append(worker.loaded.popitem(last=False)[0])
                worker.loaded.move_to_end(key)
                forget, worker.forget = worker.forget, []
            deadline = TIME_LIMIT_S + KILL_GRACE_S + (LOAD_GRACE_S if send is not None else 0.0)
            began, cpu_began = time.monotonic(), worker.cpu_seconds()
            try:
                reply = worker.call(("query", key, send, sql, offset, limit, forget), deadline)
            finally:
                # The worker's CPU time where the system reports it, so a busy machine does not make a cheap
                # statement look slow; a quarter of the wall time where that is more (a statement that waits on
                # memory, or a killed worker, which reports no CPU time).
                cpu, wall = worker.cpu_seconds(), time.monotonic() - began
                spent = max(cpu - cpu_began, wall / 4) if cpu is not None and cpu_began is not None else wall
                _STATEMENT.seconds = getattr(_STATEMENT, "seconds", 0.0) + spent
            healthy = not reply[-1]  # a worker that retires or must restart exits after its reply
            return reply
        finally:
            self._give_back(worker, healthy)

    def forget(self, key: int) -> None:
        """Episode `key` is closed: each worker holding its tables drops them with its next statement."""
        with self._condition:
            for worker in self._workers:
                if worker.loaded.pop(key, None) is not None:
                    worker.forget.append(key)

    def close(self) -> None:
        with self._condition:
            self._closed = True
            workers, self._workers, self._idle = list(self._workers), set(), []
        for worker in workers:
            worker.kill()

    def worker_pids(self) -> list[int]:
        with self._condition:
            return sorted(worker.process.pid for worker in self._workers)

    def _take(self, key: int) -> _Worker:
        with self._condition:
            if self._closed:
                raise RuntimeError("the SQL pool is closed")
            while len(self._workers) + self._restarting < self.size:
                self._start()
            waiting_since = time.monotonic()
            while (worker := self._pick(key, time.monotonic() - waiting_since < HOLDER_WAIT_S)) is None:
                if self.start_failures and not self._idle and not self._busy:
                    raise WorkerFailed(timed_out=False, started=False)  # none is ready: the caller says retry
                self._condition.wait(timeout=HOLDER_WAIT_S)
            self._idle.remove(worker)
            self._busy += 1
            return worker

    def _pick(self, key: int, patient: bool) -> _Worker | None:
        """The idle worker for a statement over episode `key` (the caller holds the condition), or None to wait:
        one that holds the tables; else, while a busy one holds them and the statement is `patient`, an idle one
        with room to load them without evicting another episode's; else the idle one holding the fewest tables.
        A statement stops being patient after HOLDER_WAIT_S: a holder busy with a slow statement is not waited
        for longer than loading the tables elsewhere costs."""
        if not self._idle:
            return None
        holding = next((w for w in self._idle if key in w.loaded), None)
        if holding is not None:
            return holding
        size = next((w.loaded[key] for w in self._workers if key in w.loaded), None)
        if size is None or not patient:
            return min(self._idle, key=lambda w: sum(w.loaded.values()))
        roomy = [w for w in self._idle if sum(w.loaded.values()) + size <= CACHE_MB * 2**20]
        return min(roomy, key=lambda w: sum(w.loaded.values())) if roomy else None

    def _give_back(self, worker: _Worker, healthy: bool) -> None:
        with self._condition:
            self._busy -= 1
            if healthy and worker.alive and worker in self._workers:
                self._idle.append(worker)
                self._condition.notify_all()  # the statements waiting for this worker's tables, and any other
                return
            self._workers.discard(worker)
            self.replaced += 1
            self._condition.notify_all()  # statements waiting for the tables it held pick another worker
            if not self._closed:
                self._start()
        if worker.alive:
            worker.kill()

    def _start(self) -> None:
        """Start a worker (caller holds the condition); it joins the idle ones once it has said it is ready. One
        that dies before it is ready (the OOM killer, a full machine) is replaced after a backoff that doubles with
        each failure in a row, up to MAX_BACKOFF_S, for as long as the pool is open: the pool never gives up."""
        worker = _Worker()
        self._workers.add(worker)

        def ready() -> None:
            try:
                worker.wait_ready()
            except WorkerFailed:
                with self._condition:
                    self._workers.discard(worker)
                    self._restarting += 1  # counted as started: no statement starts another during the backoff
                    self.start_failures += 1
                    self.replaced += 1
                    self._condition.notify_all()  # waiting statements learn that no worker is ready yet
                    backoff = start_backoff(self.start_failures)
                time.sleep(backoff)
                with self._condition:
                    self._restarting -= 1
                    if not self._closed and len(self._workers) + self._restarting < self.size:
                        self._start()
                return
            with self._condition:
                self.start_failures = 0
                if worker in self._workers:
                    self._idle.append(worker)
                    self._condition.notify_all()

        threading.Thread(target=ready, daemon=True, name="sql-worker-start").start()


def start_backoff(failures: int) -> float:
    """Seconds to wait before starting a worker again after `failures` failed starts in a row."""
    return min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2 ** (failures - 1))


def _table_bytes(tables: Mapping[str, ServedTable]) -> int:
    return sum(table.nbytes if isinstance(table, PackedTable) else sum(
        getattr(column, "nbytes", 0) or getattr(getattr(column, "codes", None), "nbytes", 0)
        for column in table.values()) for table in tables.values())


_POOL: SqlPool | None = None
_POOL_LOCK = threading.Lock()
_size = DEFAULT_WORKERS


def configure(workers: int) -> None:
    """Set the pool's size (the server's SQL_WORKERS); before the first query, or the pool is restarted."""
    global _POOL, _size
    with _POOL_LOCK:
        _size = workers
        if _POOL is not None and _POOL.size != workers:
            _POOL.close()
            _POOL = None


def pool() -> SqlPool:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = SqlPool(_size)
        return _POOL


@atexit.register
def _stop_workers() -> None:
    with _POOL_LOCK:
        if _POOL is not None:
            _POOL.close()


_STATEMENT = threading.local()  # `seconds`: how long this thread's statements held a worker (see statement_seconds)


def statement_seconds(run: Callable[[], Any]) -> tuple[Any, float]:
    """`run()`'s result and what the statements it ran in this thread cost their workers (CPU seconds, or wall
    seconds where the system does not tell), without the time they waited for a worker to start or come free."""
    _STATEMENT.seconds = 0.0
    result = run()
    return result, _STATEMENT.seconds


_GATES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, FairGate] = weakref.WeakKeyDictionary()


def gate() -> FairGate:
    """The running event loop's gate, sized to the pool: one client may hold all workers but one."""
    loop = asyncio.get_running_loop()
    found = _GATES.get(loop)
    if found is None:
        found = _GATES[loop] = FairGate(_size, max(1, _size - 1))
    return found


# The threads that wait for SQL workers on behalf of the event loop: apart from the default pool every other
# worker-thread step uses, so waiting statements never hold up a submission or a preview.
_SQL_THREADS: Any = None


def sql_threads() -> Any:
    global _SQL_THREADS
    with _POOL_LOCK:
        if _SQL_THREADS is None:
            from concurrent.futures import ThreadPoolExecutor

            _SQL_THREADS = ThreadPoolExecutor(max_workers=max(4, 2 * _size), thread_name_prefix="sql")
        return _SQL_THREADS

