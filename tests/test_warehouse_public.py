"""A warehouse episode as the tools read it: its tables on the public episode, served by the SQL tool through the
worker pool (the nested export crosses the process boundary), and nothing of what was injected among them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import numpy as np
import pytest

from metric_tracker_rl.analysis_tools import TOOL_REGISTRY
from metric_tracker_rl.analysis_tools.sql import SANDBOX_KEY
from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.catalog.tiers import WAREHOUSE
from metric_tracker_rl.generation.warehouse.world import WarehouseWorld, build_warehouse_world
from metric_tracker_rl.world.events import reporting_day
from metric_tracker_rl.world.funnel import WINDOW_START, window_calendar
from metric_tracker_rl.world.metrics_layer import RATE_COLUMNS, counted_sessions
from metric_tracker_rl.world.public_episode import Events, PublicEpisode


@pytest.fixture(scope="module")
def world() -> WarehouseWorld:
    # The rung is not registered: abyss's dial names the episode's counts and seed streams.
    return build_warehouse_world(WAREHOUSE, resolve_episode_config(seed=3, difficulty="abyss"))


@pytest.fixture(scope="module")
def public(world: WarehouseWorld) -> Iterator[PublicEpisode]:
    # Its data are the export's tables, no counts.
    events = Events(window_calendar(world.log.num_days), world.sql_tables(), world.dimension_values, None)
    episode = PublicEpisode(events, {})
    yield episode
    episode.close()


def run_query(public: PublicEpisode, sql: str) -> list[dict[str, object]]:
    tool = TOOL_REGISTRY["query"]
    outcome = tool.func(public, tool.args_model(sql=sql, limit=100))
    assert outcome["next_offset"] is None, "a result this test reads is one page"
    rows: list[dict[str, object]] = outcome["rows"]
    return rows


def test_the_sql_tool_serves_the_warehouse_tables_and_only_them(world: WarehouseWorld, public: PublicEpisode) -> None:
    names = {
        row["table_name"]
        for row in run_query(
            public, "SELECT table_name FROM duckdb_tables() UNION SELECT table_name FROM information_schema.tables"
        )
    }
    assert names == set(world.sql_tables())
    assert not names & {"daily", "hourly", "daily_by_segment"}
    assert SANDBOX_KEY in public.memo


def test_the_nested_export_reads_the_same_in_a_worker(world: WarehouseWorld, public: PublicEpisode) -> None:
    log = world.log
    assert run_query(public, "SELECT count(*) AS n FROM events") == [{"n": len(log.events)}]
    dates = [row["d"] for row in run_query(public, "SELECT DISTINCT event_date AS d FROM events ORDER BY d")]
    days = np.unique(reporting_day(log.events.timestamp_us))
    assert dates == [(WINDOW_START + dt.timedelta(days=int(day))).isoformat() for day in days]
    sessions = run_query(public, "SELECT sum(sessions) AS s FROM dashboard")[0]["s"]
    assert sessions == len(counted_sessions(log).day)
    # Statements far inside the time limit even on a loaded machine (unnesting every parameter is not).
    [row] = run_query(
        public,
        "SELECT count(*) AS n, sum(list_filter(event_params, lambda p: p.key = 'value')[1]"
        ".value.double_value) AS total FROM events "
        "WHERE list_contains(list_transform(event_params, lambda p: p.key), 'value')",
    )
    purchases = row["n"]
    assert row["total"] == pytest.approx(float(np.nansum(log.events.value)), rel=1e-9)
    assert purchases == int((~np.isnan(log.events.value)).sum())


def test_no_table_or_column_names_what_was_injected(public: PublicEpisode) -> None:
    words = ("incident", "defect", "truth", "expected", "benign", "injected", "label")
    found = " OR ".join(f"contains(lower(table_name || '.' || column_name), '{word}')" for word in words)
    assert (
        run_query(public, f"SELECT table_name, column_name FROM duckdb_columns() WHERE NOT internal AND ({found})")
        == []
    )
    dashboard = {
        row["column_name"]
        for row in run_query(public, "SELECT column_name FROM duckdb_columns() WHERE table_name = 'dashboard'")
    }
    assert set(RATE_COLUMNS) <= dashboard
