"""A read-only SQL sandbox over an episode's public tables: a connection of its own to a shared DuckDB database.

Up to SESSIONS_PER_DATABASE sandboxes share one in-memory database (an empty database costs about 4 MB, a
connection about 10 KB). Each sandbox holds its episode's tables as TEMPORARY tables of its own connection:
DuckDB keeps a connection's temporary catalog to that connection, so no other connection can name, list or read
them, and closing the connection drops them. The database's main catalog stays empty (nothing but a SELECT runs).

DuckDB treats SQL as code with the privileges of the process, so an agent's query meets four walls, each enough
on its own for most attacks (defence in depth):

1. the text: at most MAX_SQL_CHARS characters, no control characters;
2. DuckDB's own parser: exactly one statement, a SELECT (or WITH ... SELECT, FROM ..., DESCRIBE, SUMMARIZE); its
   parse tree (`json_serialize_sql`) may call only a few table functions and no function that waits or changes
   state, and may name no file or URL as a table;
3. DuckDB's configuration, set when the database opens and locked: no external access (files, network, Python
   replacement scans), no extension installed or loaded, no spilling to disk, one thread, a memory limit;
4. a watchdog that interrupts a statement at the time limit, and a cap on the rows a result may have.

A refusal raises SqlRefused with a message that says what is allowed; the caller shows it to the agent. The
module knows nothing of how an episode was made: it receives tables and holds nothing else.

What sessions sharing a database can do to each other: nothing through SQL (each sees only its own catalog and
every setting is locked); through resources, a query may take the database's free memory (MEMORY_LIMIT_MB, less
the tables it holds) for up to TIME_LIMIT_S, during which a query of another session of the same database that
needs memory is refused with the memory-limit message; and a failure inside the engine marks the database broken,
so each of its sessions reopens its tables (in another database) on its next query.
"""

from __future__ import annotations

import atexit
import datetime
import decimal
import gc
import json
import math
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np

from metric_tracker_rl.sql_columns import Labels, SqlColumn, SqlTable

MAX_SQL_CHARS = 4000
TIME_LIMIT_S = 1.0
# One database holds the tables of up to SESSIONS_PER_DATABASE sessions (about 4.6 MB of DuckDB memory each at
# frontier, 0.3 MB below: benchmarks/sql.py) and the working memory of their queries: MEMORY_LIMIT_MB bounds both
# together, so a database full of frontier sessions keeps more than 180 MB for queries.
SESSIONS_PER_DATABASE = 16
MEMORY_LIMIT_MB = 256
ROW_CAP = 5000  # rows a result may have (pages are cut from them)
MAX_COLUMNS = 64
MAX_CELL_CHARS = 200
FETCH_BATCH = 1024  # rows taken from DuckDB at a time
# Applied in this order (DuckDB refuses to change temp_directory once external access is off, and anything
# once the configuration is locked).
CONFIG: dict[str, Any] = {
    "temp_directory": "",  # nothing spills to disk: a query over the memory limit fails instead
    "memory_limit": f"{MEMORY_LIMIT_MB}MB",
    "threads": 1,
    "external_threads": 1,
    "autoload_known_extensions": False,
    "autoinstall_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
    "allow_persistent_secrets": False,
    "python_enable_replacements": False,  # DuckDB's Python client would otherwise read variables by name
    "python_scan_all_frames": False,
    "enable_external_access": False,  # files, network, COPY, ATTACH of files, Python replacement scans
    "lock_configuration": True,
}
# Settings that not every supported DuckDB knows (1.5 has no async_threads; 2.0 starts 8 I/O threads per database).
OPTIONAL_CONFIG: dict[str, Any] = {"async_threads": 0}
# Table functions a SELECT may call: generators and read-only views of the database's own catalog.
ALLOWED_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest", "duckdb_databases", "duckdb_schemas",
                                     "duckdb_tables", "duckdb_views", "duckdb_columns", "duckdb_settings",
                                     "duckdb_functions", "pragma_table_info"})
# Scalar functions that wait (a sleeping thread cannot be interrupted) or change state.
DENIED_FUNCTIONS = frozenset({"sleep_ms", "pg_sleep", "write_log", "setseed", "nextval", "currval", "setval"})
# Scalar functions that build one value as large as an argument asks (a list of a billion numbers, a string padded
# to a gigabyte): DuckDB checks for an interrupt between chunks, never inside one call, and such a value is not
# counted against the memory limit, so one call could hold a core for tens of seconds and gigabytes of memory.
# range and generate_series stay allowed as table functions, which stream their rows under both limits.
DENIED_VALUE_BUILDERS = frozenset({"range", "generate_series", "repeat", "lpad", "rpad", "list_resize",
                                   "array_resize", "bitstring", "printf", "format"})
