"""The SQL worker's watchdog stops a statement by the CPU time it used, not by the wall time it waited: on a busy
machine a statement whose priority was lowered may wait for a core far past the time limit without using it, and
that is not the statement's fault; a runaway uses its CPU all the same and is stopped. A statement that neither
finishes nor runs is stopped in wall time too (WALL_BACKSTOP). The clocks are fakes the test moves, and every wait
is on state (the watchdog having read the clock, the statement having been interrupted), never on time."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from metric_tracker_rl.sql.worker import WALL_BACKSTOP, Watchdog

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


def watched(cpu: Clock, wall: Clock, thread_id: int) -> tuple[Watchdog, Statement]:
    watchdog = Watchdog(LIMIT_S, cpu_clock=cpu, wall_clock=wall)
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
    assert not statement.interrupted.is_set() and watchdog.slowed
    watchdog.stop()


def test_a_statement_that_uses_its_cpu_time_is_stopped(statement_thread: int) -> None:
    cpu, wall = Clock(), Clock()
    watchdog, statement = watched(cpu, wall, statement_thread)
    cpu.wait_reads(2)
    cpu.now = LIMIT_S + 0.01
    assert statement.interrupted.wait(WAIT_S)
    watchdog.stop()


def test_a_statement_that_neither_ends_nor_runs_is_stopped_in_wall_time(statement_thread: int) -> None:
    cpu, wall = Clock(), Clock()
    watchdog, statement = watched(cpu, wall, statement_thread)
    cpu.wait_reads(2)
    wall.now = LIMIT_S * WALL_BACKSTOP + 0.01
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
