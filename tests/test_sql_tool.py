"""The read-only SQL tool `query`: a query surface is an attack surface, so the abuse cases come first.

Every refusal is an agent mistake: a clear error naming what is allowed, returned as an error observation that
costs a step, never an exception. Then the behaviour: results equal what pandas computes on the same public
data, paging, the time limit, the connection's lifetime, and a real server over the WebSocket.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sql_helpers import PUBLIC_TABLES, public_episode
from text_reader import parse as parse_view
from websockets.sync.client import connect

from metric_tracker_rl import MetricTrackerRlAction
from metric_tracker_rl.analysis_tools import TOOL_REGISTRY
from metric_tracker_rl.analysis_tools.sql import SANDBOX_KEY
from metric_tracker_rl.catalog.published import COUNT_COLUMNS
from metric_tracker_rl.serving.environment import THREADED_TOOLS, MetricTrackerRlEnvironment
from metric_tracker_rl.sql.pool import pool
from metric_tracker_rl.sql.sandbox import (
    CONFIG,
    CUT_MARK,
    MAX_CELL_CHARS,
    MAX_SQL_CHARS,
    MEMORY_LIMIT_MB,
    ROW_CAP,
    TIME_LIMIT_S,
    SqlRefused,
    SqlSandbox,
)
from metric_tracker_rl.view import render
from metric_tracker_rl.view.observation import render_observation
from metric_tracker_rl.world.public_episode import PublicEpisode

# A refusal names what is allowed.
ALLOWED = "one read-only SELECT"


@pytest.fixture(scope="module")
def public() -> PublicEpisode:
    return public_episode()


@pytest.fixture(scope="module")
def sandbox(public: PublicEpisode) -> Any:
    """One sandbox for every abuse case: none of them may change what the next one sees."""
    box = SqlSandbox(public.sql_tables())
    yield box
    box.close()


def assert_intact(box: SqlSandbox, public: PublicEpisode) -> None:
    """The episode still has exactly the public tables (read-only views), unchanged, and still answers."""
    views = box.run(
        "SELECT table_name AS view_name FROM information_schema.tables WHERE table_type = 'VIEW' ORDER BY 1"
    ).rows
    assert {row["view_name"] for row in views} == PUBLIC_TABLES
    assert box.run("SELECT count(*) AS n FROM duckdb_tables()").rows == [{"n": 0}]
    counts = box.run("SELECT sum(app_opens) AS a, count(*) AS n FROM daily").rows[0]
    assert counts == {"a": int(public.data.daily[:, 0].sum()), "n": len(public.dates)}
    settings_now = {
        row["name"]: row["value"]
        for row in box.run(
            "SELECT name, value FROM duckdb_settings() WHERE name IN ('enable_external_access', 'lock_configuration', "
            "'threads', 'autoload_known_extensions', 'autoinstall_known_extensions')"
        ).rows
    }
    assert settings_now == {
        "enable_external_access": "false",
        "lock_configuration": "true",
        "threads": "1",
        "autoload_known_extensions": "false",
        "autoinstall_known_extensions": "false",
    }


# --- abuse: statements other than one SELECT ------------------------------------------------------------

NOT_A_SELECT = [
    "ATTACH ':memory:' AS other",
    "ATTACH '/tmp/wsql_attached.db' AS other",
    "DETACH memory",
    "COPY daily TO '/tmp/wsql_copy_out.csv'",
    "COPY (SELECT * FROM daily) TO '/tmp/wsql_copy_out.csv'",
    "COPY daily FROM '/etc/passwd'",
    "INSTALL httpfs",
    "FORCE INSTALL httpfs",
    "LOAD httpfs",
    "INSTALL h3 FROM community",
    "PRAGMA threads=4",
    "PRAGMA enable_profiling",
    "PRAGMA version",
    "SET threads = 4",
    "SET enable_external_access = true",
    "SET GLOBAL lock_configuration = false",
    "RESET threads",
    "RESET ALL",
    "SET VARIABLE x = 1",
    "USE system",
    "CALL enable_profiling()",
    "CALL pragma_version()",
    "EXPORT DATABASE '/tmp/wsql_export'",
    "IMPORT DATABASE '/tmp/wsql_export'",
    "CHECKPOINT",
    "FORCE CHECKPOINT",
    "VACUUM",
    "ANALYZE",
    "CREATE TABLE t AS SELECT 1 AS x",
    "CREATE TEMP TABLE t AS SELECT 1 AS x",
    "CREATE VIEW v AS SELECT 1 AS x",
    "CREATE MACRO m(a) AS a + 1",
    "CREATE SEQUENCE s",
    "CREATE SECRET (TYPE s3, KEY_ID 'k', SECRET 's')",
    "CREATE SCHEMA s",
    "INSERT INTO daily SELECT * FROM daily",
    "UPDATE daily SET app_opens = 0",
    "DELETE FROM daily",
    "TRUNCATE daily",
    "DROP TABLE daily",
    "ALTER TABLE daily RENAME TO gone",
    "ALTER TABLE daily ADD COLUMN x INTEGER",
    "BEGIN TRANSACTION",
    "COMMIT",
    "PREPARE p AS SELECT 1",
    "EXECUTE p",
    "DEALLOCATE p",
    "EXPLAIN SELECT 1",
    "EXPLAIN ANALYZE SELECT * FROM daily",
    "PIVOT daily ON weekday USING sum(app_opens)",
    "/* a comment */ DROP TABLE daily",
    "-- a line comment\nDELETE FROM daily",
]

SEVERAL = [
    "SELECT 1; DROP TABLE daily",
    "SELECT 1; SELECT 2",
    "SELECT 1 /* ; */; DROP TABLE daily",
    "SELECT 1;\n-- harmless?\nATTACH ':memory:' AS x",
    "WITH x AS (SELECT 1) SELECT * FROM x; COPY daily TO '/tmp/x'",
]


@pytest.mark.parametrize("sql", NOT_A_SELECT)
def test_every_statement_but_a_select_is_refused(sandbox: SqlSandbox, public: PublicEpisode, sql: str) -> None:
    with pytest.raises(SqlRefused, match=ALLOWED):
        sandbox.run(sql)
    assert_intact(sandbox, public)


@pytest.mark.parametrize("sql", SEVERAL)
def test_several_statements_in_one_string_are_refused(sandbox: SqlSandbox, public: PublicEpisode, sql: str) -> None:
    with pytest.raises(SqlRefused, match="one statement"):
        sandbox.run(sql)
    assert_intact(sandbox, public)


def test_nothing_was_written_to_the_file_system(sandbox: SqlSandbox) -> None:
    for sql in NOT_A_SELECT + SEVERAL:
        with pytest.raises(SqlRefused):
            sandbox.run(sql)
    for path in ("/tmp/wsql_copy_out.csv", "/tmp/wsql_attached.db", "/tmp/wsql_export", "/tmp/x"):
        assert not Path(path).exists(), path


# --- abuse: files, network, extensions and functions with side effects inside a SELECT ---------------------

FILE_READERS = [
    "read_csv",
    "read_csv_auto",
    "read_parquet",
    "parquet_scan",
    "read_json",
    "read_json_auto",
    "read_ndjson",
    "read_json_objects",
    "read_text",
    "read_blob",
    "glob",
    "sniff_csv",
    "parquet_metadata",
]
PLACES = ["/etc/passwd", "https://example.com/data.csv", "s3://bucket/data.parquet", "~/.ssh/id_rsa"]


@pytest.mark.parametrize("reader", FILE_READERS)
@pytest.mark.parametrize("place", PLACES)
def test_no_file_or_network_reader_answers(sandbox: SqlSandbox, reader: str, place: str) -> None:
    with pytest.raises(SqlRefused, match="table functions allowed"):
        sandbox.run(f"SELECT * FROM {reader}('{place}')")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM '/etc/passwd'",
        "FROM '/etc/passwd'",
        "SELECT * FROM 'https://example.com/data.csv'",
        "SELECT * FROM 'data.parquet'",
        'SELECT * FROM "/etc/hosts"',
        "SELECT count(*) FROM 's3://bucket/x.json'",
    ],
)
def test_replacement_scans_of_paths_and_urls_are_refused(sandbox: SqlSandbox, sql: str) -> None:
    with pytest.raises(SqlRefused, match="file"):
        sandbox.run(sql)


# A global of this module: DuckDB's Python client would scan it by name if replacement scans were on.
leaky_global_frame = pd.DataFrame({"secret": ["python-global"]})


def test_python_variables_are_not_tables(sandbox: SqlSandbox) -> None:
    leaky_local_frame = pd.DataFrame({"secret": ["python-local"]})  # noqa: F841 - scanned by name if allowed
    for name in ("leaky_local_frame", "leaky_global_frame", "pd", "np", "os"):
        with pytest.raises(SqlRefused, match="tables: daily"):
            sandbox.run(f"SELECT * FROM {name}")
    assert CONFIG["python_enable_replacements"] is False and CONFIG["python_scan_all_frames"] is False
    # The same query on an unprotected connection does read the local variable: the check above means something.
    plain = duckdb.connect(":memory:")
    try:
        assert plain.execute("SELECT * FROM leaky_local_frame").fetchall() == [("python-local",)]
    finally:
        plain.close()


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM sqlite_scan('x.db', 't')",
        "SELECT * FROM read_xlsx('x.xlsx')",
        "SELECT st_point(1, 2)",
        "SELECT * FROM postgres_scan('host=localhost', 'public', 't')",
        "SELECT * FROM iceberg_scan('s3://bucket/t')",
        "SELECT * FROM delta_scan('/tmp/t')",
    ],
)
def test_no_extension_is_autoloaded(sandbox: SqlSandbox, public: PublicEpisode, sql: str) -> None:
    with pytest.raises(SqlRefused):
        sandbox.run(sql)
    assert_intact(sandbox, public)


@pytest.mark.parametrize(
    "function",
    [
        "enable_profiling",
        "disable_profiling",
        "enable_logging",
        "disable_logging",
        "truncate_duckdb_logs",
        "checkpoint",
        "force_checkpoint",
        "duckdb_secrets",
        "duckdb_extensions",
        "which_secret",
        "register_external_resource",
        "json_execute_serialized_sql",
        "pandas_scan",
        "arrow_scan",
        "python_map_function",
    ],
)
def test_table_functions_with_effects_are_refused(sandbox: SqlSandbox, public: PublicEpisode, function: str) -> None:
    with pytest.raises(SqlRefused, match="table functions allowed: .*range"):
        sandbox.run(f"SELECT * FROM {function}()")
    assert_intact(sandbox, public)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM query('SELECT * FROM enable_profiling()')",
        "SELECT * FROM query_table('daily')",
        "SELECT * FROM daily WHERE date IN (SELECT * FROM query('SELECT date FROM daily'))",
    ],
)
def test_sql_inside_strings_is_refused(sandbox: SqlSandbox, sql: str) -> None:
    with pytest.raises(SqlRefused, match="table functions allowed"):
        sandbox.run(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT sleep_ms(60000)",
        "SELECT pg_sleep(60)",
        "SELECT write_log('x')",
        "SELECT setseed(0.5)",
        "SELECT nextval('s')",
        "SELECT count(*) FROM daily WHERE app_opens > (SELECT sleep_ms(100000))",
        "SELECT getenv('HOME')",
        "SELECT getenv('METRIC_TRACKER_SECRET')",
    ],
)
def test_functions_that_wait_change_state_or_read_the_environment_are_refused(sandbox: SqlSandbox, sql: str) -> None:
    started = time.monotonic()
    with pytest.raises(SqlRefused):
        sandbox.run(sql)
    assert time.monotonic() - started < 10  # refused before it ran: the sleeps would take a minute or more


def test_settings_are_readable_locked_and_hold_no_secret(
    sandbox: SqlSandbox, public: PublicEpisode, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "held-out-secret-7f3a9c"
    monkeypatch.setenv("METRIC_TRACKER_SECRET", secret)
    box = SqlSandbox(public.sql_tables())  # built while the secret is in the environment
    try:
        everything = box.run("SELECT * FROM duckdb_settings()")
        assert secret not in json.dumps(everything.rows)
        assert box.run("SELECT current_setting('enable_external_access') AS v").rows == [{"v": False}]
        assert box.run("SELECT current_setting('lock_configuration') AS v").rows == [{"v": True}]
        databases = {row["database_name"] for row in box.run("SELECT database_name FROM duckdb_databases()").rows}
        assert databases <= {"memory", "system", "temp"}
        schemas = box.run("SELECT DISTINCT table_schema AS s, table_name AS t FROM information_schema.tables").rows
        assert {row["t"] for row in schemas} == PUBLIC_TABLES
        for sql in ("SET lock_configuration = false", "SELECT * FROM enable_profiling()"):
            with pytest.raises(SqlRefused):
                box.run(sql)
        assert_intact(box, public)
    finally:
        box.close()


# --- abuse: resources ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n FROM r) SELECT max(n) FROM r",
        "SELECT count(*) FROM range(1000000) a, range(1000000) b",
        "SELECT a.range * b.range AS x FROM range(100000) a, range(100000) b ORDER BY x DESC LIMIT 1",
        "SELECT list(range) FROM range(100000000)",
        "SELECT string_agg(md5(range::VARCHAR), ',') FROM range(100000000)",
    ],
)
@pytest.mark.slow
def test_runaway_queries_are_stopped_and_the_connection_goes_on(
    sandbox: SqlSandbox, public: PublicEpisode, sql: str
) -> None:
    # Each of these runs for hours or never ends, so a refusal at all means it was stopped (interrupted or its
    # worker killed) rather than waited out; how soon after the limit is the benchmarks' business, since a loaded
    # machine stretches it in wall time.
    with pytest.raises(SqlRefused, match="time limit|more memory than a query may use"):
        sandbox.run(sql)
    assert_intact(sandbox, public)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT len(range(40000000)) AS n",
        "SELECT len(generate_series(1, 40000000)) AS n",
        "SELECT length(repeat('x', 400000000)) AS n",
        "SELECT len(repeat([1], 40000000)) AS n",
        "SELECT length(lpad('x', 400000000, 'y')) AS n",
        "SELECT length(rpad('x', 400000000, 'y')) AS n",
        "SELECT len(list_resize([1], 40000000)) AS n",
        "SELECT len(array_resize([1], 40000000)) AS n",
        "SELECT length(bitstring('1', 400000000)) AS n",
        "SELECT length(printf('%400000000d', 1)) AS n",
        "SELECT length(format('{:>400000000}', 'x')) AS n",
        "SELECT length('x'.repeat(400000000)) AS n",
        "SELECT * FROM daily WHERE app_opens IN (SELECT unnest(range(40000000)))",
        "SELECT * FROM range(3) WHERE range < len(RANGE(40000000))",
    ],
)
def test_functions_that_build_one_huge_value_are_refused_before_they_run(
    sandbox: SqlSandbox, public: PublicEpisode, sql: str
) -> None:
    """One call that builds a value as large as its argument runs past the watchdog (DuckDB checks for an interrupt
    between chunks) and outside the memory limit: seen taking 30 s and 3.6 GB before this rule."""
    with pytest.raises(SqlRefused, match=r"not allowed as a value.*work as tables"):
        sandbox.run(sql)
    assert_intact(sandbox, public)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) AS n FROM range(10)",
        "SELECT count(*) AS n FROM generate_series(1, 10)",
        "SELECT count(*) AS n FROM range(0, 20, 2)",
    ],
)
def test_range_and_generate_series_still_work_as_tables(sandbox: SqlSandbox, sql: str) -> None:
    assert sandbox.run(sql).rows == [{"n": 10}]


@pytest.mark.slow
def test_a_never_ending_recursive_query_hits_the_time_limit(sandbox: SqlSandbox) -> None:
    with pytest.raises(SqlRefused, match=f"{TIME_LIMIT_S:g} s time limit"):
        sandbox.run("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r")
    assert sandbox.run("SELECT 42 AS answer").rows == [{"answer": 42}]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM range(10000000)",
        "SELECT * FROM hourly, daily",
        "SELECT * FROM range(1000000) a, range(1000000) b",
    ],
)
def test_a_result_over_the_row_cap_is_refused(sandbox: SqlSandbox, sql: str) -> None:
    with pytest.raises(SqlRefused, match=f"more than {ROW_CAP} rows"):
        sandbox.run(sql)


@pytest.mark.parametrize(("offset", "limit"), [(0, 5), (1020, 10), (1000, 120), (4990, 120), (5000, 3)])
def test_only_the_page_is_kept_and_the_cap_is_exact(sandbox: SqlSandbox, offset: int, limit: int) -> None:
    result = sandbox.run(f"SELECT range AS i FROM range({ROW_CAP})", offset, limit)
    assert result.row_count == ROW_CAP
    assert [row["i"] for row in result.rows] == list(range(offset, min(offset + limit, ROW_CAP)))
    with pytest.raises(SqlRefused, match=f"more than {ROW_CAP} rows"):
        sandbox.run(f"SELECT range AS i FROM range({ROW_CAP + 1})", offset, limit)


def test_wide_results_and_long_cells_are_bounded(sandbox: SqlSandbox) -> None:
    with pytest.raises(SqlRefused, match="columns"):
        sandbox.run("SELECT " + ", ".join(f"{i} AS c{i}" for i in range(200)))
    (row,) = sandbox.run("SELECT string_agg('x', '') AS long FROM range(100000)").rows
    assert row["long"] == "x" * MAX_CELL_CHARS + CUT_MARK.format(length=100000)


# --- abuse: the text itself ----------------------------------------------------------------------------


@pytest.mark.parametrize("sql", ["", "   ", "\n\t", "-- only a comment", "/* nothing */", ";", ";;"])
def test_empty_sql_is_refused(sandbox: SqlSandbox, sql: str) -> None:
    with pytest.raises(SqlRefused, match="no SQL statement"):
        sandbox.run(sql)


@pytest.mark.parametrize("sql", ["SELECT 1\x00; DROP TABLE daily", "SELECT '\x1b[2J' AS x", "SELECT 1\x7f"])
def test_control_characters_are_refused(sandbox: SqlSandbox, sql: str) -> None:
    with pytest.raises(SqlRefused, match="control character"):
        sandbox.run(sql)


def test_very_long_and_deeply_nested_sql_is_refused(sandbox: SqlSandbox, public: PublicEpisode) -> None:
    with pytest.raises(SqlRefused, match=f"at most {MAX_SQL_CHARS} characters"):
        sandbox.run("SELECT 1" + " " * MAX_SQL_CHARS)
    depth = (MAX_SQL_CHARS - 20) // 2
    with pytest.raises(SqlRefused, match="syntax"):
        sandbox.run("SELECT " + "(" * depth + "1" + ")" * depth)
    with pytest.raises(SqlRefused, match="syntax"):
        sandbox.run("SELEC * FORM daily")
    with pytest.raises(SqlRefused, match="syntax"):
        sandbox.run("SELECT " + "+".join(["1"] * 1990))
    # Deep trees that DuckDB parses but Python's JSON reader cannot walk: refused, never a RecursionError.
    for sql in ("SELECT " + "abs(" * 790 + "1" + ")" * 790, "SELECT " + "(SELECT " * 440 + "1" + ")" * 440):
        assert len(sql) <= MAX_SQL_CHARS
        with pytest.raises(SqlRefused, match="nested too deeply"):
            sandbox.run(sql)
    assert_intact(sandbox, public)


def test_unicode_passes_through(sandbox: SqlSandbox) -> None:
    rows = sandbox.run("SELECT 'héllo ✓ 名前' AS \"名前\", count(*) AS n FROM daily").rows
    assert rows == [{"名前": "héllo ✓ 名前", "n": 28}]
    with pytest.raises(SqlRefused, match="tables: daily"):
        sandbox.run("SELECT * FROM données")


def test_a_column_name_cannot_break_the_table_view(sandbox: SqlSandbox) -> None:
    result = sandbox.run('SELECT 1 AS "a | b", 2 AS "x\ny", 3 AS a, 4 AS a, 5 AS " ", 6 AS "same: {}"')
    (row,) = result.rows
    assert len(row) == 6 and list(row.values()) == [1, 2, 3, 4, 5, 6]
    for name in row:
        assert name and "|" not in name and "\n" not in name and ":" not in name
    text = render.render({"rows": result.rows * 2}, {"rows": 2})
    assert parse_view(text)["rows"] == result.rows * 2


# --- abuse through the environment: refusals are error observations (a step once the tool ran) ------------


@pytest.fixture()
def env() -> Any:
    environment = MetricTrackerRlEnvironment()
    environment.reset(seed=3, difficulty="medium", max_steps=500)
    yield environment
    environment.close()


def step(env: MetricTrackerRlEnvironment, args: Any) -> Any:
    return env.step(MetricTrackerRlAction(analysis_method="query", analysis_args=args))


@pytest.mark.parametrize(
    "args",
    [
        {"sql": "DROP TABLE daily"},
        {"sql": "SELECT 1; DROP TABLE daily"},
        {"sql": "SELECT * FROM read_csv('/etc/passwd')"},
        {"sql": "SELECT * FROM '/etc/passwd'"},
        {"sql": "SET threads = 8"},
        {"sql": "SELECT * FROM range(10000000)"},
        {"sql": ""},
        {"sql": "   "},
        {"sql": 42},
        {"sql": None},
        {"sql": ["SELECT 1"]},
        {"sql": {"q": "SELECT 1"}},
        {"sql": "SELECT 1" + " " * MAX_SQL_CHARS},
        {},
        {"sql": "SELECT 1", "limit": 0},
        {"sql": "SELECT 1", "offset": -1},
        {"sql": "SELECT 1", "unknown": 1},
        {"sql": "SELECT * FROM nowhere"},
        {"sql": "SELECT nonsense FROM daily"},
    ],
)
def test_every_refusal_is_an_error_observation_that_costs_a_step_once_the_tool_ran(
    env: MetricTrackerRlEnvironment, args: Any
) -> None:
    """A statement the tool ran and refused costs its step; arguments its checks refuse before it runs (not a
    string, too long, an unknown argument) cost none (docs/tools.md, "Which calls cost a step")."""
    before = env.state.step_count
    obs = step(env, args)
    assert obs.status == "error" and obs.reward == 0.0 and not obs.done
    ran = obs.message.startswith("query: ")
    assert ran or obs.message.startswith("invalid arguments for query")
    assert env.state.step_count == before + ran
    assert step(env, {"sql": "SELECT count(*) AS n FROM daily"}).analysis_result["rows"] == [{"n": 28}]


def test_errors_name_the_tables_and_their_columns(env: MetricTrackerRlEnvironment) -> None:
    message = step(env, {"sql": "SELECT revenue FROM daily"}).message
    assert "revenue" in message and "daily(date, weekday, weekend, app_opens" in message
    assert "hourly(date, hour, app_opens" in message and "annotations(date, kind, note)" in message
    message = step(env, {"sql": "DELETE FROM daily"}).message
    assert ALLOWED in message and "DELETE" in message


# --- behaviour: the same numbers as pandas on the same public data ----------------------------------------


def run_query(public: PublicEpisode, sql: str, **page: int) -> dict[str, Any]:
    outcome = TOOL_REGISTRY["query"].func(public, TOOL_REGISTRY["query"].args_model(sql=sql, **page))
    return outcome


def test_the_tables_are_the_public_data(public: PublicEpisode) -> None:
    box = SqlSandbox(public.sql_tables())
    try:
        assert set(box.schema) == PUBLIC_TABLES
        assert box.schema["daily"] == ["date", "weekday", "weekend", *COUNT_COLUMNS]
        daily = box.run("SELECT * FROM daily ORDER BY date").rows
        assert [row["date"] for row in daily] == list(public.dates)
        assert [row["weekday"] for row in daily] == list(public.data.weekdays)
        assert [row["weekend"] for row in daily] == public.data.weekend.tolist()
        assert [[row[c] for c in COUNT_COLUMNS] for row in daily] == public.data.daily.tolist()
        assert box.schema["hourly"] == ["date", "hour", *COUNT_COLUMNS]
        hourly = box.run("SELECT * FROM hourly ORDER BY date, hour").rows
        assert [(row["date"], row["hour"]) for row in hourly] == [(d, h) for d in public.dates for h in range(24)]
        assert [[row[c] for c in COUNT_COLUMNS] for row in hourly] == public.data.hourly.reshape(
            -1, len(COUNT_COLUMNS)
        ).tolist()
        assert box.run("SELECT * FROM annotations").rows == [a.as_dict() for a in public.annotations]
        types = {
            (row["table_name"], row["column_name"]): row["data_type"]
            for row in box.run("SELECT table_name, column_name, data_type FROM duckdb_columns()").rows
        }
        assert types[("daily", "date")] == types[("hourly", "date")] == types[("annotations", "date")] == "DATE"
        assert {types[("daily", c)] for c in COUNT_COLUMNS} == {"BIGINT"}
    finally:
        box.close()


def test_the_segment_tables_are_the_frames_the_other_tools_read() -> None:
    """At frontier the SQL tables are built from the arrays in compact types; they hold exactly the frames the
    segment tools read (dates as DATE, dimensions as VARCHAR, counts as INTEGER, missing rates as NULL)."""
    frontier = public_episode(5, "frontier")
    box = SqlSandbox(frontier.sql_tables())
    try:
        for name, frame in frontier.segment_tables().items():
            assert box.schema[name] == list(frame.columns)
            rows = box.run(f"SELECT * FROM {name}", limit=ROW_CAP).rows if len(frame) <= ROW_CAP else None
            if rows is None:  # hourly_by_segment: compared by aggregates per key and by a sample of rows
                counts = ", ".join(f"sum({c}) AS {c}" for c in COUNT_COLUMNS)
                summed = box.run(
                    f"SELECT platform, country, app_version, {counts} FROM {name} GROUP BY ALL ORDER BY ALL"
                ).rows
                expected = frame.groupby(["platform", "country", "app_version"])[list(COUNT_COLUMNS)].sum()
                assert [[row[c] for c in COUNT_COLUMNS] for row in summed] == expected.to_numpy().tolist()
                rows = box.run(f"SELECT * FROM {name} LIMIT 3000 OFFSET 20000", limit=ROW_CAP).rows
                frame = frame.iloc[20000:23000]
            expected_rows = [
                {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
                for row in frame.to_dict("records")
            ]
            assert rows == expected_rows, name
        types = {
            (row["table_name"], row["column_name"]): row["data_type"]
            for row in box.run("SELECT table_name, column_name, data_type FROM duckdb_columns()").rows
        }
        assert types[("hourly_by_segment", "date")] == types[("releases", "rollout_start")] == "DATE"
        assert types[("hourly_by_segment", "platform")] == "VARCHAR"
        assert {types[("hourly_by_segment", c)] for c in COUNT_COLUMNS} == {"INTEGER"}
    finally:
        box.close()
        frontier.close()


def test_an_episode_without_annotations_has_a_typed_empty_table(public: PublicEpisode) -> None:
    quiet = dataclasses.replace(public, source=dataclasses.replace(public.counts, annotations=()), memo={})
    try:
        described = run_query(quiet, "DESCRIBE annotations")["rows"]
        assert [(row["column_name"], row["column_type"]) for row in described] == [
            ("date", "DATE"),
            ("kind", "VARCHAR"),
            ("note", "VARCHAR"),
        ]
        joined = run_query(
            quiet,
            "SELECT count(*) AS n FROM daily d LEFT JOIN annotations a ON a.date = d.date "
            "WHERE a.date IS NULL AND d.date >= DATE '2026-03-10'",
        )
        assert joined["rows"] == [{"n": sum(date >= "2026-03-10" for date in public.dates)}]
    finally:
        quiet.close()


@settings(deadline=None, max_examples=12)
@given(
    seed=st.integers(0, 10_000),
    difficulty=st.sampled_from(["easy", "medium", "hard"]),
    column=st.sampled_from(COUNT_COLUMNS),
)
def test_a_group_by_weekday_equals_pandas(seed: int, difficulty: str, column: str) -> None:
    public = public_episode(seed, difficulty)
    try:
        result = run_query(
            public,
            f"SELECT weekday, avg({column}) AS mean, median({column}) AS med "
            "FROM daily GROUP BY weekday ORDER BY weekday",
            limit=120,
        )
        frame = public.daily_frame().groupby("weekday")[column]
        assert result["row_count"] == 7
        for row in result["rows"]:
            assert row["mean"] == pytest.approx(frame.mean()[row["weekday"]], rel=1e-12)
            assert row["med"] == pytest.approx(frame.median()[row["weekday"]], rel=1e-12)
    finally:
        public.close()


@settings(deadline=None, max_examples=12)
@given(seed=st.integers(0, 10_000), day=st.integers(0, 27), low=st.integers(0, 23))
def test_a_filter_on_one_dates_hours_equals_pandas(seed: int, day: int, low: int) -> None:
    public = public_episode(seed)
    try:
        date = public.dates[day]
        result = run_query(
            public,
            f"SELECT hour, orders_placed FROM hourly WHERE date = '{date}' AND hour >= {low} ORDER BY hour",
            limit=120,
        )
        expected = [{"hour": h, "orders_placed": int(public.data.hourly[day, h, 3])} for h in range(low, 24)]
        assert result["rows"] == expected and result["row_count"] == 24 - low
    finally:
        public.close()


def test_a_same_weekday_median_self_join_equals_pandas(public: PublicEpisode) -> None:
    sql = (
        "SELECT d.date, d.app_opens, median(o.app_opens) AS baseline FROM daily d JOIN daily o "
        "ON o.weekday = d.weekday AND o.date <> d.date GROUP BY d.date, d.app_opens ORDER BY d.date"
    )
    result = run_query(public, sql, limit=120)
    frame = public.daily_frame()
    assert result["row_count"] == len(frame)
    for row, (_, day) in zip(result["rows"], frame.iterrows(), strict=True):
        others = frame[(frame["weekday"] == day["weekday"]) & (frame["date"] != day["date"])]["app_opens"]
        assert row["date"] == day["date"] and row["baseline"] == pytest.approx(float(np.median(others)))


@pytest.mark.parametrize(
    ("sql", "count"),
    [
        ("DESCRIBE daily", 3 + len(COUNT_COLUMNS)),
        ("SHOW TABLES", 3),
        ("SUMMARIZE hourly", 2 + len(COUNT_COLUMNS)),
        ("FROM daily LIMIT 3", 3),
        ("SELECT * FROM daily USING SAMPLE 5 ROWS (reservoir, 1)", 5),
        ("SELECT date, app_opens, app_opens - lag(app_opens) OVER (ORDER BY date) AS change FROM daily", 28),
        ("WITH w AS (SELECT weekday, median(app_opens) AS m FROM daily GROUP BY ALL) SELECT * FROM w", 7),
        (
            "SELECT hour, sum(orders_placed) FILTER (WHERE weekday_n < 5) AS weekdays FROM hourly h "
            "JOIN (SELECT date, isodow(date) - 1 AS weekday_n FROM daily) d USING (date) GROUP BY hour",
            24,
        ),
        ("SELECT * FROM generate_series(DATE '2026-03-02', DATE '2026-03-29', INTERVAL 1 DAY) t(day)", 28),
    ],
)
def test_what_an_analyst_writes_works(sandbox: SqlSandbox, sql: str, count: int) -> None:
    assert sandbox.run(sql).row_count == count


def test_annotations_and_types_come_back_as_plain_json(public: PublicEpisode) -> None:
    result = run_query(public, "SELECT date, kind, note FROM annotations ORDER BY date")
    assert result["rows"] == [a.as_dict() for a in sorted(public.annotations, key=lambda a: a.date)]
    (row,) = run_query(
        public,
        "SELECT 1.5::DECIMAL(4, 2) AS d, 'nan'::DOUBLE AS n, 'inf'::DOUBLE AS i, "
        "NULL AS z, true AS b, DATE '2026-03-10' + 1 AS day, [1, 2] AS l, "
        "TIMESTAMP '2026-03-10 12:30:00' AS ts, 'ab'::BLOB AS raw",
    )["rows"]
    assert row == {
        "d": 1.5,
        "n": "NaN",
        "i": "Infinity",
        "z": None,
        "b": True,
        "day": "2026-03-11",
        "l": "[1, 2]",
        "ts": "2026-03-10T12:30:00",
        "raw": "6162",
    }
    json.dumps(row, allow_nan=False)


def test_a_result_is_paged_and_the_view_says_showing_k_of_n(env: MetricTrackerRlEnvironment) -> None:
    obs = step(env, {"sql": "SELECT date, hour, app_opens FROM hourly ORDER BY date, hour", "limit": 20, "offset": 40})
    result = obs.analysis_result
    assert result["row_count"] == 672 and result["offset"] == 40 and result["next_offset"] == 60
    assert [row["hour"] for row in result["rows"]] == list(range(16, 24)) + list(range(12))
    text = render_observation(obs)
    assert "rows: 20 of 672 rows" in text and "next_offset: 60" in text
    last = step(env, {"sql": "SELECT date, hour FROM hourly ORDER BY date, hour", "limit": 20, "offset": 660})
    assert len(last.analysis_result["rows"]) == 12 and last.analysis_result["next_offset"] is None
    assert "next_offset" not in render_observation(last)
    empty = step(env, {"sql": "SELECT date FROM daily WHERE app_opens < 0"})
    assert empty.analysis_result["row_count"] == 0 and empty.analysis_result["columns"] == ["date"]
    assert "rows: 0 rows" in render_observation(empty)


def test_a_page_of_long_rows_stops_at_its_character_budget(env: MetricTrackerRlEnvironment) -> None:
    obs = step(env, {"sql": f"SELECT range AS i, '{'y' * 150}' AS a, '{'z' * 150}' AS b FROM range(500)", "limit": 120})
    result = obs.analysis_result
    assert 0 < len(result["rows"]) < 120 and result["next_offset"] == len(result["rows"])
    assert len(render_observation(obs)) < 16 * 1024


@pytest.mark.slow
def test_the_time_limit_interrupts_and_the_session_goes_on(env: MetricTrackerRlEnvironment) -> None:
    """A statement that would never end is stopped at the time limit (how soon is a benchmark's business: a wall
    clock in a test measures the machine's load) and the session answers the next one."""
    obs = step(env, {"sql": "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r"})
    assert obs.status == "error" and "time limit" in obs.message
    assert step(env, {"sql": "SELECT count(*) AS n FROM hourly"}).analysis_result["rows"] == [{"n": 672}]


# --- sessions sharing a database: each sees only its own episode ----------------------------------------------

CATALOG_QUERIES = [
    "SELECT table_name AS name FROM duckdb_tables()",
    "SELECT table_name AS name FROM duckdb_columns()",
    "SELECT table_name AS name FROM information_schema.tables",
    "SELECT table_name AS name FROM information_schema.columns",
    "SELECT table_name AS name FROM information_schema.tables WHERE table_type = 'VIEW'",
    "SHOW ALL TABLES",
    "SHOW TABLES",
    "SELECT schema_name AS name FROM duckdb_schemas() WHERE database_name = 'temp'",
]


@pytest.fixture()
def two_sessions() -> Any:
    """A frontier episode and a medium one (another seed) whose tables the same workers hold."""
    frontier, medium = public_episode(11, "frontier"), public_episode(12, "medium")
    boxes = SqlSandbox(frontier.sql_tables()), SqlSandbox(medium.sql_tables())
    yield (frontier, boxes[0]), (medium, boxes[1])
    for box in boxes:
        box.close()


def test_two_sessions_of_one_database_read_their_own_tables(two_sessions: Any) -> None:
    sums = []
    for public, box in two_sessions:
        (row,) = box.run("SELECT sum(app_opens) AS opens, count(*) AS days FROM daily").rows
        assert row == {"opens": int(public.data.daily[:, 0].sum()), "days": len(public.dates)}
        (qualified,) = box.run("SELECT sum(app_opens) AS opens FROM temp.main.daily").rows
        assert qualified["opens"] == row["opens"]
        sums.append(row["opens"])
    assert sums[0] != sums[1]


@pytest.mark.parametrize("sql", CATALOG_QUERIES)
def test_no_catalog_view_lists_another_sessions_tables(two_sessions: Any, sql: str) -> None:
    (_, frontier_box), (_, medium_box) = two_sessions
    frontier_names = {str(row.get("name")) for row in frontier_box.run(sql, limit=ROW_CAP).rows}
    medium_names = {str(row.get("name")) for row in medium_box.run(sql, limit=ROW_CAP).rows}
    assert "hourly_by_segment" not in medium_names
    assert not any("segment" in name or name == "releases" for name in medium_names)
    if "table_type = 'VIEW'" in sql:
        assert frontier_names == PUBLIC_TABLES | {"daily_by_segment", "hourly_by_segment", "releases"}
        assert medium_names == PUBLIC_TABLES


def test_another_sessions_table_cannot_be_named(two_sessions: Any) -> None:
    (_, frontier_box), (_, medium_box) = two_sessions
    assert frontier_box.run("SELECT count(*) AS n FROM releases").rows[0]["n"] > 0
    for sql in (
        "SELECT * FROM releases",
        "SELECT * FROM temp.main.hourly_by_segment",
        "SELECT * FROM memory.main.releases",
        "SELECT * FROM pragma_table_info('releases')",
    ):
        with pytest.raises(SqlRefused, match="does not exist|not found|Catalog Error"):
            medium_box.run(sql)


def test_closing_one_session_leaves_the_other_working(two_sessions: Any) -> None:
    (_, frontier_box), (medium, medium_box) = two_sessions
    frontier_box.close()
    assert frontier_box.closed
    with pytest.raises(SqlRefused, match="closed"):
        frontier_box.run("SELECT 1")
    assert medium_box.usable
    assert medium_box.run("SELECT sum(app_opens) AS s FROM daily").rows == [{"s": int(medium.data.daily[:, 0].sum())}]
    assert {
        row["view_name"] for row in medium_box.run("SELECT table_name AS view_name FROM information_schema.tables").rows
    } == PUBLIC_TABLES


@pytest.mark.slow
def test_a_runaway_query_is_stopped_while_another_session_queries(two_sessions: Any) -> None:
    (_, runaway_box), (medium, other_box) = two_sessions
    outcome: dict[str, Any] = {}

    def run_away() -> None:
        try:
            runaway_box.run("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r")
        except SqlRefused as exc:
            outcome["refused"] = str(exc)

    worker = threading.Thread(target=run_away)
    worker.start()
    while pool().busy == 0 and worker.is_alive():  # until the runaway statement has started
        time.sleep(0.001)
    answers = [other_box.run("SELECT sum(orders_placed) AS s FROM hourly").rows for _ in range(5)]
    worker.join(timeout=60)
    assert not worker.is_alive() and "time limit" in outcome["refused"]
    assert answers == [[{"s": int(medium.data.hourly[..., 3].sum())}]] * 5
    assert runaway_box.run("SELECT count(*) AS n FROM releases").rows[0]["n"] > 0  # and it goes on


MEMORY_HOG = f"SELECT length(string_agg('{'x' * 1000}', '')) AS n FROM range(400000)"  # 400 MB of text


def test_the_memory_limit_refuses_a_query_and_the_sessions_go_on(two_sessions: Any) -> None:
    (frontier, hog_box), (medium, other_box) = two_sessions
    assert MEMORY_LIMIT_MB * 2**20 < 400_000 * 1000
    with pytest.raises(SqlRefused, match=f"more memory than a query may use \\({MEMORY_LIMIT_MB} MB"):
        hog_box.run(MEMORY_HOG)
    for public, box in two_sessions:
        assert box.run("SELECT sum(app_opens) AS s FROM daily").rows == [{"s": int(public.data.daily[:, 0].sum())}]
    (setting,) = other_box.run("SELECT value FROM duckdb_settings() WHERE name = 'memory_limit'").rows
    assert setting["value"].replace(" ", "").startswith(("256.0MiB", "244.1MiB", "256MB"))


def test_sessions_opening_and_closing_on_threads_each_read_their_own_episode() -> None:
    """Worker threads open, query and close sandboxes at once (the server runs queries on worker threads)."""
    episodes = [public_episode(seed, "easy") for seed in range(20, 26)]
    mismatches: list[tuple[int, Any]] = []

    def session(index: int) -> None:
        public = episodes[index % len(episodes)]
        for _ in range(6):
            box = SqlSandbox(public.sql_tables())
            try:
                rows = box.run("SELECT sum(app_opens) AS s FROM daily").rows
                if rows != [{"s": int(public.data.daily[:, 0].sum())}]:
                    mismatches.append((index, rows))
            finally:
                box.close()

    workers = [threading.Thread(target=session, args=(i,)) for i in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert not any(worker.is_alive() for worker in workers) and mismatches == []


def process_gone(pid: int) -> bool:
    """Whether a process has ended and closed its files (a zombie's leader may outlive its other threads)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0]
        return state == "Z" and len(os.listdir(f"/proc/{pid}/task")) <= 1
    except (FileNotFoundError, PermissionError, ProcessLookupError):
        return True


@pytest.mark.slow  # kills and restarts SQL workers (tests/test_worker_kills.py's fast tests guard the pool's healing)
def test_a_worker_killed_from_outside_costs_no_query(env: MetricTrackerRlEnvironment) -> None:
    """A worker that died while idle (the kernel's OOM killer, an operator) is replaced; the statement that finds
    it gone goes to another worker and succeeds."""
    assert step(env, {"sql": "SELECT count(*) AS n FROM daily"}).analysis_result["rows"] == [{"n": 28}]
    before = pool().replaced
    pids = pool().worker_pids()
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    for pid in pids:  # dead, its last thread too (a zombie until the pool reaps it): its pipes are closed
        while not process_gone(pid):
            time.sleep(0.01)
    for _ in range(3):
        answer = step(env, {"sql": "SELECT count(*) AS n FROM hourly"})
        assert answer.status == "ok", answer.message
        assert answer.analysis_result["rows"] == [{"n": 672}]
    assert pool().replaced > before


# --- lifetime: lazy, one connection per episode, closed on reset and close ---------------------------------


def test_the_connection_is_made_lazily_and_closed_on_reset_and_close() -> None:
    environment = MetricTrackerRlEnvironment()
    environment.reset(seed=1, difficulty="easy")
    first = environment._episode.public
    assert SANDBOX_KEY not in first.memo  # a reset and other tools open nothing
    environment.step(MetricTrackerRlAction(analysis_method="list_suspicious_dates"))
    assert SANDBOX_KEY not in first.memo
    environment.step(MetricTrackerRlAction(analysis_method="query", analysis_args={"sql": "SELECT 1 AS x"}))
    old = first.memo[SANDBOX_KEY]
    assert not old.closed
    environment.reset(seed=2, difficulty="easy")
    environment._released.result(timeout=30)  # released on a release thread, off the event loop
    assert old.closed and SANDBOX_KEY not in first.memo
    second = environment._episode.public
    assert SANDBOX_KEY not in second.memo  # the new episode does not see the old one's connection
    obs = environment.step(
        MetricTrackerRlAction(analysis_method="query", analysis_args={"sql": "SELECT sum(app_opens) AS s FROM daily"})
    )
    assert obs.analysis_result["rows"] == [{"s": int(second.data.daily[:, 0].sum())}]
    new = second.memo[SANDBOX_KEY]
    assert new is not old and not new.closed
    failed = environment.reset(seed=-5)  # a failed reset keeps the episode and its connection
    assert failed.status == "error" and not new.closed
    environment.close()
    assert new.closed
    with pytest.raises(SqlRefused, match="closed"):
        new.run("SELECT 1")


def test_sixty_four_sessions_release_their_connections() -> None:
    environments = [MetricTrackerRlEnvironment() for _ in range(64)]
    boxes = []
    for i, environment in enumerate(environments):
        environment.reset(seed=i, difficulty="easy")
        obs = environment.step(
            MetricTrackerRlAction(analysis_method="query", analysis_args={"sql": "SELECT count(*) AS n FROM daily"})
        )
        assert obs.analysis_result["rows"] == [{"n": 28}]
        boxes.append(environment._episode.public.memo[SANDBOX_KEY])
    assert len({id(box) for box in boxes}) == 64 and not any(box.closed for box in boxes)
    threads_open = len(os.listdir("/proc/self/task")) if Path("/proc/self/task").exists() else None
    for environment in environments:
        environment.close()
    assert all(box.closed for box in boxes)
    if threads_open is not None:  # the sandbox leaves no thread of its own running once its connection closed
        deadline = time.monotonic() + 60  # the short-lived ones (telling idle workers, trimming memory) end
        while len(os.listdir("/proc/self/task")) > threads_open:
            assert time.monotonic() < deadline, sorted(thread.name for thread in threading.enumerate())
            time.sleep(0.05)


def test_the_query_tool_runs_on_a_worker_thread_and_is_offered() -> None:
    assert "query" in THREADED_TOOLS  # it may run up to the time limit: never on the event loop
    spec = TOOL_REGISTRY["query"]
    schema = json.dumps(spec.openai_schema())
    assert spec.offered and "SELECT" in schema
    for table in ("daily(", "hourly(", "annotations("):
        assert table in schema


# --- over the WebSocket of a real server ------------------------------------------------------------------


def test_a_good_and_a_refused_query_over_the_websocket(server_url: str) -> None:
    with connect(server_url.replace("http", "ws", 1) + "/ws", open_timeout=30) as ws:

        def send(message: dict[str, Any]) -> dict[str, Any]:
            ws.send(json.dumps(message))
            reply = json.loads(ws.recv(timeout=60))
            assert reply["type"] == "observation", reply
            return reply["data"]["observation"]

        assert send({"type": "reset", "data": {"seed": 3, "difficulty": "medium"}})["status"] == "ready"
        good = send(
            {
                "type": "step",
                "data": {
                    "analysis_method": "query",
                    "analysis_args": {
                        "sql": "SELECT weekday, count(*) AS n FROM daily GROUP BY weekday ORDER BY weekday"
                    },
                },
            }
        )
        assert good["status"] == "ok" and good["analysis_result"]["row_count"] == 7
        assert {row["n"] for row in good["analysis_result"]["rows"]} == {4}
        for sql in (
            "SELECT 1; DROP TABLE daily",
            "COPY daily TO '/tmp/wsql_ws.csv'",
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
        ):
            refused = send({"type": "step", "data": {"analysis_method": "query", "analysis_args": {"sql": sql}}})
            assert refused["status"] == "error" and refused["message"].startswith("query: "), refused
        again = send(
            {
                "type": "step",
                "data": {"analysis_method": "query", "analysis_args": {"sql": "SELECT count(*) AS n FROM hourly"}},
            }
        )
        assert (
            again["analysis_result"]["rows"] == [{"n": 672}] and again["steps_remaining"] == good["steps_remaining"] - 4
        )
        assert not Path("/tmp/wsql_ws.csv").exists()


# --- `query` as a detection method: credited once the episode ran a query that succeeded -------------------------


def _graded_by_query(environment: MetricTrackerRlEnvironment, *queries: str) -> Any:
    environment.reset(seed=5, scenario_family="funnel_break", difficulty="easy", anomaly_count=1)
    for sql in queries:
        step(environment, {"sql": sql})
    (row,) = environment._episode.truth.expected_rows
    by_query = row.model_copy(update={"detection_method": "query"})
    return environment.step(MetricTrackerRlAction(classifications=[by_query]))


def test_query_is_an_accepted_detection_method_after_a_successful_query() -> None:
    environment = MetricTrackerRlEnvironment()
    try:
        queried = _graded_by_query(environment, "SELECT date, app_opens FROM daily ORDER BY date")
        assert queried.reward_breakdown.detection_method_accuracy == 1.0 and queried.reward == 1.0
        refused_only = _graded_by_query(environment, "DROP TABLE daily", "SELECT nothing FROM nowhere")
        assert refused_only.reward_breakdown.detection_method_accuracy == 0.0
        assert refused_only.reward == pytest.approx(0.9)
        not_queried = _graded_by_query(environment)  # a new episode: the last one's query does not carry over
        assert not_queried.reward_breakdown.detection_method_accuracy == 0.0
    finally:
        environment.close()