_ALLOWED_CONTROL = frozenset("\t\n\r")
_PATH_MARKS = ("/", "\\", ":", ".", "~")
_optional_config_known: bool | None = None  # whether this DuckDB accepts OPTIONAL_CONFIG (found on first use)


class SqlRefused(ValueError):
    """A query the sandbox will not run or could not finish; the message tells the agent what is allowed."""


@dataclass(frozen=True)
class SqlResult:
    columns: list[str]
    rows: list[dict[str, Any]]  # the requested page
    row_count: int  # rows of the whole result


class _SharedDatabase:
    """An in-memory database with the locked configuration, shared by the connections of up to
    SESSIONS_PER_DATABASE sandboxes."""

    def __init__(self) -> None:
        self.root: duckdb.DuckDBPyConnection | None = open_database()
        self.sessions = 0
        self.broken = False  # the engine failed inside it: no sandbox joins it, and it closes when the last leaves


_DATABASES: list[_SharedDatabase] = []  # open databases, the one new sandboxes join first
_DATABASES_LOCK = threading.Lock()


def _join() -> tuple[_SharedDatabase, duckdb.DuckDBPyConnection]:
    """A new connection to a database with room for one more session (a new database when none has)."""
    with _DATABASES_LOCK:
        database = next((d for d in _DATABASES if not d.broken and d.sessions < SESSIONS_PER_DATABASE), None)
        if database is None:
            database = _SharedDatabase()
            _DATABASES.append(database)
        connection = database.root.cursor()
        database.sessions += 1
        return database, connection


def _leave(database: _SharedDatabase) -> None:
    """A sandbox's connection is closed. A database left empty closes, except the last healthy one, which stays
    for the next episode (opening one costs more than the first query of an episode)."""
    with _DATABASES_LOCK:
        database.sessions -= 1
        if database.sessions == 0 and database in _DATABASES and (database.broken or len(_DATABASES) > 1):
            _DATABASES.remove(database)
            database.root.close()
            database.root = None


def database_usage() -> list[tuple[int, float]]:
    """Each open database's sessions and the DuckDB memory it holds in MB (tables and running queries, what
    MEMORY_LIMIT_MB bounds): for benchmarks and operators."""
    with _DATABASES_LOCK:
        return [(database.sessions, database.root.execute(
            "SELECT sum(memory_usage_bytes) FROM duckdb_memory()").fetchone()[0] / 2**20) for database in _DATABASES]


