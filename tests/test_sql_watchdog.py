"""The SQL worker's watchdog stops a statement by the CPU time it used, not by the wall time it waited: on a busy
machine a statement whose priority was lowered may wait for a core far past the time limit without using it, and
that is not the statement's fault; a runaway uses its CPU all the same and is stopped. A statement that neither
finishes nor runs is stopped in wall time too (WALL_BACKSTOP), less the time its thread waited for a core: a
statement starved of CPU keeps its time, a blocked one is stopped. The clocks are fakes the test moves, and every
wait is on state (the watchdog having read the clock, the statement having been interrupted), never on time; the
last tests run real threads on this machine's scheduler."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from metric_tracker_rl.sql.schedstat import process_queued_s, thread_queued_s
from metric_tracker_rl.sql.worker import WALL_BACKSTOP, StatementThread, Watchdog

LIMIT_S = 1.0
WAIT_S = 30.0  # far more than any poll takes; a pass never waits this long


class Clock:
    """A clock the test sets; counts its reads, so the test can wait until the watchdog has looked."""

    def __init__(self) -> None:
        self.now = 0.0
        self.reads = 0
        self.read = threading.Condition()

    def __call__(self) -> float:
        with self.read:
            self.reads += 1
            self.read.notify_all()
        return self.now

    def wait_reads(self, count: int) -> None:
        with self.read:
            assert self.read.wait_for(lambda: self.reads >= count, timeout=WAIT_S)


class Statement:
    def __init__(self) -> None:
        self.interrupted = threading.Event()

    def interrupt(self) -> None:
        self.interrupted.set()


@pytest.fixture
def statement_thread() -> Iterator[int]:
    """A thread standing in for the statement's (the watchdog lowers its priority)."""
    ready, finish = threading.Event(), threading.Event()
    ids: list[int] = []

    def idle() -> None:
        ids.append(threading.get_native_id())
        ready.set()
        finish.wait()

    thread = threading.Thread(target=idle, daemon=True)
    thread.start()
    ready.wait()
    yield ids[0]
    finish.set()


def watched(cpu: Clock, wall: Clock, thread_id: int, queued: Clock | None = None) -> tuple[Watchdog, Statement]:
    """A watchdog on fake clocks (`queued`: the thread's wait for a core; None: the system does not tell)."""
    watchdog = Watchdog(
        LIMIT_S, cpu_clock=cpu, wall_clock=wall, queued_clock=lambda _thread: None if queued is None else queued()
    )
    statement = Statement()
    watchdog.start(statement, thread_id)
    return watchdog, statement


def test_a_statement_that_waits_for_a_core_is_not_stopped(statement_thread: int) -> None:
    cpu, wall = Clock(), Clock()
    watchdog, statement = watched(cpu, wall, statement_thread)
    wall.now = LIMIT_S * (WALL_BACKSTOP - 1)  # long past the limit in wall time, no CPU used
    cpu.now = LIMIT_S * 0.9
    reads = cpu.reads
    cpu.wait_reads(reads + 5)  # the watchdog has looked five more times since
    assert not statement.interrupted.is_set() and watchdog.watching_slow
    watchdog.stop()


def test_a_statement_that_uses_its_cpu_time_is_stopped(statement_thread: int) -> None:
    cpu, wall = Clock(), Clock()
    watchdog, statement = watched(cpu, wall, statement_thread)
    cpu.wait_reads(2)
    cpu.now = LIMIT_S + 0.01
    assert statement.interrupted.wait(WAIT_S)
    assert not watchdog.stalled  # its own doing: the worker reports the time limit
    watchdog.stop()


def test_a_statement_that_neither_ends_nor_runs_is_stopped_in_wall_time(statement_thread: int) -> None:
    cpu, wall, queued = Clock(), Clock(), Clock()
    queued.now = 3.0  # what the thread waited before the statement began
    watchdog, statement = watched(cpu, wall, statement_thread, queued)
    cpu.wait_reads(2)
    wall.now = LIMIT_S * WALL_BACKSTOP + 0.01  # blocked: no wait for a core since it began
    assert statement.interrupted.wait(WAIT_S)
    assert watchdog.stalled  # the machine's doing: the worker says so, and the statement runs again
    watchdog.stop()


def test_where_the_wait_for_a_core_is_not_reported_the_backstop_is_wall_time(statement_thread: int) -> None:
    cpu, wall = Clock(), Clock()
    watchdog, statement = watched(cpu, wall, statement_thread)
    cpu.wait_reads(2)
    wall.now = LIMIT_S * WALL_BACKSTOP + 0.01
    assert statement.interrupted.wait(WAIT_S)
    watchdog.stop()


def test_a_statement_starved_of_a_core_past_the_backstop_is_not_stopped(statement_thread: int) -> None:
    cpu, wall, queued = Clock(), Clock(), Clock()
    queued.now = 3.0
    watchdog, statement = watched(cpu, wall, statement_thread, queued)
    cpu.wait_reads(2)
    # Three backstops of wall time, nearly all of it runnable and waiting for a core; a little CPU time used.
    queued.now, wall.now, cpu.now = 3.0 + LIMIT_S * WALL_BACKSTOP * 3 - 0.5, LIMIT_S * WALL_BACKSTOP * 3, 0.3
    reads = queued.reads
    queued.wait_reads(reads + 5)  # the watchdog has looked at the wait five more times since
    assert not statement.interrupted.is_set()
    wall.now += LIMIT_S * WALL_BACKSTOP  # then it stalls (not runnable) for a backstop: stopped
    assert statement.interrupted.wait(WAIT_S)
    watchdog.stop()


