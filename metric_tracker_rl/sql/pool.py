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
import contextlib
import subprocess
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any

from metric_tracker_rl.sql import ledger
from metric_tracker_rl.sql.columns import ServedTable, table_bytes
from metric_tracker_rl.sql.engine import CACHE_MB, TIME_LIMIT_S
from metric_tracker_rl.sql.fair_gate import FairGate
from metric_tracker_rl.sql.worker_process import (
    EXIT_GRACE_S,
    PIPE_FAILURES,
    START_TIMEOUT_S,
    WorkerFailed,
    WorkerProcess,
    spent_by,
)

DEFAULT_WORKERS = 3
KILL_GRACE_S = 0.5  # past the time limit before a worker that does not answer is killed
LOAD_GRACE_S = 2.0  # more for a statement whose episode's tables are sent with it
FIRST_BACKOFF_S = 0.25  # after a worker failed before it was ready; doubled with each failure in a row
MAX_BACKOFF_S = 4.0
# How long a statement waits for a busy worker holding its episode's tables before loading them into an idle one
# (evicting another episode's): a holder busy with a slow statement may take the whole time limit.
HOLDER_WAIT_S = 0.5
# How long a statement told to stop (its caller gave up, or its turn was demoted) may take to answer before its
# worker is killed: DuckDB checks for an interrupt often, but planning or converting a result is not interrupted;
# LOAD_GRACE_S more for one sent with its episode's tables (they load before it runs, and its worker keeps them).
STOP_WAIT_S = 0.5
# The longest a turn whose statement had to be killed waits for the killed worker's replacement to be ready.
REPLACED_WAIT_S = 10.0
# The peer address of the connection a step came from; set by the server for each connection, read where a SQL
# step is scheduled (MetricTrackerRlEnvironment.step_async).
CLIENT: ContextVar[str] = ContextVar("sql_client", default="local")
# Where a statement stopped in its worker (its caller gave up, or its turn was demoted) adds the CPU seconds it cost
# its worker, when it answered its stop: a busy machine stretches a cheap statement's wall time, not its CPU time.
STOPPED_CPU: ContextVar[list[float] | None] = ContextVar("sql_stopped_cpu", default=None)


