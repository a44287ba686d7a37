"""The SQL engine's side of the sandbox: what runs inside a worker process (metric_tracker_rl.sql.worker).

An episode's tables are served as read-only views: each table's arrays are scanned in place by DuckDB (a relation
over the arrays, registered as a temporary view of the episode's own connection), so no statement can change,
add to or grow them. A DELETE, UPDATE or INSERT (also inside a CTE) fails to bind ("can only delete from base
table"), and the memory an episode holds is what it was given. The parse tree is checked too (defence in depth).

The walls a statement meets here, after the text checks of `sandbox`:

1. DuckDB's own parser: exactly one statement, a SELECT (or WITH ... SELECT, FROM ..., DESCRIBE, SUMMARIZE); its
   parse tree (`json_serialize_sql`) may call only a few table functions, no function that waits or changes
   state, no scalar that builds one value as large as its argument asks, and may name no file or URL as a table;
2. DuckDB's configuration, set when the worker's database opens and locked: no external access, no extension
   installed or loaded, no spilling to disk, one thread, a memory limit, and nothing that names a path or a user;
3. an interrupt at the time limit (a thread of the worker), and a row cap applied inside the engine (a LIMIT on
   top of the statement) before any row becomes a Python object.

The worker process adds the walls the engine cannot: an address-space limit, and a kill at the time limit plus a
grace period for what an interrupt cannot stop (planning, one long function call, result conversion).
"""

from __future__ import annotations

import difflib
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import duckdb

from metric_tracker_rl.sql.cells import column_names, page_cells
from metric_tracker_rl.sql.columns import Nested, PackedTable, ServedTable
from metric_tracker_rl.sql.table_views import arrow_table, literal, stored_columns, stored_source

