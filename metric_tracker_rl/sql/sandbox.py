"""A read-only SQL sandbox over an episode's public tables, run in SQL worker processes.

DuckDB treats SQL as code with the privileges of the process, so an agent's query meets these walls, each enough
on its own for most attacks (defence in depth):

1. the text, checked here: at most MAX_SQL_CHARS characters (WAREHOUSE_MAX_SQL_CHARS over the warehouse's raw
   events), no control characters;
2. in a worker process (metric_tracker_rl.sql.engine): DuckDB's parser (one SELECT; a checked parse tree), the
   tables as read-only views over the episode's arrays (no statement can change them or make them grow), a
   locked configuration (no files, network, extensions, settings; nothing that names a path or a user), an
   interrupt at the time limit and a row cap inside the engine;
3. the worker process itself (metric_tracker_rl.sql.pool): an address-space limit, and a kill at the time limit
   plus a grace period, so what no interrupt stops (planning, one long function call, converting a result) is
   bounded too, and a killed worker costs the query that ran in it an error, never the server.

A refusal raises SqlRefused with a message that says what is allowed; the caller shows it to the agent. The
module knows nothing of how an episode was made: it receives tables and holds nothing else.

What sessions can do to each other: nothing through SQL (each episode's tables are views of a connection of its
own). Through resources, a statement holds one worker for at most the time limit plus the grace period; the
server's fair gate keeps one client from holding every worker.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from metric_tracker_rl.sql import pool as sql_pool
from metric_tracker_rl.sql.cells import CUT_MARK, MAX_CELL_CHARS
from metric_tracker_rl.sql.columns import ServedTable
from metric_tracker_rl.sql.engine import (
    CONFIG,
    MAX_COLUMNS,
    MEMORY_LIMIT_MB,
    MEMORY_MESSAGE,
    ROW_CAP,
    TIME_LIMIT_S,
    TIME_MESSAGE,
)

__all__ = [
    "CONFIG",
    "CUT_MARK",
    "MAX_CELL_CHARS",
    "MAX_COLUMNS",
    "MAX_SQL_CHARS",
    "MEMORY_LIMIT_MB",
    "ROW_CAP",
    "TIME_LIMIT_S",
    "WAREHOUSE_MAX_SQL_CHARS",
    "SqlRefused",
    "SqlResult",
    "SqlSandbox",
]

MAX_SQL_CHARS = 4000
# At the warehouse a statement rebuilds sessions from raw events before it counts anything, so it is longer.
WAREHOUSE_MAX_SQL_CHARS = 8000
_ALLOWED_CONTROL = frozenset("\t\n\r")
# The characters a SQL text may not hold: every control character but the allowed ones, and DEL (one regex search
# instead of a Python test per character, at every statement).
_FORBIDDEN_CHARACTER = re.compile(
    "[" + "".join(re.escape(chr(code)) for code in [*range(32), 127] if chr(code) not in _ALLOWED_CONTROL) + "]"
)
_KEYS = itertools.count(1)
STALLED_TRIES = 2  # runs of a statement stopped in wall time with CPU time to spare, before its time limit is said
NOT_READY_MESSAGE = (
    "no SQL worker is ready: the server is starting its SQL workers again after a failure. Retry "
    "this query in a few seconds; the episode is unchanged."
)


class SqlRefused(ValueError):
    """A query the sandbox will not run or could not finish; the message tells the agent what is allowed."""


@dataclass(frozen=True)
class SqlResult:
    columns: list[str]
    rows: list[dict[str, Any]]  # the requested page
    row_count: int  # rows of the whole result


class SqlSandbox:
    """`tables` (name -> its columns), read by one SELECT at a time in the SQL workers, each at most
    `max_sql_chars` characters long.

    Not shared between episodes: a new episode opens its own, and `close()` releases it (the environment calls
    it on reset and when the session closes): the workers that hold its tables drop them."""

    def __init__(self, tables: Mapping[str, ServedTable], max_sql_chars: int = MAX_SQL_CHARS) -> None:
        self._tables = dict(tables)
        self.max_sql_chars = max_sql_chars
        self.key = next(_KEYS)
        self.schema = {name: list(columns) for name, columns in tables.items()}
        self.allowed = (
            f"Allowed: one read-only SELECT (or WITH ... SELECT) statement over the tables "
            f"{', '.join(self.schema)}; no files, network, extensions or settings."
        )
        self.closed = False
        # (sql, offset, limit) and the outcome `prefetch` got for them: a reply, or the refusal to raise
        self._prefetched: tuple[tuple[str, int, int], tuple[Any, ...] | SqlRefused] | None = None

    @property
    def usable(self) -> bool:
        return not self.closed

    def tables_text(self) -> str:
        return "tables: " + "; ".join(f"{name}({', '.join(columns)})" for name, columns in self.schema.items())

    def run(self, sql: str, offset: int = 0, limit: int = ROW_CAP) -> SqlResult:
        """One SELECT's rows from `offset` (at most `limit` of them) and how many it has in all. Raises
        SqlRefused for anything but one SELECT, and for a query that breaks a limit. A statement `prefetch` ran
        for these arguments gives its outcome without another run."""
        self._check_text(sql)
        found, self._prefetched = self._prefetched, None
        if found is not None and found[0] == (sql, offset, limit):
            reply = found[1]
        else:
            reply = self._reply(sql, offset, limit, tries=STALLED_TRIES)
        if isinstance(reply, SqlRefused):
            raise reply
        if reply[0] == "refused":
            raise SqlRefused(reply[1])
        _, columns, rows, count, _ = reply
        return SqlResult(columns, [dict(zip(columns, row, strict=True)) for row in rows], count)

    async def prefetch(self, sql: str, offset: int = 0, limit: int = ROW_CAP) -> float:
        """Run the statement in a worker from the event loop, without a thread (SqlPool.run_async), and keep its
        outcome for the next `run` with these arguments; the seconds it held a worker. A text `run` refuses before
        any worker is asked is left for `run` to refuse."""
        self._prefetched = None
        try:
            self._check_text(sql)
        except SqlRefused:
            return 0.0
        spent = 0.0
        outcome: tuple[Any, ...] | SqlRefused | None = None
        for tries in range(STALLED_TRIES, 0, -1):
            try:
                reply, seconds = await sql_pool.pool().run_async(self.key, lambda: self._tables, sql, offset, limit)
            except sql_pool.WorkerFailed as failure:
                spent += failure.seconds
                outcome = None if failure.stalled and tries > 1 else _refusal_of(failure)
            else:
                spent += seconds
                outcome = None if reply[0] == "stalled" and tries > 1 else reply
            if outcome is not None:
                break
        self._prefetched = ((sql, offset, limit), _stalled_refusal(outcome))
        return spent

    def _check_text(self, sql: str) -> None:
        """The checks of a text before any worker sees it (the sandbox's first wall)."""
        if len(sql) > self.max_sql_chars:
            raise SqlRefused(
                f"the SQL text has {len(sql)} characters; at most {self.max_sql_chars} characters. {self.allowed}"
            )
        bad = _FORBIDDEN_CHARACTER.search(sql)
        if bad is not None:
            raise SqlRefused(
                f"the SQL text holds a control character (code {ord(bad.group())}); write plain text. {self.allowed}"
            )
        if self.closed:
            raise SqlRefused("the SQL connection of this episode is closed; reset to start a new episode")

    def _reply(self, sql: str, offset: int, limit: int, tries: int) -> tuple[Any, ...]:
        """A worker's reply. A statement stopped in wall time while it had CPU time to spare (it neither ran nor
        waited for a core: a machine short of memory, say) runs again, in a fresh worker or another, up to `tries`
        times in all, before the time limit is reported: its outcome is its own, not the machine's. A runaway
        spends its CPU time and is stopped by it, never run again."""
        try:
            reply = sql_pool.pool().run(self.key, lambda: self._tables, sql, offset, limit)
        except sql_pool.WorkerFailed as failure:
            if failure.stalled and tries > 1:
                return self._reply(sql, offset, limit, tries - 1)
            raise _refusal_of(failure) from None
        if reply[0] == "stalled":
            if tries > 1:
                return self._reply(sql, offset, limit, tries - 1)
            raise SqlRefused(TIME_MESSAGE)
        return reply

    def close(self) -> None:
        """Release the episode's tables in the workers."""
        self._prefetched = None
        if not self.closed:
            self.closed = True
            sql_pool.pool().forget(self.key)


def _refusal_of(failure: sql_pool.WorkerFailed) -> SqlRefused:
    """What the agent reads when a worker did not answer."""
    if not failure.started:
        return SqlRefused(NOT_READY_MESSAGE)
    return SqlRefused(TIME_MESSAGE if failure.timed_out else MEMORY_MESSAGE)


def _stalled_refusal(outcome: tuple[Any, ...] | SqlRefused | None) -> tuple[Any, ...] | SqlRefused:
    """A prefetched outcome as `run` raises or reads it: a statement stalled on its last try meets its time limit."""
    if outcome is None or (isinstance(outcome, tuple) and outcome[0] == "stalled"):
        return SqlRefused(TIME_MESSAGE)
    return outcome