class SqlSandbox:
    """`tables` (name -> its columns) as temporary tables of one connection to a shared database, read by one
    SELECT at a time.

    Not shared between episodes: a new episode opens its own, and `close()` releases it (the environment calls
    it on reset and when the session closes). Calls are serialised; `close()` interrupts a running query first."""

    def __init__(self, tables: Mapping[str, SqlTable]) -> None:
        self._database, self._con = _join()
        try:
            sources = {f"_source_{i}": _source(table) for i, table in enumerate(tables.values())}
            for name, source in sources.items():
                self._con.register(name, source)
            # One transaction for every table: a statement each, committed once.
            self._con.execute("BEGIN; " + " ".join(
                f"CREATE TEMPORARY TABLE {_quoted(table)} AS SELECT {_stored_columns(columns)} FROM {source};"
                for (table, columns), source in zip(tables.items(), sources, strict=True)) + " COMMIT").fetchall()
            for name in sources:
                self._con.unregister(name)
        except duckdb.OutOfMemoryException:
            self._drop_connection()
            raise SqlRefused("the SQL engine has no memory left for this episode's tables now (other sessions' "
                             "queries hold it); try again in a moment.") from None
        except BaseException:
            self._drop_connection()
            raise
        _OPEN.add(self)
        self.schema = {name: list(columns) for name, columns in tables.items()}
        self.allowed = (f"Allowed: one read-only SELECT (or WITH ... SELECT) statement over the tables "
                        f"{', '.join(self.schema)}; no files, network, extensions or settings.")
        self._run_lock = threading.Lock()  # one statement at a time on the connection
        self._watch_lock = threading.Lock()  # the watchdog and the statement agree on which statement runs
        self._running: object | None = None
        self._expired: object | None = None
        self.closed = False

    @property
    def usable(self) -> bool:
        """Open, on a database the engine has not given up on."""
        return not self.closed and not self._database.broken

    def tables_text(self) -> str:
        return "tables: " + "; ".join(f"{name}({', '.join(columns)})" for name, columns in self.schema.items())

    def run(self, sql: str, offset: int = 0, limit: int = ROW_CAP) -> SqlResult:
        """One SELECT's rows from `offset` (at most `limit` of them) and how many it has in all. Raises
        SqlRefused for anything but one SELECT, and for a query that breaks a limit."""
        statement = self._checked(sql)
        with self._run_lock:
            if self.closed:
                raise SqlRefused("the SQL connection of this episode is closed; reset to start a new episode")
            return self._execute(statement, offset, limit)

    def close(self) -> None:
        """Release the database. A query still running is interrupted first."""
        with self._watch_lock:
            if self._running is not None:
                self._con.interrupt()
        with self._run_lock:
            if not self.closed:
                self._release()
            _OPEN.discard(self)

    def _release(self) -> None:
        self.closed = True
        self._drop_connection()

    def _drop_connection(self) -> None:
        """Close the connection (which drops its temporary tables) and drop the object now, while the interpreter
        is whole: a DuckDB object left for the interpreter's teardown to destroy can abort the process at exit."""
        self._con.close()
        self._con = None  # type: ignore[assignment]  # every use is behind `closed`
        _leave(self._database)

    # --- the walls -----------------------------------------------------------------------------------

    def _checked(self, sql: str) -> duckdb.Statement:
        """The one SELECT statement of `sql`, parsed by DuckDB, or SqlRefused."""
        if len(sql) > MAX_SQL_CHARS:
            raise SqlRefused(f"the SQL text has {len(sql)} characters; at most {MAX_SQL_CHARS} characters. "
                             f"{self.allowed}")
        bad = next((c for c in sql if (ord(c) < 32 and c not in _ALLOWED_CONTROL) or ord(c) == 127), None)
        if bad is not None:
            raise SqlRefused(f"the SQL text holds a control character (code {ord(bad)}); write plain text. "
                             f"{self.allowed}")
        with self._run_lock:
            if self.closed:
                raise SqlRefused("the SQL connection of this episode is closed; reset to start a new episode")
            try:
                statements = self._con.extract_statements(sql)
            except duckdb.Error as exc:
                raise SqlRefused(f"SQL syntax error: {_first_lines(exc)}. {self.allowed}") from None
            if not statements:
                raise SqlRefused(f"no SQL statement found. {self.allowed}")
            if len(statements) > 1:
                raise SqlRefused(f"one statement per call, got {len(statements)}. {self.allowed}")
            (statement,) = statements
            if statement.type != duckdb.StatementType.SELECT:
                kind = statement.type.name.replace("_", " ")
                verb = (statement.query.split() or [""])[0].upper()
                named = "" if verb == kind else f" ({verb} ...)"
                raise SqlRefused(f"a {kind} statement{named} is not allowed. {self.allowed}")
            tree = self._con.execute("SELECT json_serialize_sql($1::VARCHAR)", [statement.query]).fetchone()[0]
        try:
            parsed = json.loads(tree)
        except RecursionError:  # Python's JSON reader recurses: a tree deeper than the interpreter allows
            raise SqlRefused(f"the query is nested too deeply (functions or subqueries hundreds of levels deep). "
                             f"{self.allowed}") from None
        self._check_tree(parsed)
        return statement

    def _check_tree(self, tree: dict[str, Any]) -> None:
        if tree.get("error"):
            raise SqlRefused(f"this form of query is not supported ({tree.get('error_message', '')}). "
                             f"{self.allowed}")
        stack: list[Any] = [tree["statements"]]
        while stack:  # a loop, not recursion: the tree of a long query is deep
            node = stack.pop()
            if isinstance(node, list):
                stack.extend(node)
                continue
            if not isinstance(node, dict):
                continue
            kind = node.get("type")
            if kind == "TABLE_FUNCTION":
                function = node.get("function") or {}
                name = str(function.get("function_name", "")).lower()
                if name not in ALLOWED_TABLE_FUNCTIONS:
                    raise SqlRefused(f"table function {name}() is not allowed; table functions allowed: "
                                     f"{', '.join(sorted(ALLOWED_TABLE_FUNCTIONS))}. {self.allowed}")
                # its arguments are checked like any expression; the call itself is a table function, not a value
                stack.extend(value for key, value in function.items() if key != "function_name"
                             and isinstance(value, (dict, list)))
                stack.extend(value for key, value in node.items() if key != "function"
                             and isinstance(value, (dict, list)))
                continue
            elif kind == "BASE_TABLE" and any(mark in str(node.get("table_name", "")) for mark in _PATH_MARKS):
                raise SqlRefused(f"{node['table_name']!r} reads a file or URL; no file or network access. "
                                 f"{self.tables_text()}. {self.allowed}")
            name = node.get("function_name")
            if isinstance(name, str) and name.lower() in DENIED_FUNCTIONS:
                raise SqlRefused(f"function {name.lower()}() is not allowed (it waits or changes state). "
                                 f"{self.allowed}")
            if isinstance(name, str) and name.lower() in DENIED_VALUE_BUILDERS:
                raise SqlRefused(f"function {name.lower()}() is not allowed as a value (it builds one as large as "
                                 "its argument asks, past the time and memory limits); range() and "
                                 f"generate_series() work as tables: SELECT ... FROM range(n). {self.allowed}")
            stack.extend(value for value in node.values() if isinstance(value, (dict, list)))

    def _execute(self, statement: duckdb.Statement, offset: int, limit: int) -> SqlResult:
        """Run the statement under the watchdog. Rows are fetched a batch at a time and only the page's are kept
        (converted), so a result never sits in Python whole. DuckDB errors become SqlRefused."""
        token = object()
        with self._watch_lock:
            self._running, self._expired = token, None
        watchdog = threading.Timer(TIME_LIMIT_S, self._interrupt, (token,))
        watchdog.daemon = True
        watchdog.start()
        rows: list[list[Any]] = []
        count = 0
        try:
            self._con.execute(statement)
            description = self._con.description or []
            while len(description) <= MAX_COLUMNS and count <= ROW_CAP:
                batch = self._con.fetchmany(FETCH_BATCH)
                if not batch:
                    break
                rows += [[_cell(value) for value in row] for row in batch[max(0, offset - count):
                                                                            max(0, offset + limit - count)]]
                count += len(batch)
        except duckdb.Error as exc:
            raise self._refusal(exc, expired=self._stop(watchdog, token)) from None
        except (ValueError, OverflowError) as exc:  # a value Python cannot hold (a date past year 9999, ...)
            self._stop(watchdog, token)
            raise SqlRefused(f"a value of the result cannot be shown ({exc}); CAST it to VARCHAR. "
                             f"{self.allowed}") from None
        self._stop(watchdog, token)
        if len(description) > MAX_COLUMNS:
            raise SqlRefused(f"the result has {len(description)} columns; at most {MAX_COLUMNS} columns.")
        if count > ROW_CAP:
            raise SqlRefused(f"the result has more than {ROW_CAP} rows; narrow it with WHERE, GROUP BY or LIMIT "
                             "(pages of a result come from the limit and offset arguments).")
        columns = _column_names([column[0] for column in description])
        return SqlResult(columns, [dict(zip(columns, row, strict=True)) for row in rows], count)

    def _interrupt(self, token: object) -> None:
        with self._watch_lock:
            if self._running is token:  # the statement it was started for is still running
                self._expired = token
                self._con.interrupt()

    def _stop(self, watchdog: threading.Timer, token: object) -> bool:
        """Stop watching; whether the statement was interrupted at the time limit."""
        watchdog.cancel()
        with self._watch_lock:
            self._running = None
            return self._expired is token

    def _refusal(self, exc: duckdb.Error, *, expired: bool) -> SqlRefused:
        if expired or isinstance(exc, duckdb.InterruptException):
            return SqlRefused(f"the query ran past the {TIME_LIMIT_S:g} s time limit and was stopped; "
                              "aggregate or filter earlier.")
        if isinstance(exc, duckdb.OutOfMemoryException):
            return SqlRefused(f"the query needs more memory than is free under the {MEMORY_LIMIT_MB} MB memory "
                              "limit (shared with other sessions' tables and queries); aggregate or filter earlier.")
        if isinstance(exc, duckdb.PermissionException):
            return SqlRefused(f"no file, network or extension access. {self.tables_text()}. {self.allowed}")
        if isinstance(exc, (duckdb.InternalException, duckdb.FatalException)):
            # DuckDB may have invalidated the database: no sandbox joins it again, and the next query of each of its
            # sessions opens its tables afresh elsewhere.
            self._database.broken = True
            self._release()
            return SqlRefused("the query failed inside the SQL engine; the connection was reset, try another query.")
        if isinstance(exc, (duckdb.CatalogException, duckdb.BinderException)):
            return SqlRefused(f"{_first_lines(exc)}. {self.tables_text()}.")
        return SqlRefused(f"{_first_lines(exc)}. {self.allowed}")


