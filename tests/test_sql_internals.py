"""The SQL sandbox shows the episode, not the engine: the catalog's views and functions that print the tables'
view definitions (which name the worker's internal objects) or the engine's version are refused by name, with
what lists the tables instead; every other catalog view or function that answers shows neither."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import duckdb
import pytest
from sql_helpers import PUBLIC_TABLES, public_episode

from metric_tracker_rl.sql.engine import ALLOWED_TABLE_FUNCTIONS, GENERATORS
from metric_tracker_rl.sql.sandbox import ROW_CAP, SqlRefused, SqlSandbox

# What the worker's own objects and the engine look like in a view's definition or a version string.
INTERNAL_MARKS = re.compile(
    r"__duckdb_source|\bdf_[0-9a-f]{8,}|CREATE TEMP VIEW|" + re.escape(duckdb.__version__.lstrip("v"))
)

INTERNALS = [
    "SELECT version()",
    "SELECT VERSION() AS v",
    "SELECT count(*) AS n FROM daily WHERE version() <> ''",
    "SELECT * FROM duckdb_views()",
    "SELECT view_name, sql FROM duckdb_views() WHERE NOT internal",
    "SELECT * FROM duckdb_views",
    "SELECT * FROM main.duckdb_views",
    "SELECT sql FROM sqlite_master",
    "SELECT * FROM sqlite_schema",
    "SELECT * FROM main.sqlite_temp_master",
    "SELECT * FROM sqlite_temp_schema",
    "SELECT view_definition FROM information_schema.views",
    "SELECT * FROM memory.information_schema.views",
    "SELECT * FROM INFORMATION_SCHEMA.VIEWS",
    "SELECT definition FROM pg_catalog.pg_views",
    "SELECT * FROM pg_views",
    "SELECT count(*) AS n FROM daily WHERE 'x' IN (SELECT sql FROM sqlite_master)",
    "WITH v AS (SELECT * FROM duckdb_views()) SELECT count(*) AS n FROM v",
]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SqlSandbox]:
    box = SqlSandbox(public_episode().sql_tables())
    yield box
    box.close()


@pytest.mark.parametrize("sql", INTERNALS)
def test_what_shows_the_engine_is_refused_by_name_with_what_lists_the_tables(sandbox: SqlSandbox, sql: str) -> None:
    with pytest.raises(SqlRefused, match="it shows the SQL engine, not the episode's data; SHOW TABLES") as refused:
        sandbox.run(sql)
    assert not INTERNAL_MARKS.search(str(refused.value))


def catalog_sources() -> list[str]:
    """Every catalog view of a fresh database (schema-qualified) and every catalog table function allowed."""
    with duckdb.connect() as fresh:
        views = [
            f"{schema}.{name}"
            for schema, name in fresh.execute(
                "SELECT DISTINCT schema_name, view_name FROM duckdb_views() WHERE internal ORDER BY 1, 2"
            ).fetchall()
        ]
    functions = [f"{name}()" for name in sorted(ALLOWED_TABLE_FUNCTIONS - GENERATORS - {"pragma_table_info"})]
    return views + functions


@pytest.mark.parametrize("source", catalog_sources())
def test_no_catalog_view_or_function_that_answers_shows_the_engines_internals(sandbox: SqlSandbox, source: str) -> None:
    try:
        answer = sandbox.run(f"SELECT * FROM {source}", limit=ROW_CAP)
    except SqlRefused as refused:
        assert not INTERNAL_MARKS.search(str(refused))
        return
    shown = json.dumps(answer.rows, default=str)
    assert not INTERNAL_MARKS.search(shown), INTERNAL_MARKS.search(shown)


def test_the_tables_are_still_listed(sandbox: SqlSandbox) -> None:
    for sql in (
        "SHOW TABLES",
        "SELECT table_name AS name FROM information_schema.tables",
        "SELECT DISTINCT table_name AS name FROM duckdb_columns() WHERE NOT internal",
    ):
        assert {row["name"] for row in sandbox.run(sql).rows} == PUBLIC_TABLES, sql
    assert sandbox.run("WITH views AS (SELECT 1 AS x) SELECT x FROM views").rows == [{"x": 1}]  # a CTE's name