class SqlPool:
    """`size` worker processes, started on the first query; `run` takes a free one (one that holds the
    episode's tables first) and waits for one when all are busy."""

    def __init__(self, size: int = DEFAULT_WORKERS) -> None:
        self.size = size
        self._condition = threading.Condition()
        self._idle: list[WorkerProcess] = []
        self._workers: set[WorkerProcess] = set()  # started or starting
        self._closed = False
        self.replaced = 0  # workers killed or lost and started again (for tests and operators)
        self.start_failures = 0  # workers in a row that failed on their own before they were ready
        self._restarting = 0  # workers that died before they were ready, to be started again after a backoff
        self._busy = 0
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []  # run_async's, waiting
        self.stopped = 0  # statements stopped in their worker for a caller that gave up (the worker kept)
        self._draining: set[asyncio.Task[None]] = set()  # the stops under way (a reference, so none is collected)

    def run(
        self, key: int, tables: Callable[[], Mapping[str, ServedTable]], sql: str, offset: int, limit: int
    ) -> tuple[Any, ...]:
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
    def busy(self) -> int:  # workers running a statement now
        with self._condition:
            return self._busy

    def _run_once(
        self, key: int, tables: Callable[[], Mapping[str, ServedTable]], sql: str, offset: int, limit: int
    ) -> tuple[Any, ...]:
        worker = self._take(key)
        healthy = False
        try:
            request, deadline = self._request(worker, key, tables, sql, offset, limit)
            reply = worker.call(request, deadline, worker.cpu_seconds())
            healthy = not reply[-1]  # a worker that retires or must restart exits after its reply
            return reply
        finally:
            self._give_back(worker, healthy)

    async def run_async(
        self, key: int, tables: Callable[[], Mapping[str, ServedTable]], sql: str, offset: int, limit: int
    ) -> tuple[tuple[Any, ...], float]:
        """`run` for the event loop, and the seconds the statement held its worker (`worker_process.spent_by`): no
        thread waits for a worker or its reply. A statement that sends its episode's tables (megabytes down the
        pipe) writes them from a thread."""
        for _ in range(self.size + 1):
            try:
                return await self._run_once_async(key, tables, sql, offset, limit)
            except WorkerFailed as failure:
                if failure.sent:
                    raise
        raise WorkerFailed(timed_out=False)

    async def _run_once_async(
        self, key: int, tables: Callable[[], Mapping[str, ServedTable]], sql: str, offset: int, limit: int
    ) -> tuple[tuple[Any, ...], float]:
        """One try on one worker. Cancelled (the step was given up: its connection closed or its bound passed; or
        its turn demoted), the statement is stopped in its worker, which serves the next one as soon as it answers
        (`_drain`); the cancelled call returns once the worker is free again, so its caller's turn at the gate lasts
        as long as the worker is held."""
        asked = time.monotonic()
        try:
            worker = await self._take_async(key)
        except asyncio.CancelledError:  # stopped before it reached a worker: it cost none
            if (stopped := STOPPED_CPU.get()) is not None:
                stopped.append(0.0)
            raise
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
                sent = time.monotonic()
                reply = await worker.reply_async(deadline, cpu_began)
            except WorkerFailed as failure:
                failure.seconds = spent_by(worker, began, cpu_began)
                if failure.timed_out and not failure.stalled:  # the statement's own doing: killed at its limit
                    _note_kill()
                    self._give_back(worker, healthy=False)
                    drained = True  # given back: its replacement is awaited within the caller's turn
                    await self.replaced_ready()
                raise
            except asyncio.CancelledError:
                drained = True
                stopping = self._drain(worker, sending, cpu_began)
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.shield(stopping)  # the caller's turn ends once its worker is free (or replaced)
                raise
            spent = spent_by(worker, began, cpu_began)
            cpu_now = worker.cpu_seconds()
            ledger.record_attempt(
                began - asked,
                sent - began,
                time.monotonic() - sent,
                None if cpu_now is None or cpu_began is None else cpu_now - cpu_began,
            )
            healthy = not reply[-1]
            return reply, spent
        finally:
            if not drained:
                self._give_back(worker, healthy)

    def _drain(
        self, worker: WorkerProcess, sending: asyncio.Future[None] | None, cpu_began: float | None
    ) -> asyncio.Task[None]:
        """Stop the statement a cancelled caller left in `worker` and give the worker back once it answers (killed
        and replaced if it does not within STOP_WAIT_S): a worker is busy until its reply is read. The CPU time it
        cost, once it answered, goes to the caller's STOPPED_CPU (the task runs in a copy of its context)."""

        async def drain() -> None:
            healthy = False
            try:
                if sending is not None:
                    await sending
                reply = await worker.stopped_reply(STOP_WAIT_S + (LOAD_GRACE_S if sending is not None else 0.0))
                healthy = not reply[-1]
                if (cost := STOPPED_CPU.get()) is not None and cpu_began is not None and (cpu := worker.cpu_seconds()):
                    cost.append(cpu - cpu_began)
                self.stopped += 1
                ledger.record(stopped=1)
            except WorkerFailed as failure:
                if failure.timed_out:  # it did not answer its stop: killed
                    _note_kill()
            except PIPE_FAILURES:
                pass
            finally:
                self._give_back(worker, healthy)
            if not healthy:
                await self.replaced_ready()

        task = asyncio.get_running_loop().create_task(drain())
        self._draining.add(task)
        task.add_done_callback(self._draining.discard)
        return task

    async def replaced_ready(self, limit_s: float = REPLACED_WAIT_S) -> None:
        """Return once no worker is starting (a killed one's replacement is ready), or after `limit_s`: the turn of
        a killed statement lasts until then, so its place goes on only once a worker can take it."""
        loop, until = asyncio.get_running_loop(), time.monotonic() + limit_s
        while time.monotonic() < until:
            changed: asyncio.Future[None] = loop.create_future()
            with self._condition:
                if self._closed or len(self._idle) + self._busy >= len(self._workers):
                    return
                self._waiters.append((loop, changed))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(changed, max(0.0, until - time.monotonic()))

    def _request(
        self,
        worker: WorkerProcess,
        key: int,
        tables: Callable[[], Mapping[str, ServedTable]],
        sql: str,
        offset: int,
        limit: int,
    ) -> tuple[tuple[Any, ...], float]:
        """The request for a statement over episode `key` (with its tables, where `worker` lacks them) and its
        deadline; notes what the worker holds after it."""
        with self._condition:  # `forget` changes what a worker holds from other threads
            send = None if key in worker.loaded else tables()
            if send is not None:
                worker.loaded[key] = 2 * table_bytes(send) + 2**20  # arrays, frames over them, views
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

    def _tell_forget(self, workers: list[WorkerProcess]) -> None:
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

    def _take(self, key: int) -> WorkerProcess:
        waiting_since = time.monotonic()
        with self._condition:
            while (worker := self._take_now(key, time.monotonic() - waiting_since)) is None:
                self._condition.wait(timeout=HOLDER_WAIT_S)
            return worker

    async def _take_async(self, key: int) -> WorkerProcess:
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

    def _take_now(self, key: int, waited_s: float) -> WorkerProcess | None:
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

    def _pick(self, key: int, patient: bool) -> WorkerProcess | None:
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

    def _give_back(self, worker: WorkerProcess, healthy: bool) -> None:
        with self._condition:
            self._busy -= 1
            if healthy and worker.alive and worker in self._workers:
                self._idle.append(worker)
                self._changed()  # the statements waiting for this worker's tables, and any other
                return
            self._workers.discard(worker)
            self.replaced += 1
            ledger.record(replaced=1)
            self._changed()  # statements waiting for the tables it held pick another worker
            if not self._closed:
                self._start()
        worker.kill()  # at once, its pipes closed; reaped on a thread

    def _start(self) -> None:
        """Start a worker (caller holds the condition); it joins the idle ones once it has said it is ready. One
        killed from outside before it is ready (the OOM killer, an operator) is replaced at once; one that fails on
        its own (it exits with an error, crashes, or never says it is ready) is replaced after a backoff that
        doubles with each such failure in a row, up to MAX_BACKOFF_S, for as long as the pool is open: the pool
        never gives up, and never spins on a worker that cannot start."""
        worker = WorkerProcess()
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
                    ledger.record(replaced=1)
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

    def _replace_killed(self, worker: WorkerProcess) -> None:
        """Start another worker at once in place of `worker`, killed from outside while it started."""
        with self._condition:
            self._workers.discard(worker)
            self.replaced += 1
            ledger.record(replaced=1)
            if not self._closed and len(self._workers) + self._restarting < self.size:
                self._start()
            self._changed()


def _note_kill() -> None:
    """Tell the running loop's gate that the statement of the client this code runs for had to be killed."""
    found = _GATES.get(asyncio.get_running_loop())
    if found is not None:
        found.note_kill(CLIENT.get())


def _resolve(changed: asyncio.Future[None]) -> None:
    if not changed.done():
        changed.set_result(None)


def start_backoff(failures: int) -> float:
    """Seconds to wait before starting a worker again after `failures` failed starts in a row."""
    return min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2 ** (failures - 1))


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


_GATES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, FairGate] = weakref.WeakKeyDictionary()


def gate() -> FairGate:
    """The running event loop's gate, sized to the pool: one client may hold all workers but one."""
    loop = asyncio.get_running_loop()
    found = _GATES.get(loop)
    if found is None:
        found = _GATES[loop] = FairGate(_size, max(1, _size - 1))
    return found
