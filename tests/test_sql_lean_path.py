"""A SQL statement's path costs what its answer needs, and the answer is the same: a page's cells converted without
a call where cell() would give them back unchanged, a statement text parsed and checked once per episode (a page
of it, or the same text again, reuses the check; a refused text stays refused), the watchdog asleep through quick
statements, and the pool reading its worker's threads' waits for a core only for a late reply."""

from __future__ import annotations

import datetime
import decimal
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metric_tracker_rl.sql import engine, worker_process
from metric_tracker_rl.sql.cells import MAX_CELL_CHARS, cell, page_cells
from metric_tracker_rl.sql.engine import CHECKED_TEXTS, EpisodeTables, Refusal
from metric_tracker_rl.sql.sandbox import SqlSandbox
from metric_tracker_rl.sql.worker import SLOW_AFTER_S, Watchdog

CELLS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=MAX_CELL_CHARS + 20),
    st.text(min_size=MAX_CELL_CHARS - 2, max_size=MAX_CELL_CHARS + 2),
    st.decimals(allow_nan=False, allow_infinity=False, places=3),
    st.dates(),
    st.datetimes(),
    st.times(),
    st.binary(max_size=120),
    st.lists(st.integers(), max_size=4),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=3),
)


def same_cell(got: Any, expected: Any) -> bool:
    return type(got) is type(expected) and (got == expected or (got != got and expected != expected))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(CELLS, min_size=1, max_size=6), max_size=8))
def test_a_page_converts_every_cell_as_cell_does(rows: list[list[Any]]) -> None:
    page = page_cells([tuple(row) for row in rows])
    assert len(page) == len(rows)
    for got_row, row in zip(page, rows, strict=True):
        assert all(same_cell(got, cell(value)) for got, value in zip(got_row, row, strict=True))


def test_the_cells_a_page_keeps_as_they_are_are_the_ones_cell_gives_back_unchanged() -> None:
    kept = [0, -5, 2**80, True, None, 1.5, -0.0, "x" * MAX_CELL_CHARS]
    converted = [
        float("nan"),
        float("inf"),
        -float("inf"),
        "x" * (MAX_CELL_CHARS + 1),
        decimal.Decimal("1.5"),
        datetime.date(2026, 3, 1),
        b"\x01",
    ]
    (page,) = page_cells([tuple(kept + converted)])
    assert all(got is value for got, value in zip(page[: len(kept)], kept, strict=True))
    assert page[len(kept) :] == [cell(value) for value in converted]


@pytest.fixture
def tables() -> Iterator[EpisodeTables]:
    database = engine.open_database()
    episode = EpisodeTables(database, {"daily": {"day": np.arange(50), "orders": np.arange(50) * 3}})
    yield episode
    episode.close()
    database.close()


def count_checks(tables: EpisodeTables, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    checked: list[str] = []
    check = tables._check  # noqa: SLF001 - the test counts the parse-and-check the engine runs

    def counted(sql: str) -> str:
        checked.append(sql)
        return check(sql)

    monkeypatch.setattr(tables, "_check", counted)
    return checked


def test_a_paged_statement_is_parsed_and_checked_once(tables: EpisodeTables, monkeypatch: pytest.MonkeyPatch) -> None:
    checked = count_checks(tables, monkeypatch)
    sql = "SELECT day, orders FROM daily ORDER BY day"
    pages = [tables.run(sql, offset, 20) for offset in (0, 20, 40)]
    assert checked == [sql]
    assert [row[0] for _, rows, _ in pages for row in rows] == list(range(50))
    assert tables.run(sql + " ", 0, 5)[1] == pages[0][1][:5] and len(checked) == 2  # another text, checked


def test_a_refused_text_is_refused_every_time_with_the_same_words(
    tables: EpisodeTables, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked = count_checks(tables, monkeypatch)
    for sql in ("SELECT random() FROM daily", "DELETE FROM daily", "SELECT * FROM read_csv('x.csv')"):
        messages = []
        for _ in range(3):
            with pytest.raises(Refusal) as refused:
                tables.run(sql, 0, 10)
            messages.append(str(refused.value))
        assert len(set(messages)) == 1 and checked.count(sql) == 3


def test_an_episode_keeps_the_checks_of_its_last_texts_only(
    tables: EpisodeTables, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked = count_checks(tables, monkeypatch)
    texts = [f"SELECT {i} AS n, count(*) AS days FROM daily" for i in range(CHECKED_TEXTS + 1)]
    for sql in texts:
        assert tables.run(sql, 0, 1)[1] == [[int(sql.split()[1]), 50]]
    tables.run(texts[-1], 0, 1)  # kept
    tables.run(texts[0], 0, 1)  # the oldest, dropped: checked again
    assert checked == [*texts, texts[0]]


class Statement:
    def __init__(self) -> None:
        self.interrupted = threading.Event()

    def interrupt(self) -> None:
        self.interrupted.set()


def test_quick_statements_leave_the_watchdog_asleep_and_a_slow_one_is_watched() -> None:
    reads: list[int] = []

    def queued(thread_id: int) -> float:
        reads.append(thread_id)
        return 0.0

    watchdog = Watchdog(10.0, queued_clock=queued)
    helper_ready, finish, ids = threading.Event(), threading.Event(), []

    def stand_in() -> None:  # the statement's thread, whose wait for a core the watchdog reads
        ids.append(threading.get_native_id())
        helper_ready.set()
        finish.wait()

    threading.Thread(target=stand_in, daemon=True).start()
    helper_ready.wait()
    longest = 0.0
    for _ in range(300):
        began = time.monotonic()
        watchdog.start(Statement(), ids[0])
        watchdog.stop()
        longest = max(longest, time.monotonic() - began)
    if longest < SLOW_AFTER_S:  # (a busy machine may hold one statement up past its slow point)
        assert reads == [] and not watchdog.watching_slow
    slow = Statement()
    watchdog.start(slow, ids[0])
    deadline = time.monotonic() + 30
    while not reads and time.monotonic() < deadline:
        time.sleep(0.01)
    watchdog.stop()
    finish.set()
    assert reads == [ids[0]] and not slow.interrupted.is_set()


def test_a_reply_before_the_first_poll_reads_no_thread_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[int] = []
    real = worker_process.process_queued_s

    def counted(pid: int) -> dict[int, float]:
        reads.append(pid)
        return real(pid)

    monkeypatch.setattr(worker_process, "process_queued_s", counted)
    sandbox = SqlSandbox({"daily": {"day": np.arange(10)}})
    try:
        sandbox.run("SELECT count(*) AS n FROM daily")  # a worker starts and loads the tables
        reads.clear()
        longest = 0.0
        for _ in range(20):
            began = time.monotonic()
            assert sandbox.run("SELECT count(*) AS n FROM daily").rows == [{"n": 10}]
            longest = max(longest, time.monotonic() - began)
        if longest < worker_process.POLL_S:  # (a busy machine may hold one reply up past the first poll)
            assert reads == []
    finally:
        sandbox.close()