# Sandboxes not closed yet: closed at exit, so that no DuckDB connection outlives the interpreter's shutdown.
_OPEN: weakref.WeakSet[SqlSandbox] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    """Close every sandbox, then collect reference cycles: a DuckDB object (a parsed statement, a result type)
    still held in a cycle at interpreter shutdown would be destroyed after the interpreter's teardown began, which
    aborts the process (exit code 134). Collected here, while the interpreter is whole, it goes quietly."""
    for sandbox in list(_OPEN):
        sandbox.close()
    with _DATABASES_LOCK:
        for database in _DATABASES:
            database.root.close()
            database.root = None
        _DATABASES.clear()
    gc.collect()


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _source(table: Mapping[str, SqlColumn]) -> dict[str, np.ndarray]:
    """The arrays DuckDB scans for a table: Labels as their codes, dates in seconds (DuckDB's NumPy scan does not
    read datetime64[D])."""
    arrays = {}
    for name, column in table.items():
        if isinstance(column, Labels):
            arrays[name] = column.codes
        elif column.dtype.kind == "M":
            arrays[name] = column.astype("datetime64[s]")
        else:
            arrays[name] = column
    return arrays


def _stored_columns(table: Mapping[str, SqlColumn]) -> str:
    """The select list that stores a table's source: dates as DATE (the tables are by day, and by integer hour),
    text as VARCHAR (Labels decoded inside DuckDB); numbers and booleans as they are."""
    columns = []
    for name, column in table.items():
        quoted = _quoted(name)
        if isinstance(column, Labels):  # a CASE: cheaper in DuckDB than indexing a list literal
            cases = " ".join(f"WHEN {code} THEN {_literal(value)}" for code, value in enumerate(column.values))
            columns.append(f"CAST(CASE {quoted} {cases} END AS VARCHAR) AS {quoted}")
        elif column.dtype.kind == "M":
            columns.append(f"CAST({quoted} AS DATE) AS {quoted}")
        elif column.dtype.kind in "OU":
            columns.append(f"CAST({quoted} AS VARCHAR) AS {quoted}")
        else:
            columns.append(quoted)
    return ", ".join(columns)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def open_database() -> duckdb.DuckDBPyConnection:
    """A new in-memory database with the locked configuration (CONFIG, and OPTIONAL_CONFIG where known)."""
    global _optional_config_known
    if _optional_config_known is not False:
        try:
            con = duckdb.connect(":memory:", config={**OPTIONAL_CONFIG, **CONFIG})
        except duckdb.InvalidInputException:
            _optional_config_known = False
        else:
            _optional_config_known = True
            return con
    return duckdb.connect(":memory:", config=CONFIG)