# CPU seconds a statement may use. Its CPU time for the same work varies with the machine and its load (seen from
# 0.6 to 1.1 s for one statement of a capable model's, whose heaviest take about 0.9 s here): four times the
# heaviest statement a reference agent or a capable model sends keeps every outcome the same on a busy machine.
TIME_LIMIT_S = 4.0
MEMORY_LIMIT_MB = 256  # DuckDB's own limit in a worker, for a query's working memory
QUERY_MB = 768  # address space a worker may add for one query (DuckDB's MEMORY_LIMIT_MB and Python's conversion)
CACHE_MB = 256  # address space a worker may hold for episodes' tables
# A worker's resident memory once started (Python, DuckDB, NumPy, pandas; measured about 150 MB): with CACHE_MB
# and QUERY_MB, what one worker may hold at most, which the declared memory (openenv.yaml) must cover.
WORKER_START_MB = 160
MEMORY_MESSAGE = (
    f"the query needed more memory than a query may use ({MEMORY_LIMIT_MB} MB in the engine, "
    f"{QUERY_MB} MB in all) and was stopped; aggregate or filter earlier."
)
TIME_MESSAGE = f"the query ran past the {TIME_LIMIT_S:g} s time limit and was stopped; aggregate or filter earlier."
ROW_CAP = 5000  # rows a result may have (pages are cut from them)
MAX_COLUMNS = 64
# Applied in this order (DuckDB refuses to change temp_directory once external access is off, and anything
# once the configuration is locked). secret_directory would otherwise name the home directory of the user the
# server runs as; the worker runs in "/" so that no setting names the server's working directory.
CONFIG: dict[str, Any] = {
    "secret_directory": "none",
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
SET_AFTER_CONNECT = ("secret_directory", "enable_external_access", "lock_configuration")
# Settings that not every supported DuckDB knows (1.5 has no async_threads; 2.0 starts 8 I/O threads per database).
OPTIONAL_CONFIG: dict[str, Any] = {"async_threads": 0}
# Table functions a SELECT may call: generators and read-only views of the database's own catalog.
ALLOWED_TABLE_FUNCTIONS = frozenset(
    {
        "range",
        "generate_series",
        "unnest",
        "duckdb_databases",
        "duckdb_schemas",
        "duckdb_tables",
        "duckdb_columns",
        "duckdb_settings",
        "duckdb_functions",
        "pragma_table_info",
    }
)
# The catalog's views and functions that show the engine rather than the episode: the definitions of the tables'
# views (which name the worker's internal objects) and the engine's version. The tables and their columns are
# listed by what LISTING names.
INTERNAL_CATALOG = frozenset(
    {"duckdb_views", "sqlite_master", "sqlite_schema", "sqlite_temp_master", "sqlite_temp_schema", "views", "pg_views"}
)
INTERNAL_FUNCTIONS = frozenset({"version"})
LISTING = "SHOW TABLES or information_schema.tables lists the tables, duckdb_columns() their columns"
GENERATORS = frozenset({"range", "generate_series", "unnest"})
# Scalar functions that wait (a sleeping thread cannot be interrupted) or change state.
DENIED_FUNCTIONS = frozenset({"sleep_ms", "pg_sleep", "write_log", "setseed", "nextval", "currval", "setval"})
# Functions whose value is not the data's: the clock, chance, or the worker's own counters (which connection,
# query or transaction of its life this is). The same statement must give the same answer at any time, in any worker.
UNREPEATABLE_FUNCTIONS = frozenset(
    {
        "random",
        "uuid",
        "gen_random_uuid",
        "uuidv4",
        "uuidv7",
        "now",
        "today",
        "get_current_time",
        "get_current_timestamp",
        "transaction_timestamp",
        "current_localtime",
        "current_localtimestamp",
        "current_query_id",
        "current_transaction_id",
        "current_connection_id",
        "txid_current",
    }
)
# The clock's keywords, which the parser reads as a column of that name.
CLOCK_KEYWORDS = frozenset({"current_date", "current_time", "current_timestamp", "localtime", "localtimestamp"})
# Scalar functions that build one value as large as an argument asks (a list of a billion numbers, a string padded
# to a gigabyte). The worker's limits stop them anyway; refusing them first says why and costs no worker.
DENIED_VALUE_BUILDERS = frozenset(
    {
        "range",
        "generate_series",
        "repeat",
        "lpad",
        "rpad",
        "list_resize",
        "array_resize",
        "bitstring",
        "printf",
        "format",
    }
)
# Parse-tree nodes that write. A DELETE, UPDATE or INSERT inside a SELECT (in a CTE: DELETE_QUERY_NODE, ...) is
# refused by name before it reaches the binder, which would refuse it too: the tables are views.
WRITING_NODES = frozenset({"INSERT_NODE", "UPDATE_NODE", "DELETE_NODE"})
_PATH_MARKS = ("/", "\\", ":", ".", "~")
# Statement texts an episode keeps the checks of (its last ones): a statement paged with offset, or sent again, is
# not parsed and checked again. The verdict is a function of the text and the episode's tables, which never change.
CHECKED_TEXTS = 32


class Refusal(Exception):
    """A statement the engine will not run or could not finish; the message is for the agent. `restart` asks the
    pool for a fresh worker (the engine may be in a bad state)."""

    def __init__(self, message: str, *, restart: bool = False) -> None:
        super().__init__(message)
        self.restart = restart


def open_database() -> duckdb.DuckDBPyConnection:
    """A new in-memory database with the locked configuration: CONFIG (and OPTIONAL_CONFIG where known) at
    connection, then the SET_AFTER_CONNECT settings in order (DuckDB refuses some combinations at connection)."""
    at_connect = {name: value for name, value in CONFIG.items() if name not in SET_AFTER_CONNECT}
    try:
        database = duckdb.connect(":memory:", config={**OPTIONAL_CONFIG, **at_connect})
    except duckdb.InvalidInputException:
        database = duckdb.connect(":memory:", config=at_connect)
    for name in SET_AFTER_CONNECT:
        value = CONFIG[name]
        database.execute(f"SET {name} = {literal(value) if isinstance(value, str) else str(value).lower()}")
    return database


def article(word: str) -> str:
    return "an" if word[:1].upper() in "AEIOU" else "a"


class EpisodeTables:
    """One episode's tables as read-only views of a connection of their own (its temporary catalog: no other
    episode's connection can name or list them), and the statements run over them. A table's view is made when
    a statement first names it (every view when a statement may list the catalog), so a first query pays for the
    tables it reads."""

    def __init__(self, database: duckdb.DuckDBPyConnection, tables: Mapping[str, ServedTable]) -> None:
        self.con = database.cursor()
        self._tables = dict(tables)
        self._viewed: set[str] = set()
        self.schema = {name: list(columns) for name, columns in tables.items()}
        self.allowed = (
            f"Allowed: one read-only SELECT (or WITH ... SELECT) statement over the tables "
            f"{', '.join(self.schema)}; no files, network, extensions or settings."
        )
        self._watch_lock = threading.Lock()
        self._running = False
        self._checked_texts: OrderedDict[str, str] = OrderedDict()  # text -> its one statement, as DuckDB split it

    def view(self, names: set[str] | None = None) -> None:
        """Make the views of `names` (None: every table) that are not made yet."""
        import pandas as pd  # the worker's start-up imports it; a relation over a frame scans its arrays in place

        for name in self.schema if names is None else [name for name in self.schema if name in names]:
            if name not in self._viewed:
                table = self._tables[name]
                if isinstance(table, PackedTable):
                    self.con.register(name, self.con.from_arrow(table.arrow()))
                elif any(isinstance(column, Nested) for column in table.values()):
                    self.con.register(name, self.con.from_arrow(arrow_table(table)))
                else:
                    frame = pd.DataFrame(stored_source(table), copy=False)
                    self.con.register(name, self.con.from_df(frame).project(stored_columns(table)))
                self._viewed.add(name)

    def close(self) -> None:
        self.con.close()

    def tables_text(self) -> str:
        return "tables: " + "; ".join(f"{name}({', '.join(columns)})" for name, columns in self.schema.items())

    def interrupt(self) -> None:
        """Stop the running statement, if any (the worker's watchdog calls this at the time limit)."""
        with self._watch_lock:
            if self._running:
                self.con.interrupt()

    def run(self, sql: str, offset: int, limit: int) -> tuple[list[str], list[list[Any]], int]:
        """The columns, the page's rows (cells as plain JSON values) and the result's row count, or Refusal."""
        statement = self._checked(sql)
        try:
            return self._execute(statement, offset, limit)
        except duckdb.Error as exc:
            raise self._refusal(exc) from None
        except (ValueError, OverflowError) as exc:  # a value Python cannot hold (a date past year 9999, ...)
            raise Refusal(
                f"a value of the result cannot be shown ({exc}); CAST it to VARCHAR. {self.allowed}"
            ) from None

    # --- the walls -----------------------------------------------------------------------------------

    def _checked(self, sql: str) -> str:
        """The text's one statement, checked (see the module docstring), with the views of the tables it names."""
        statement = self._checked_texts.get(sql)
        if statement is None:
            statement = self._checked_texts[sql] = self._check(sql)
            if len(self._checked_texts) > CHECKED_TEXTS:
                self._checked_texts.popitem(last=False)
        else:
            self._checked_texts.move_to_end(sql)
        return statement

    def _check(self, sql: str) -> str:
        try:
            statements = self.con.extract_statements(sql)
        except duckdb.Error as exc:
            raise Refusal(f"SQL syntax error: {first_lines(exc)}. {self.allowed}") from None
        if not statements:
            raise Refusal(f"no SQL statement found. {self.allowed}")
        if len(statements) > 1:
            raise Refusal(f"one statement per call, got {len(statements)}. {self.allowed}")
        (statement,) = statements
        verb = (statement.query.split() or [""])[0].upper()
        try:
            kind = statement.type
        except ValueError:  # a statement type this DuckDB client cannot name (UPDATE EXTENSIONS, ...)
            raise Refusal(f"{article(verb)} {verb} statement is not allowed. {self.allowed}") from None
        if kind != duckdb.StatementType.SELECT:
            name = kind.name.replace("_", " ")
            named = "" if verb == name else f" ({verb} ...)"
            raise Refusal(f"{article(name)} {name} statement{named} is not allowed. {self.allowed}")
        # The text as a literal, not a parameter: a prepared statement's binding costs more than the parse.
        tree = self.con.execute(f"SELECT json_serialize_sql({literal(statement.query)})").fetchall()[0][0]
        try:
            parsed = json.loads(tree)
        except RecursionError:  # Python's JSON reader recurses: a tree deeper than the interpreter allows
            raise Refusal(
                f"the query is nested too deeply (functions or subqueries hundreds of levels deep). {self.allowed}"
            ) from None
        self.view(self._check_tree(parsed))
        return statement.query

    def _check_tree(self, tree: dict[str, Any]) -> set[str] | None:
        """Refuses what the statement may not do; returns the episode's tables it names (None: it may read the
        catalog, a SHOW, a table function or a name that is not a table of the episode, so it gets them all)."""
        if tree.get("error"):
            raise Refusal(f"this form of query is not supported ({tree.get('error_message', '')}). {self.allowed}")
        named: set[str] | None = set()
        stack: list[Any] = [tree["statements"]]
        while stack:  # a loop, not recursion: the tree of a long query is deep
            node = stack.pop()
            if isinstance(node, list):
                stack.extend(node)
                continue
            if not isinstance(node, dict):
                continue
            kind = node.get("type")
            if isinstance(kind, str) and (kind.endswith("_QUERY_NODE") or kind in WRITING_NODES):
                verb = str(kind).split("_")[0]
                raise Refusal(
                    f"{article(verb)} {verb} inside a query is not allowed: the tables are read-only. {self.allowed}"
                )
            if kind == "SHOW_REF":
                named = None
            _check_repeatable(node, self.allowed)
            self._check_internal(node)
            if kind == "BASE_TABLE" and named is not None:
                table = str(node.get("table_name", "")).lower()
                named = named | {table} if table in self.schema else None
            if kind == "TABLE_FUNCTION":
                function = node.get("function") or {}
                table_function = str(function.get("function_name", "")).lower()
                if table_function not in GENERATORS:  # the catalog's own functions list the tables
                    named = None
                if table_function not in ALLOWED_TABLE_FUNCTIONS:
                    raise Refusal(
                        f"table function {table_function}() is not allowed; table functions allowed: "
                        f"{', '.join(sorted(ALLOWED_TABLE_FUNCTIONS))}. {self.allowed}"
                    )
                # its arguments are checked like any expression; the call itself is a table function, not a value
                stack.extend(
                    value
                    for key, value in function.items()
                    if key != "function_name" and isinstance(value, (dict, list))
                )
                stack.extend(
                    value for key, value in node.items() if key != "function" and isinstance(value, (dict, list))
                )
                continue
            if kind == "BASE_TABLE" and any(mark in str(node.get("table_name", "")) for mark in _PATH_MARKS):
                raise Refusal(
                    f"{node['table_name']!r} reads a file or URL; no file or network access. "
                    f"{self.tables_text()}. {self.allowed}"
                )
            name = node.get("function_name")
            if isinstance(name, str) and name.lower() in DENIED_FUNCTIONS:
                raise Refusal(f"function {name.lower()}() is not allowed (it waits or changes state). {self.allowed}")
            if isinstance(name, str) and name.lower() in DENIED_VALUE_BUILDERS:
                raise Refusal(
                    f"function {name.lower()}() is not allowed as a value (it builds one as large as its "
                    "argument asks, past the time and memory limits); range() and generate_series() "
                    f"work as tables: SELECT ... FROM range(n). {self.allowed}"
                )
            stack.extend(value for value in node.values() if isinstance(value, (dict, list)))
        return named

    def _check_internal(self, node: dict[str, Any]) -> None:
        """Refuses a read of INTERNAL_CATALOG (as a view, or a table function) or a call of INTERNAL_FUNCTIONS."""
        kind = node.get("type")
        function = node.get("function") if kind == "TABLE_FUNCTION" else None
        if isinstance(function, dict):
            name, shown = str(function.get("function_name", "")).lower(), "{}()"
        elif kind == "BASE_TABLE":
            name, schema = str(node.get("table_name", "")).lower(), str(node.get("schema_name", "")).lower()
            if name == "views" and schema != "information_schema":  # a CTE may be called views
                return
            shown = f"{schema}.{{}}" if schema else "{}"
        else:
            name, shown = str(node.get("function_name", "")).lower(), "{}()"
        internal = INTERNAL_FUNCTIONS if kind == "FUNCTION" else INTERNAL_CATALOG
        if name in internal and name not in self.schema:
            raise Refusal(
                f"{shown.format(name)} is not allowed: it shows the SQL engine, not the episode's data; "
                f"{LISTING}. {self.allowed}"
            )

    def _execute(self, statement: str, offset: int, limit: int) -> tuple[list[str], list[list[Any]], int]:
        """The engine itself cuts the result at ROW_CAP + 1 rows (a LIMIT on top of the statement), so no more rows
        than that ever reach Python; only the page's cells are converted to JSON values."""
        with self._watch_lock:
            self._running = True
        try:
            # One bind and one run: the statement as a subquery under the row cap (a line break before the
            # closing parenthesis ends a trailing comment).
            self.con.execute(f"SELECT * FROM (\n{statement}\n) LIMIT {ROW_CAP + 1}")
            columns = [column[0] for column in self.con.description or []]
            fetched = self.con.fetchall()
        finally:
            with self._watch_lock:
                self._running = False
        if len(columns) > MAX_COLUMNS:
            raise Refusal(f"the result has {len(columns)} columns; at most {MAX_COLUMNS} columns.")
        count = len(fetched)
        if count > ROW_CAP:
            raise Refusal(
                f"the result has more than {ROW_CAP} rows; narrow it with WHERE, GROUP BY or LIMIT "
                "(pages of a result come from the limit and offset arguments)."
            )
        return column_names(columns), page_cells(fetched[offset : offset + limit]), count

    def _refusal(self, exc: duckdb.Error) -> Refusal:
        if isinstance(exc, duckdb.InterruptException):
            return Refusal(TIME_MESSAGE)
        if isinstance(exc, duckdb.OutOfMemoryException):
            return Refusal(MEMORY_MESSAGE)
        if isinstance(exc, duckdb.PermissionException):
            return Refusal(f"no file, network or extension access. {self.tables_text()}. {self.allowed}")
        if isinstance(exc, (duckdb.InternalException, duckdb.FatalException)):
            return Refusal(
                "the query failed inside the SQL engine; the engine was restarted, try another query.", restart=True
            )
        if isinstance(exc, (duckdb.CatalogException, duckdb.BinderException)):
            text = self._own_suggestion(first_lines(exc))
            return Refusal(f"{text}{'' if text.endswith('?') else '.'} {self.tables_text()}.")
        return Refusal(f"{first_lines(exc)}. {self.allowed}")

    def _own_suggestion(self, text: str) -> str:
        """DuckDB suggests the nearest name of its whole catalog (`pg_enum`, `pg_tables`); an unknown table gets
        the nearest of the episode's own tables instead, or none."""
        text, _, _ = text.partition(" Did you mean ")
        text = text.rstrip("!. ")
        if "Table with name " in text:
            name = text.split("Table with name ", 1)[1].split(" does not exist", 1)[0]
            near = difflib.get_close_matches(name.lower(), list(self.schema), n=1, cutoff=0.5)
            if near:
                text += f". Did you mean {near[0]}?"
        return text


def _check_repeatable(node: dict[str, Any], allowed: str) -> None:
    """Refuses what would answer differently at another time or in another worker: the clock, chance, and a sample
    without a seed (one with a seed draws the same rows every time: the engine runs on one thread)."""
    name = node.get("function_name")
    columns = node.get("column_names") if node.get("class") == "COLUMN_REF" else None
    word = (
        str(name).lower()
        if isinstance(name, str)
        else str(columns[0]).lower()
        if isinstance(columns, list) and len(columns) == 1
        else ""
    )
    if word in UNREPEATABLE_FUNCTIONS or (columns is not None and word in CLOCK_KEYWORDS):
        raise Refusal(
            f"{word}{'()' if name else ''} is not allowed: its value depends on the clock or on chance, "
            f"not on the data, and the same query must give the same answer. {allowed}"
        )
    sample = node.get("sample")
    if isinstance(sample, dict) and not sample.get("repeatable"):
        raise Refusal(
            "a sample is allowed with a seed only (USING SAMPLE 10% (bernoulli, 42), TABLESAMPLE 10% "
            f"(bernoulli, 42)), so that the same query draws the same rows. {allowed}"
        )


def first_lines(exc: Exception, limit: int = 400) -> str:
    """DuckDB's message on one line, shortened: without the position marker (which needs its own lines), the
    hint to change a setting (settings are locked) and double quotes (the table view would escape them)."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    text = text.split(" LINE ")[0].split(' Use "SET ')[0].replace('"', "'").rstrip(". ")
    return text if len(text) <= limit else text[:limit] + "..."