def test_a_statement_that_ends_in_time_is_left_alone(statement_thread: int) -> None:
    cpu, wall = Clock(), Clock()
    watchdog, statement = watched(cpu, wall, statement_thread)
    cpu.wait_reads(2)
    watchdog.stop()
    cpu.now = wall.now = 100.0  # after the end: no statement is watched any more
    second = Statement()
    watchdog.start(second, statement_thread)  # the next statement starts its own count from here
    cpu.wait_reads(cpu.reads + 3)
    assert not statement.interrupted.is_set() and not second.interrupted.is_set()
    watchdog.stop()


# The real tests: a statement limit scaled down so the backstop is REAL_LIMIT_S * WALL_BACKSTOP = 0.4 s of wall time.
REAL_LIMIT_S = 0.05
NEEDS_CPU_S = 0.02  # what the starved statement needs: under its limit, but far past the backstop when starved
GIVE_UP_S = 10.0  # bounds every real test's wait
needs_schedstat = pytest.mark.skipif(
    thread_queued_s(threading.get_native_id()) is None or not hasattr(os, "sched_setaffinity"),
    reason="the system reports no per-thread wait for a core (Linux schedstat)",
)


@contextlib.contextmanager
def busy(core: int, seconds: float) -> Iterator[None]:
    """A process at this one's priority spinning on `core` (for at most `seconds`)."""
    spin = (
        f"import os, sys, time\nos.sched_setaffinity(0, {{{core}}})\nprint(flush=True)\n"
        f"end = time.monotonic() + {seconds}\nwhile time.monotonic() < end: pass"
    )
    spinner = subprocess.Popen([sys.executable, "-c", spin], stdout=subprocess.PIPE)
    try:
        assert spinner.stdout is not None and spinner.stdout.readline() == b"\n"  # pinned and spinning
        yield
    finally:
        spinner.kill()
        spinner.wait()


def run_watched(work: Callable[[Statement], object], core: int | None = None) -> tuple[Statement, float, float]:
    """`work` run as a statement on a thread of its own at the lowest priority (pinned to `core` when given),
    under a real watchdog that counts that thread's CPU time: the statement, its wall time and its wait for a core."""
    statement, ended, result = Statement(), threading.Event(), [0.0, 0.0]

    def run() -> None:
        thread_id = threading.get_native_id()
        if core is not None:
            os.sched_setaffinity(0, {core})
        os.setpriority(os.PRIO_PROCESS, thread_id, 19)
        watchdog = Watchdog(REAL_LIMIT_S, cpu_clock=time.thread_time)
        began, queued = time.monotonic(), thread_queued_s(thread_id) or 0.0
        watchdog.start(statement, thread_id)
        work(statement)
        watchdog.stop()
        result[:] = time.monotonic() - began, (thread_queued_s(thread_id) or 0.0) - queued
        ended.set()

    threading.Thread(target=run, daemon=True).start()
    assert ended.wait(GIVE_UP_S + 5)
    return statement, result[0], result[1]


@needs_schedstat
def test_a_blocked_thread_waits_for_no_core() -> None:
    waits: list[float | None] = []

    def sleep() -> None:
        waits.append(thread_queued_s(threading.get_native_id()))
        time.sleep(0.3)
        waits.append(thread_queued_s(threading.get_native_id()))

    sleeper = threading.Thread(target=sleep)
    sleeper.start()
    sleeper.join()
    assert waits[0] is not None and waits[1] is not None and waits[1] - waits[0] < 0.1
    assert threading.get_native_id() in process_queued_s(os.getpid())


@needs_schedstat
def test_a_blocked_statement_is_stopped_at_the_backstop() -> None:
    statement, wall, _ = run_watched(lambda statement: statement.interrupted.wait(GIVE_UP_S))
    assert statement.interrupted.is_set() and REAL_LIMIT_S * WALL_BACKSTOP <= wall < GIVE_UP_S


@pytest.mark.slow
@needs_schedstat
def test_a_statement_starved_of_a_core_keeps_running_past_the_backstop() -> None:
    """Pinned to one core at the lowest priority next to a process that spins there at this one's, the statement
    gets about 1.5% of the core: its 20 ms of CPU take over a second, past the 0.4 s backstop, and it finishes."""
    core = min(os.sched_getaffinity(0))

    def spin(statement: Statement) -> None:
        # It runs for its CPU time and past the backstop by half again: however the machine's other load shares the
        # core, the statement outlives the backstop, and it stays far under its CPU limit only while starved.
        begin, start = time.thread_time(), time.monotonic()
        outlives = REAL_LIMIT_S * WALL_BACKSTOP * 1.5
        while (
            time.thread_time() - begin < NEEDS_CPU_S or time.monotonic() - start < outlives
        ) and not statement.interrupted.is_set():
            assert time.monotonic() < start + GIVE_UP_S

    with busy(core, GIVE_UP_S):
        statement, wall, queued = run_watched(spin, core)
    assert not statement.interrupted.is_set() and queued > wall - REAL_LIMIT_S * WALL_BACKSTOP > 0.0


def test_a_retired_statement_thread_never_runs_its_successors_statements() -> None:
    """A retired statement thread (the worker retires its thread when it stops serving) never takes a job meant for
    its successor: each statement runs on the thread whose id the watchdog watches."""
    runner = StatementThread()
    ran: list[tuple[int, int]] = []

    def job() -> None:
        ran.append((threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, 0)))

    for _ in range(200):
        runner.run(job)
        assert ran[-1] == (runner.thread_id, os.getpriority(os.PRIO_PROCESS, 0))
        runner.retire()
    assert len({thread_id for thread_id, _ in ran}) == len(ran)