def _first_lines(exc: Exception, limit: int = 400) -> str:
    """DuckDB's message on one line, shortened: without the position marker (which needs its own lines), the
    hint to change a setting (settings are locked) and double quotes (the table view would escape them)."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    text = text.split(" LINE ")[0].split(' Use "SET ')[0].replace('"', "'").rstrip(". ")
    return text if len(text) <= limit else text[:limit] + "..."


def _column_names(names: list[str]) -> list[str]:
    """Column names that a table view can show: one line, no cell separator or key mark, non-empty, unique."""
    out: list[str] = []
    for i, name in enumerate(names):
        clean = " ".join(str(name).replace("|", "/").replace(":", "_").split())[:64] or f"column_{i + 1}"
        unique, n = clean, 2
        while unique in out:
            unique, n = f"{clean}_{n}", n + 1
        out.append(unique)
    return out


def _cell(value: Any) -> Any:
    """A DuckDB value as a plain JSON value: finite numbers, text (cut at MAX_CELL_CHARS), booleans and null."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, decimal.Decimal):
        return _cell(float(value))
    if isinstance(value, (datetime.date, datetime.time)):  # datetime is a date
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        text = bytes(value).hex()
    elif isinstance(value, str):
        text = value
    elif isinstance(value, (list, dict, tuple)):
        text = json.dumps(value, default=str, ensure_ascii=False)
    else:
        text = str(value)
    if len(text) > MAX_CELL_CHARS:
        text = f"{text[:MAX_CELL_CHARS]}... ({len(text)} characters)"
    return text
