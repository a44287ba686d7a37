"""Which SQL worker a statement goes to: one that holds its episode's tables, so that many sessions do not make the
workers send and evict each other's tables on every statement."""

from __future__ import annotations

import collections
import threading
from typing import Any

import pytest

from metric_tracker_rl.sql import pool as sql_pool
from metric_tracker_rl.sql import worker_process
from metric_tracker_rl.sql.pool import SqlPool

MB = 2**20


class FakeWorker:
    """A worker's bookkeeping without its process."""

    def __init__(self, name: str, loaded: dict[int, int]) -> None:
        self.name = name
        self.loaded = collections.OrderedDict(loaded)
        self.forget: list[int] = []
        self.alive = True

    def kill(self) -> None:
        self.alive = False


def pool_of(*workers: FakeWorker, idle: tuple[FakeWorker, ...] | None = None) -> SqlPool:
    sql = SqlPool(size=len(workers))
    sql._workers = set(workers)  # noqa: SLF001 (the pool's own bookkeeping, set up without processes)
    sql._idle = list(workers if idle is None else idle)  # noqa: SLF001
    return sql


def take_in_thread(sql: SqlPool, key: int) -> tuple[threading.Thread, list[Any]]:
    taken: list[Any] = []
    thread = threading.Thread(target=lambda: taken.append(sql._take(key)), daemon=True)  # noqa: SLF001
    thread.start()
    return thread, taken


@pytest.fixture(autouse=True)
def small_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sql_pool, "CACHE_MB", 100)


def test_a_statement_goes_to_the_idle_worker_holding_its_tables() -> None:
    empty, holder = FakeWorker("empty", {}), FakeWorker("holder", {7: 60 * MB})
    assert pool_of(empty, holder)._take(7) is holder  # noqa: SLF001


def test_an_episode_no_worker_holds_goes_to_the_idle_worker_holding_least() -> None:
    fuller, emptier = FakeWorker("fuller", {1: 60 * MB}), FakeWorker("emptier", {2: 20 * MB})
    assert pool_of(fuller, emptier)._take(9) is emptier  # noqa: SLF001


def test_with_its_holder_busy_a_statement_loads_where_there_is_room() -> None:
    holder, roomy = FakeWorker("holder", {7: 40 * MB}), FakeWorker("roomy", {1: 50 * MB})
    assert pool_of(holder, roomy, idle=(roomy,))._take(7) is roomy  # noqa: SLF001


def test_with_its_holder_busy_and_no_room_a_statement_waits_for_the_holder() -> None:
    holder, full = FakeWorker("holder", {7: 40 * MB}), FakeWorker("full", {1: 30 * MB, 2: 40 * MB})
    sql = pool_of(holder, full, idle=(full,))
    thread, taken = take_in_thread(sql, 7)
    thread.join(timeout=0.3)
    assert thread.is_alive() and not taken  # evicting the full worker's tables would cost more than the wait
    sql._busy = 1  # noqa: SLF001 (the holder's statement, taken before this test began)
    sql._give_back(holder, healthy=True)  # noqa: SLF001
    thread.join(timeout=5)
    assert taken == [holder]
    assert list(full.loaded) == [1, 2]


def test_a_statement_waiting_for_a_lost_holder_goes_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    holder, full = FakeWorker("holder", {7: 40 * MB}), FakeWorker("full", {1: 30 * MB, 2: 40 * MB})
    sql = pool_of(holder, full, idle=(full,))
    replacement = FakeWorker("replacement", {})
    monkeypatch.setattr(sql, "_start", lambda: sql._workers.add(replacement))  # noqa: SLF001 (ready later)
    thread, taken = take_in_thread(sql, 7)
    thread.join(timeout=0.3)
    assert thread.is_alive()
    sql._busy = 1  # noqa: SLF001
    sql._give_back(holder, healthy=False)  # noqa: SLF001 (killed at its time limit: its tables are gone)
    thread.join(timeout=5)
    assert taken == [full] and not holder.alive


class Clocks:
    """A worker's CPU time, the wall clock and its threads' waits for a core, as the test sets them."""

    def __init__(self, cpu: float | None = 0.0) -> None:
        self.cpu, self.wall, self.queued = cpu, 0.0, {1: 2.0, 2: 0.5}

    def overdue(self, deadline_s: float = 2.0) -> worker_process.Overdue:
        return worker_process.Overdue(deadline_s, lambda: self.cpu, lambda: dict(self.queued), lambda: self.wall)


def test_a_worker_past_its_cpu_deadline_is_overdue() -> None:
    clocks = Clocks()
    overdue = clocks.overdue()
    clocks.cpu, clocks.wall = 1.9, 5.0
    assert not overdue()
    clocks.cpu = 2.1
    assert overdue() and not overdue.stalled  # the statement's own doing: its time limit


def test_a_worker_starved_of_a_core_is_not_overdue_and_a_stalled_one_is() -> None:
    clocks = Clocks()
    overdue = clocks.overdue()
    backstop = 2.0 * worker_process.WALL_BACKSTOP
    # Two backstops of wall time, nearly all of it spent by one thread or another waiting for a core; one new thread.
    clocks.cpu, clocks.wall, clocks.queued = 0.4, 2 * backstop, {1: 2.0 + backstop, 2: 0.5 + backstop - 2.0, 3: 1.0}
    assert not overdue()  # 1 s of it neither running nor waiting for a core
    clocks.wall += backstop - 1.0  # then it stops running (blocked) until that is the backstop
    assert not overdue()
    clocks.wall += 0.1
    assert overdue() and overdue.stalled  # the machine's doing: the sandbox runs the statement again


def test_a_worker_whose_old_thread_ended_keeps_its_time() -> None:
    """A thread's wait counts only while it lists: the previous statement's ended thread gives nothing back."""
    clocks = Clocks()
    overdue = clocks.overdue()
    clocks.wall, clocks.queued = 2.0 * worker_process.WALL_BACKSTOP + 1.0, {2: 0.5 + 1.5}
    assert not overdue()


def test_where_waits_are_not_reported_the_backstop_is_wall_time_and_without_cpu_the_deadline() -> None:
    clocks = Clocks()
    clocks.queued = {}
    overdue = clocks.overdue()
    clocks.wall = 2.0 * worker_process.WALL_BACKSTOP + 0.1
    assert overdue()
    no_cpu = Clocks(cpu=None)
    overdue = no_cpu.overdue()
    no_cpu.wall, no_cpu.queued = 2.1, {1: 4.1, 2: 0.5}  # no CPU time: the deadline is wall time, less the wait
    assert not overdue()
    no_cpu.queued = {1: 2.0, 2: 0.5}
    assert overdue()
