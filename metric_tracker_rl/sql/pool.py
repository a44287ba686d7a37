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
import signal
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
from metric_tracker_rl.sql.worker import REPLY_HEADER, STOP_SIGNAL

DEFAULT_WORKERS = 3
KILL_GRACE_S = 0.5  # past the time limit before a worker that does not answer is killed
LOAD_GRACE_S = 2.0  # more for a statement whose episode's tables are sent with it
EXIT_GRACE_S = 2.0  # at the interpreter's exit, for the workers to close their databases before they are killed
# A statement's limit is the worker's own CPU time where the system reports it (Linux): a worker that a busy machine
# leaves waiting for a core is not the statement's fault, while a runaway burns CPU and meets the limit all the same.
# WALL_BACKSTOP bounds the wait in wall time too, for a worker that neither answers nor runs: less the time its
# threads waited for a core (metric_tracker_rl.sql.schedstat), so a busy machine does not stop a starved worker.
WALL_BACKSTOP = 8.0  # times the CPU deadline
POLL_S = 0.05
READ_BYTES = 1 << 20  # the most one read of a reply pipe takes
# What a reply pipe's failure raises as it is read: its end (the worker died), a broken reply, the pool closing it.
_PIPE_FAILURES = (EOFError, pickle.UnpicklingError, OSError, ValueError)
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
START_TIMEOUT_S = 60.0  # for a worker to say it is ready, and for a statement to wait for one that starts
FIRST_BACKOFF_S = 0.25  # after a worker failed before it was ready; doubled with each failure in a row
# Signals that end a worker from outside (an operator, the OOM killer): no fault of the worker's code, so a fresh one
# starts at once. A worker that exits with an error or crashes (SIGSEGV, SIGABRT) on its own is backed off.
OUTSIDE_SIGNALS = frozenset({signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
WORKER_MODULE = "metric_tracker_rl.sql.worker"
# A worker left holding no episode after a forget retires (a fresh one starts) when its resident memory is this far
# past what it held when it became ready: what DuckDB and the allocators keep from a load goes back to the system.
IDLE_SLACK_MB = 64
MAX_BACKOFF_S = 4.0
# How long a statement waits for a busy worker that holds its episode's tables before loading them into an idle
# one (evicting another episode's): a holder busy with a slow statement may take the whole time limit.
HOLDER_WAIT_S = 0.5
# How long a statement told to stop (its caller gave up) may take to answer before its worker is killed: DuckDB
# checks for an interrupt often, but planning or converting a result is not interrupted.
STOP_WAIT_S = 2.0
# The peer address of the connection a step came from; set by the server for each connection, read where a SQL
# step is scheduled (MetricTrackerRlEnvironment.step_async).
CLIENT: ContextVar[str] = ContextVar("sql_client", default="local")
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # the directory that holds the package


class WorkerFailed(Exception):
    """The worker did not answer: it was killed at the deadline, or died (its address-space limit)."""

    def __init__(self, timed_out: bool, started: bool = True, sent: bool = True, stalled: bool = False) -> None:
        super().__init__("timed out" if timed_out else "died" if started else "could not start")
        self.timed_out = timed_out
        self.stalled = stalled  # killed at WALL_BACKSTOP with CPU time to spare: the machine's doing
        self.started = started
        self.sent = sent  # False: the worker was gone before it received the statement (it can go to another)
        self.seconds = 0.0  # what the statement cost its worker until it failed (SqlPool.run_async)


class Overdue:
    """Whether a worker that has not answered is past its deadline: `deadline_s` of its CPU time (`cpu`, None where
    the system does not tell), or WALL_BACKSTOP times it in wall time less its threads' wait for a core (`queued`,
    by thread; empty where not reported). Without CPU time, the deadline is wall time."""

    def __init__(self, deadline_s: float, cpu: Callable[[], float | None],
                 queued: Callable[[], Mapping[int, float]], wall: Callable[[], float] = time.monotonic,
                 cpu_start: float | None = None) -> None:
        """`cpu_start`: the worker's CPU time when the statement was sent, where read then (else read now)."""
        self.deadline_s, self.cpu, self.queued, self.wall = deadline_s, cpu, queued, wall
        self.cpu_start = cpu() if cpu_start is None else cpu_start
        self.wall_start, self.queued_start = wall(), queued()
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
        self.process = subprocess.Popen([sys.executable, "-m", WORKER_MODULE, str(QUERY_MB),
                                         str(CACHE_MB), str(IDLE_SLACK_MB)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE,
                                        env=environment, cwd="/")
        if self.process.stdin is None or self.process.stdout is None:
            raise RuntimeError("a SQL worker is started with pipes to its stdin and stdout")
        self.requests: IO[bytes] = self.process.stdin
        self.replies: IO[bytes] = self.process.stdout
        self.loaded: collections.OrderedDict[int, int] = collections.OrderedDict()  # episode key -> bytes
        self.forget: list[int] = []
        self._stat: int | None = None  # /proc/<pid>/stat, opened on first read (read at every statement)
        # A selector, not `select.select`: a server with many connections open gives the pipes descriptors past
        # 1023, which `select` refuses. One for the worker's life: a reply is awaited at every statement.
        self._replies_ready = selectors.DefaultSelector()
        self._replies_ready.register(self.replies, selectors.EVENT_READ)
        self._received = bytearray()  # what the reply pipe gave so far of the next reply (read unbuffered)

    def wait_ready(self) -> None:
        """Return once the worker says it is ready; WorkerFailed(started=False) when it ends first (its exit
        status is then its own, read before any kill of ours) or says nothing within START_TIMEOUT_S."""
        self._answer_within(START_TIMEOUT_S, started=False)

    def tell(self, request: tuple[Any, ...], timeout_s: float) -> tuple[Any, ...]:
        """The reply to a request that runs no statement (the worker answers it at once), awaited in wall time."""
        self._send(request)
        return self._answer_within(timeout_s, started=True)

    def _answer_within(self, timeout_s: float, started: bool) -> tuple[Any, ...]:
        deadline = time.monotonic() + timeout_s
        try:
            while (remaining := deadline - time.monotonic()) > 0:
                said = self._replies_ready.select(min(remaining, POLL_S))
                if said and (reply := self._received_reply(self._read_some())) is not None:
                    return reply
        except _PIPE_FAILURES:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=EXIT_GRACE_S)
            self.kill()
            raise WorkerFailed(timed_out=False, started=started) from None
        self.kill()
        raise WorkerFailed(timed_out=True, started=started)

    def killed_from_outside(self) -> bool:
        """Whether the worker, now ended, was ended by a signal from outside (see OUTSIDE_SIGNALS)."""
        status = self.process.returncode
        return status is not None and status < 0 and -status in OUTSIDE_SIGNALS

    def call(self, request: tuple[Any, ...], deadline_s: float, cpu_start: float | None) -> tuple[Any, ...]:
        """The reply to `request`; `cpu_start` is the worker's CPU time read just before (None: not read)."""
        self.send(request)
        return self._reply(deadline_s, cpu_start)

    async def call_async(self, request: tuple[Any, ...], deadline_s: float, cpu_start: float | None
                         ) -> tuple[Any, ...]:
        """`call` for the event loop: the reply is read as its pieces arrive (the loop watches the pipe) and the
        deadline is checked on a timer, so no thread waits for the worker. The request is small (no tables): the
        idle worker's empty pipe takes it whole at once. Cancelled, it leaves the worker mid-statement and its reply
        unread: the caller stops it (`SqlPool` drains it) or kills it."""
        self.send(request)
        return await self.reply_async(deadline_s, cpu_start)

    async def reply_async(self, deadline_s: float, cpu_start: float | None) -> tuple[Any, ...]:
        """The worker's next reply, or WorkerFailed (the worker killed) past its deadline (see `Overdue`)."""
        overdue: Overdue | None = None

        def past_deadline() -> bool:  # watched from the first poll that finds no reply, as in `_reply`
            nonlocal overdue
            if overdue is None:
                overdue = Overdue(deadline_s, self.cpu_seconds, lambda: process_queued_s(self.process.pid),
                                  cpu_start=cpu_start)
            return overdue()

        return await self._await_reply(past_deadline, lambda: overdue is not None and overdue.stalled)

    async def stopped_reply(self, wall_s: float) -> tuple[Any, ...]:
        """The reply of a statement told to stop: STOP_SIGNAL now and at every poll (a signal that came before the
        statement began is lost), for at most `wall_s` of wall time; past it, WorkerFailed (the worker killed)."""
        until = time.monotonic() + wall_s

        def stop_or_give_up() -> bool:
            with contextlib.suppress(OSError):
                os.kill(self.process.pid, STOP_SIGNAL)
            return time.monotonic() > until

        stop_or_give_up()
        return await self._await_reply(stop_or_give_up, lambda: False)

    async def _await_reply(self, overdue: Callable[[], bool], stalled: Callable[[], bool]) -> tuple[Any, ...]:
        """The next reply, read on the event loop; `overdue` is asked at every poll without one (True: the worker is
        killed and WorkerFailed raised). A cancellation leaves the worker as it is, its reply still to come."""
        loop, fd = asyncio.get_running_loop(), self.reply_fd
        answered: asyncio.Future[tuple[Any, ...]] = loop.create_future()
        timer: asyncio.TimerHandle | None = None

        def finish(reply: tuple[Any, ...] | None, failure: WorkerFailed | None = None) -> None:
            loop.remove_reader(fd)
            if timer is not None:
                timer.cancel()
            if answered.done():
                return
            if failure is not None:
                self.kill()
                answered.set_exception(failure)
            elif reply is not None:
                answered.set_result(reply)

        def readable() -> None:
            try:
                reply = self._received_reply(self._read_some())
            except _PIPE_FAILURES:
                finish(None, WorkerFailed(timed_out=False))
                return
            if reply is not None:
                finish(reply)

        def check() -> None:
            nonlocal timer
            if overdue():
                finish(None, WorkerFailed(timed_out=True, stalled=stalled()))
            else:
                timer = loop.call_later(POLL_S, check)

        timer = loop.call_later(POLL_S, check)
        loop.add_reader(fd, readable)
        try:
            return await answered
        finally:
            if not answered.done():  # cancelled: stop watching; the reply stays in the pipe for whoever reads next
                loop.remove_reader(fd)
                timer.cancel()

    def send(self, request: tuple[Any, ...]) -> None:
        if not self.alive:  # ended while idle (killed from outside): the statement can go to another worker
            self.kill()
            raise WorkerFailed(timed_out=False, sent=False)
        try:
            pickle.dump(request, self.requests, protocol=pickle.HIGHEST_PROTOCOL)
            self.requests.flush()
        except (BrokenPipeError, OSError, ValueError):  # ValueError: the pool closed the pipe
            self.kill()
            raise WorkerFailed(timed_out=False, sent=False) from None

    def _reply(self, deadline_s: float, cpu_start: float | None) -> tuple[Any, ...]:
        """The worker's next reply, or WorkerFailed. The deadline is watched from the first poll that finds no
        reply (most replies come before it): its CPU time from `cpu_start`, its wall backstop and its threads'
        wait for a core from then, so the backstop is never reached sooner than if it were watched from the start."""
        try:
            overdue: Overdue | None = None
            while True:
                if self._replies_ready.select(POLL_S):
                    reply = self._received_reply(self._read_some())
                    if reply is not None:
                        return reply
                    continue
                if overdue is None:
                    overdue = Overdue(deadline_s, self.cpu_seconds, lambda: process_queued_s(self.process.pid),
                                      cpu_start=cpu_start)
                if overdue():
                    self.kill()
                    raise WorkerFailed(timed_out=True, stalled=overdue.stalled)
        except _PIPE_FAILURES:
            self.kill()
            raise WorkerFailed(timed_out=False) from None

    @property
    def reply_fd(self) -> int:
        return self.replies.fileno()

    def _read_some(self) -> bytes:
        """What the reply pipe holds now (at least a byte: called when it is readable); EOFError at its end."""
        piece = os.read(self.reply_fd, READ_BYTES)
        if not piece:
            raise EOFError("the SQL worker closed its reply pipe")
        return piece

    def _received_reply(self, piece: bytes) -> tuple[Any, ...] | None:
        """The reply, once `piece` completes it (None until then): its length first, then the pickled tuple."""
        self._received += piece
        if len(self._received) < REPLY_HEADER:
            return None
        end = REPLY_HEADER + int.from_bytes(self._received[:REPLY_HEADER], "big")
        if len(self._received) < end:
            return None
        body = bytes(self._received[REPLY_HEADER:end])
        del self._received[:end]
        reply = pickle.loads(body)
        if not isinstance(reply, tuple):
            raise pickle.UnpicklingError("a SQL worker's reply is a tuple")
        return reply

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
        self._replies_ready.close()

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
        self.start_failures = 0  # workers in a row that failed on their own before they were ready
        self._restarting = 0  # workers that died before they were ready, to be started again after a backoff
        self._busy = 0
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []  # run_async's, waiting
        self.stopped = 0  # statements stopped in their worker for a caller that gave up (the worker kept)
        self._draining: set[asyncio.Task[None]] = set()  # the stops under way (a reference, so none is collected)

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
            request, deadline = self._request(worker, key, tables, sql, offset, limit)
            began, cpu_began = time.monotonic(), worker.cpu_seconds()
            try:
                reply = worker.call(request, deadline, cpu_began)
            finally:
                _STATEMENT.seconds = getattr(_STATEMENT, "seconds", 0.0) + _spent(worker, began, cpu_began)
            healthy = not reply[-1]  # a worker that retires or must restart exits after its reply
            return reply
        finally:
            self._give_back(worker, healthy)

    async def run_async(self, key: int, tables: Callable[[], Mapping[str, ServedTable]], sql: str, offset: int,
                        limit: int) -> tuple[tuple[Any, ...], float]:
        """`run` for the event loop, and the seconds the statement held its worker (see `statement_seconds`): no
        thread waits for a worker or its reply. A statement that sends its episode's tables (megabytes down the
        pipe) writes them from a thread."""
        for _ in range(self.size + 1):
            try:
                return await self._run_once_async(key, tables, sql, offset, limit)
            except WorkerFailed as failure:
                if failure.sent:
                    raise
        raise WorkerFailed(timed_out=False)

    async def _run_once_async(self, key: int, tables: Callable[[], Mapping[str, ServedTable]], sql: str,
                              offset: int, limit: int) -> tuple[tuple[Any, ...], float]:
        """One try on one worker. Cancelled (the step was given up: its connection closed or its bound passed),
        the statement is stopped in its worker, which serves the next one as soon as it answers (`_drain`)."""
        worker = await self._take_async(key)
        healthy, drained = False, False
        try:
            request, deadline = self._request(worker, key, tables, sql, offset, limit)
            began, cpu_began = time.monotonic(), worker.cpu_seconds()
            # Tables (megabytes) are written from a thread; a statement alone goes down the idle pipe at once.
            sending = None if request[2] is None else asyncio.ensure_future(asyncio.to_thread(worker.send, request))
            try:
                if sending is None:
                    worker.send(request)
                else:
                    await asyncio.shield(sending)
                reply = await worker.reply_async(deadline, cpu_began)
            except WorkerFailed as failure:
                failure.seconds = _spent(worker, began, cpu_began)
                raise
            except asyncio.CancelledError:
                drained = True
                self._drain(worker, sending)
                raise
            spent = _spent(worker, began, cpu_began)
            healthy = not reply[-1]
            return reply, spent
        finally:
            if not drained:
                self._give_back(worker, healthy)

    def _drain(self, worker: _Worker, sending: asyncio.Future[None] | None) -> None:
        """Stop the statement a cancelled caller left in `worker` and give the worker back once it answers (killed
        and replaced if it does not within STOP_WAIT_S): a worker is busy until its reply is read."""

        async def drain() -> None:
            healthy = False
            try:
                if sending is not None:
                    await sending
                reply = await worker.stopped_reply(STOP_WAIT_S)
                healthy = not reply[-1]
                self.stopped += 1
            except (WorkerFailed, *_PIPE_FAILURES):
                pass
            finally:
                self._give_back(worker, healthy)

        task = asyncio.get_running_loop().create_task(drain())
        self._draining.add(task)
        task.add_done_callback(self._draining.discard)

    def _request(self, worker: _Worker, key: int, tables: Callable[[], Mapping[str, ServedTable]], sql: str,
                 offset: int, limit: int) -> tuple[tuple[Any, ...], float]:
        """The request for a statement over episode `key` (with its tables, where `worker` lacks them) and its
        deadline; notes what the worker holds after it."""
        with self._condition:  # `forget` changes what a worker holds from other threads
            send = None if key in worker.loaded else tables()
            if send is not None:
                worker.loaded[key] = 2 * _table_bytes(send) + 2**20  # arrays, frames over them, views
                while sum(worker.loaded.values()) > CACHE_MB * 2**20 and len(worker.loaded) > 1:
                    worker.forget.append(worker.loaded.popitem(last=False)[0])
            worker.loaded.move_to_end(key)
            forget, worker.forget = worker.forget, []
        deadline = TIME_LIMIT_S + KILL_GRACE_S + (LOAD_GRACE_S if send is not None else 0.0)
        return ("query", key, send, sql, offset, limit, forget), deadline

    def forget(self, key: int) -> None:
        """Episode `key` is closed: each worker holding its tables drops them, an idle one at once (told from a
        thread, so the memory goes back to the system now, not at its next statement), a busy one with its next
        statement."""
        with self._condition:
            for worker in self._workers:
                if worker.loaded.pop(key, None) is not None:
                    worker.forget.append(key)
            told = [worker for worker in self._idle if worker.forget]
            for worker in told:
                self._idle.remove(worker)
                self._busy += 1
        if told:
            threading.Thread(target=self._tell_forget, args=(told,), daemon=True, name="sql-forget").start()

    def _tell_forget(self, workers: list[_Worker]) -> None:
        """Have `workers` (idle ones `forget` took) close the episodes they are to forget, then give them back."""
        for worker in workers:
            healthy = False
            try:
                while True:
                    with self._condition:
                        forget, worker.forget = worker.forget, []
                    if not forget:
                        break
                    reply = worker.tell(("forget", forget), TIME_LIMIT_S + KILL_GRACE_S)
                    if reply[-1]:
                        break
                healthy = not forget or not reply[-1]
            except WorkerFailed:
                pass
            finally:
                self._give_back(worker, healthy)

    def close(self, grace_s: float = 0.0) -> None:
        """Stop every worker. With `grace_s`, each is first told that no statement follows (it then closes its
        database and exits), and only one still running after that time is killed."""
        with self._condition:
            self._closed = True
            workers, self._workers, self._idle = list(self._workers), set(), []
        deadline = time.monotonic() + grace_s
        if grace_s > 0:
            for worker in workers:
                with contextlib.suppress(OSError):
                    worker.requests.close()
        for worker in workers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            worker.kill()

    def worker_pids(self) -> list[int]:
        with self._condition:
            return sorted(worker.process.pid for worker in self._workers)

    def _take(self, key: int) -> _Worker:
        waiting_since = time.monotonic()
        with self._condition:
            while (worker := self._take_now(key, time.monotonic() - waiting_since)) is None:
                self._condition.wait(timeout=HOLDER_WAIT_S)
            return worker

    async def _take_async(self, key: int) -> _Worker:
        """`_take` for the event loop: it waits for a change in the pool (a worker given back or ready) on a
        future the change resolves, never on the condition."""
        loop, waiting_since = asyncio.get_running_loop(), time.monotonic()
        while True:
            changed: asyncio.Future[None] = loop.create_future()
            with self._condition:
                worker = self._take_now(key, time.monotonic() - waiting_since)
                if worker is not None:
                    return worker
                self._waiters.append((loop, changed))
            timer = loop.call_later(HOLDER_WAIT_S, _resolve, changed)
            try:
                await changed
            finally:
                timer.cancel()
                with self._condition:
                    if (loop, changed) in self._waiters:
                        self._waiters.remove((loop, changed))

    def _take_now(self, key: int, waited_s: float) -> _Worker | None:
        """The worker for a statement over episode `key`, waiting for `waited_s` so far, if one may take it now
        (the caller holds the condition); None to wait for a change. With no worker ready or busy, a statement
        waits for one that is starting, up to START_TIMEOUT_S; it is refused (the caller says retry) only when
        none is starting (each waits out its backoff after failing on its own) or that time has passed."""
        if self._closed:
            raise RuntimeError("the SQL pool is closed")
        while len(self._workers) + self._restarting < self.size:
            self._start()
        worker = self._pick(key, waited_s < HOLDER_WAIT_S)
        if worker is None:
            if not self._idle and not self._busy and (not self._workers or waited_s > START_TIMEOUT_S):
                raise WorkerFailed(timed_out=False, started=False)
            return None
        self._idle.remove(worker)
        self._busy += 1
        return worker

    def _changed(self) -> None:
        """Wake every statement waiting for a worker, in threads and on event loops (the caller holds the
        condition)."""
        self._condition.notify_all()
        for loop, changed in self._waiters:
            with contextlib.suppress(RuntimeError):  # a loop that has closed has no waiter left to wake
                loop.call_soon_threadsafe(_resolve, changed)
        self._waiters.clear()

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
                self._changed()  # the statements waiting for this worker's tables, and any other
                return
            self._workers.discard(worker)
            self.replaced += 1
            self._changed()  # statements waiting for the tables it held pick another worker
            if not self._closed:
                self._start()
        if worker.alive:
            worker.kill()

    def _start(self) -> None:
        """Start a worker (caller holds the condition); it joins the idle ones once it has said it is ready. One
        killed from outside before it is ready (the OOM killer, an operator) is replaced at once; one that fails on
        its own (it exits with an error, crashes, or never says it is ready) is replaced after a backoff that
        doubles with each such failure in a row, up to MAX_BACKOFF_S, for as long as the pool is open: the pool
        never gives up, and never spins on a worker that cannot start."""
        worker = _Worker()
        self._workers.add(worker)

        def ready() -> None:
            try:
                worker.wait_ready()
            except WorkerFailed as failure:
                if not failure.timed_out and worker.killed_from_outside():
                    self._replace_killed(worker)
                    return
                with self._condition:
                    self._workers.discard(worker)
                    self._restarting += 1  # counted as started: no statement starts another during the backoff
                    self.start_failures += 1
                    self.replaced += 1
                    self._changed()  # waiting statements learn that no worker is ready yet
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
                    self._changed()

        threading.Thread(target=ready, daemon=True, name="sql-worker-start").start()

    def _replace_killed(self, worker: _Worker) -> None:
        """Start another worker at once in place of `worker`, killed from outside while it started."""
        with self._condition:
            self._workers.discard(worker)
            self.replaced += 1
            if not self._closed and len(self._workers) + self._restarting < self.size:
                self._start()
            self._changed()


def _resolve(changed: asyncio.Future[None]) -> None:
    if not changed.done():
        changed.set_result(None)


def _spent(worker: _Worker, began: float, cpu_began: float | None) -> float:
    """What a statement cost its worker: its CPU time where the system reports it, so a busy machine does not make
    a cheap statement look slow; a quarter of the wall time where that is more (a statement that waits on memory,
    or a killed worker, which reports no CPU time)."""
    cpu, wall = worker.cpu_seconds(), time.monotonic() - began
    return max(cpu - cpu_began, wall / 4) if cpu is not None and cpu_began is not None else wall


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
            _POOL.close(grace_s=EXIT_GRACE_S)


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

