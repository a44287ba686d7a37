"""The pool's side of one SQL worker process (metric_tracker_rl.sql.worker): starting it, sending it requests,
reading its replies as their pieces arrive, watching its deadline, stopping its statement, killing it.

A statement's limit is the worker's own CPU time where the system reports it (Linux): a worker that a busy machine
leaves waiting for a core is not the statement's fault, while a runaway burns CPU and meets the limit all the same.
WALL_BACKSTOP bounds the wait in wall time too, for a worker that neither answers nor runs: less the time its threads
waited for a core (metric_tracker_rl.sql.schedstat), so a busy machine does not stop a starved worker.
"""

from __future__ import annotations

import asyncio
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
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from metric_tracker_rl.sql.engine import CACHE_MB, QUERY_MB
from metric_tracker_rl.sql.schedstat import process_queued_s, queued_since
from metric_tracker_rl.sql.worker import REPLY_HEADER, STOP_SIGNAL

WALL_BACKSTOP = 8.0  # times the CPU deadline
POLL_S = 0.05
READ_BYTES = 1 << 20  # the most one read of a reply pipe takes
# What a reply pipe's failure raises as it is read: its end (the worker died), a broken reply, the pool closing it.
PIPE_FAILURES = (EOFError, pickle.UnpicklingError, OSError, ValueError)
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
START_TIMEOUT_S = 60.0  # for a worker to say it is ready, and for a statement to wait for one that starts
WORKER_MODULE = "metric_tracker_rl.sql.worker"
# A worker left holding no episode after a forget retires (a fresh one starts) when its resident memory is this far
# past what it held when it became ready: what DuckDB and the allocators keep from a load goes back to the system.
IDLE_SLACK_MB = 64
EXIT_GRACE_S = 2.0  # at the interpreter's exit, for the workers to close their databases before they are killed
# Signals that end a worker from outside (an operator, the OOM killer): no fault of the worker's code, so a fresh one
# starts at once. A worker that exits with an error or crashes (SIGSEGV, SIGABRT) on its own is backed off.
OUTSIDE_SIGNALS = frozenset({signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
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

    def __init__(
        self,
        deadline_s: float,
        cpu: Callable[[], float | None],
        queued: Callable[[], Mapping[int, float]],
        wall: Callable[[], float] = time.monotonic,
        cpu_start: float | None = None,
    ) -> None:
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


class WorkerProcess:
    def __init__(self) -> None:
        # Nothing of the server's environment but what Python needs: no secret reaches a process that runs SQL.
        inherited = {
            name: os.environ[name]
            for name in ("PATH", "LANG", "LC_ALL", "VIRTUAL_ENV", "SYSTEMROOT")
            if name in os.environ
        }
        environment = {
            **inherited,
            "MALLOC_ARENA_MAX": "2",
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "HOME": "/",
            "PYTHONPATH": os.pathsep.join(filter(None, [_PACKAGE_ROOT, os.environ.get("PYTHONPATH")])),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", WORKER_MODULE, str(QUERY_MB), str(CACHE_MB), str(IDLE_SLACK_MB)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=environment,
            cwd="/",
        )
        if self.process.stdin is None or self.process.stdout is None:
            raise RuntimeError("a SQL worker is started with pipes to its stdin and stdout")
        self.requests: IO[bytes] = self.process.stdin
        self.replies: IO[bytes] = self.process.stdout
        self.loaded: collections.OrderedDict[int, int] = collections.OrderedDict()  # episode key -> bytes
        self.forget: list[int] = []
        self._stat: int | None = None  # /proc/<pid>/stat, opened on first read (read at every statement)
        # A raw descriptor, read and closed from several threads (the loop's, a send's, a kill's): under this lock,
        # so it is closed once, and never read or opened again once closed (its number may be another file's by
        # then: closing it twice would close that file).
        self._stat_lock = threading.Lock()
        self._stat_closed = False
        # A selector, not `select.select`: a server with many connections open gives the pipes descriptors past
        # 1023, which `select` refuses. One for the worker's life: a reply is awaited at every statement.
        self._replies_ready = selectors.DefaultSelector()
        self._replies_ready.register(self.replies, selectors.EVENT_READ)
        self._received = bytearray()  # what the reply pipe gave so far of the next reply (read unbuffered)
        # The event loop watching the reply pipe, if one is, and what ends its wait when the worker is killed: its
        # reader is removed before the pipe is closed (a closed descriptor's number is soon another socket's, which
        # the loop would then refuse to unwatch).
        self._watcher: tuple[asyncio.AbstractEventLoop, Callable[[], None]] | None = None
        self._killed = False

    def wait_ready(self) -> None:
        """Return once the worker says it is ready; WorkerFailed(started=False) when it ends first (its exit
        status is then its own, read before any kill of ours) or says nothing within START_TIMEOUT_S."""
        self._answer_within(START_TIMEOUT_S, started=False)

    def tell(self, request: tuple[Any, ...], timeout_s: float) -> tuple[Any, ...]:
        """The reply to a request that runs no statement (the worker answers it at once), awaited in wall time."""
        self.send(request)
        return self._answer_within(timeout_s, started=True)

    def _answer_within(self, timeout_s: float, started: bool) -> tuple[Any, ...]:
        deadline = time.monotonic() + timeout_s
        try:
            while (remaining := deadline - time.monotonic()) > 0:
                said = self._replies_ready.select(min(remaining, POLL_S))
                if said and (reply := self._received_reply(self._read_some())) is not None:
                    return reply
        except PIPE_FAILURES:
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

    async def reply_async(self, deadline_s: float, cpu_start: float | None) -> tuple[Any, ...]:
        """The worker's next reply, or WorkerFailed (the worker killed) past its deadline (see `Overdue`)."""
        overdue: Overdue | None = None

        def past_deadline() -> bool:  # watched from the first poll that finds no reply, as in `_reply`
            nonlocal overdue
            if overdue is None:
                overdue = Overdue(
                    deadline_s, self.cpu_seconds, lambda: process_queued_s(self.process.pid), cpu_start=cpu_start
                )
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
            self._unwatch(loop, fd)
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
            except PIPE_FAILURES:
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
        self._watcher = (loop, lambda: finish(None, WorkerFailed(timed_out=False)))
        try:
            return await answered
        finally:
            if not answered.done():  # cancelled: stop watching; the reply stays in the pipe for whoever reads next
                self._unwatch(loop, fd)
                timer.cancel()

    def _unwatch(self, loop: asyncio.AbstractEventLoop, fd: int) -> None:
        """Stop watching the reply pipe (before it is closed: see `_watcher`)."""
        if self._watcher is not None and self._watcher[0] is loop:
            self._watcher = None
            loop.remove_reader(fd)

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
                    overdue = Overdue(
                        deadline_s, self.cpu_seconds, lambda: process_queued_s(self.process.pid), cpu_start=cpu_start
                    )
                if overdue():
                    self.kill()
                    raise WorkerFailed(timed_out=True, stalled=overdue.stalled)
        except PIPE_FAILURES:
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
        with self._stat_lock:
            if self._stat_closed:
                return None
            try:
                if self._stat is None:
                    self._stat = os.open(f"/proc/{self.process.pid}/stat", os.O_RDONLY)
                stat = os.pread(self._stat, 4096, 0)
            except OSError:
                return None
        try:
            fields = stat.rsplit(b")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
        except (IndexError, ValueError):
            return None

    def kill(self) -> None:
        """End the worker and close its pipes at once; the process is reaped on a thread of its own (an exit that
        frees gigabytes takes the kernel a while, and no caller, the event loop least of all, waits for it). A loop
        watching the reply pipe stops watching it first, on its own thread, and its wait ends."""
        with contextlib.suppress(OSError):
            self.process.kill()
        if self._killed:
            return
        self._killed = True
        threading.Thread(target=self.process.wait, daemon=True, name="sql-worker-reap").start()
        if self._watcher is None:
            self._close_pipes()
            return
        loop, gone = self._watcher
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            self._unwatch_and_close(loop, gone)
            return
        try:
            loop.call_soon_threadsafe(self._unwatch_and_close, loop, gone)
        except RuntimeError:  # a loop that has closed watches nothing
            self._close_pipes()

    def _unwatch_and_close(self, loop: asyncio.AbstractEventLoop, gone: Callable[[], None]) -> None:
        self._unwatch(loop, self.reply_fd)
        self._close_pipes()
        gone()

    def _close_pipes(self) -> None:
        for pipe in (self.requests, self.replies):
            with contextlib.suppress(OSError):
                pipe.close()
        with self._stat_lock:
            stat, self._stat, self._stat_closed = self._stat, None, True
        if stat is not None:
            os.close(stat)
        self._replies_ready.close()

    @property
    def alive(self) -> bool:
        return not self._killed and self.process.poll() is None


def spent_by(worker: WorkerProcess, began: float, cpu_began: float | None) -> float:
    """What a statement cost its worker: its CPU time where the system reports it, so a busy machine does not make
    a cheap statement look slow; a quarter of the wall time where that is more (a statement that waits on memory,
    or a killed worker, which reports no CPU time)."""
    cpu, wall = worker.cpu_seconds(), time.monotonic() - began
    return max(cpu - cpu_began, wall / 4) if cpu is not None and cpu_began is not None else wall
