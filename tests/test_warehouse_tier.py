"""The warehouse tier as an agent plays it: reset reaches it (in process and on a served loopback server), its tool
list is the SQL tool over its own tables, the metrics layer and submit_report within the schema budget, a call of
any other tool or a generator submission is an error that names what is valid, and every published list names it,
after abyss."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT

from metric_tracker_rl import MetricTrackerRlAction, MetricTrackerRlEnv
from metric_tracker_rl.analysis_tools import TOOL_REGISTRY
from metric_tracker_rl.analysis_tools.sql import sandbox_of
from metric_tracker_rl.analysis_tools.tools import metrics_layer as metrics_layer_tool
from metric_tracker_rl.catalog.published import COUNT_DIFFICULTIES, DIFFICULTIES, RESET_DIFFICULTIES
from metric_tracker_rl.catalog.tasks import TASKS, resolve_episode_config
from metric_tracker_rl.catalog.tiers import TIERS, WAREHOUSE
from metric_tracker_rl.generation.warehouse.episode import PACKED_TABLES
from metric_tracker_rl.generation.warehouse.world import build_warehouse_world
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.sql.columns import PackedTable
from metric_tracker_rl.sql.engine import EpisodeTables, open_database
from metric_tracker_rl.sql.sandbox import MAX_SQL_CHARS, WAREHOUSE_MAX_SQL_CHARS, SqlRefused
from metric_tracker_rl.sql.table_views import pack_table
from metric_tracker_rl.view.tool_schemas import model_tools, openai_tools, schema_chars
from metric_tracker_rl.world.metrics_layer import METRICS_LAYER
from metric_tracker_rl.world.public_episode import Events
from metric_tracker_rl.world.warehouse_brief import SCHEMA_LISTING, WAREHOUSE_OBJECTIVE, WAREHOUSE_TABLES

WAREHOUSE_TOOLS = ["query", "metrics_layer", "submit_report"]


@pytest.fixture(scope="module")
def env() -> Iterator[MetricTrackerRlEnvironment]:
    environment = MetricTrackerRlEnvironment()
    observation = environment.reset(difficulty="warehouse", seed=4)
    assert observation.status == "ready", observation.message
    yield environment
    environment.close()


def analysis(env: MetricTrackerRlEnvironment, method: str, **arguments: object):
    return env.step(MetricTrackerRlAction(analysis_method=method, analysis_args=arguments))


def test_the_tier_is_listed_after_abyss_with_a_named_task() -> None:
    assert DIFFICULTIES.index("warehouse") == DIFFICULTIES.index("abyss") + 1
    assert tuple(RESET_DIFFICULTIES) == (*DIFFICULTIES, *(name for name, tier in TIERS.items() if not tier.listed))
    assert TIERS["warehouse"] is WAREHOUSE and WAREHOUSE.listed and WAREHOUSE.data == "events"
    [named] = [task for task in TASKS.values() if task.difficulty == "warehouse"]
    assert "warehouse" in (Path(ROOT) / "README.md").read_text(encoding="utf-8").lower()
    observation = MetricTrackerRlEnvironment().reset(difficulty="warehouse", seed=4)
    assert observation.objective == WAREHOUSE_OBJECTIVE and observation.config["difficulty"] == "warehouse"
    assert MetricTrackerRlEnvironment().reset(task_id=named.task_id).config["difficulty"] == "warehouse"


def test_the_tool_list_is_the_sql_tool_the_metrics_layer_and_submit_report_within_budget() -> None:
    assert [tool.name for tool in model_tools("warehouse")] == WAREHOUSE_TOOLS
    assert schema_chars("warehouse") <= WAREHOUSE.tool_schema_budget
    # The counts' tiers keep their lists: the warehouse's tool is offered nowhere else, and a client's fixed list
    # holds it, the warehouse being listed.
    for tier in COUNT_DIFFICULTIES:
        assert "metrics_layer" not in [tool.name for tool in model_tools(tier)]
    assert "metrics_layer" in [tool.name for tool in model_tools()]
    [query] = [tool for tool in openai_tools("warehouse") if tool["function"]["name"] == "query"]
    assert query != TOOL_REGISTRY["query"].openai_schema()  # its own description, not the counts' tables


def test_the_sql_tool_names_every_table_of_an_episode_and_only_those() -> None:
    """The table list the query tool and the brief show is the set a built world serves."""
    world = build_warehouse_world(WAREHOUSE, resolve_episode_config(seed=4, difficulty="warehouse"))
    assert set(WAREHOUSE_TABLES) == set(world.sql_tables())
    [query] = [tool for tool in openai_tools("warehouse") if tool["function"]["name"] == "query"]
    described = query["function"]["parameters"]["properties"]["sql"]["description"]
    assert all(name in described for name in WAREHOUSE_TABLES)
    assert "daily_by_segment" not in described and "hourly" not in described


def test_a_tool_over_counts_is_an_error_naming_the_valid_ones(env: MetricTrackerRlEnvironment) -> None:
    """A tool the tier does not offer says so (not that it is unknown) and names the tier's tools; a name no tool
    has is unknown."""
    for name in ("list_suspicious_dates", "compare_segments", "get_context", "task_overview", "list_dates"):
        observation = analysis(env, name)
        assert observation.status == "error" and observation.reward == 0.0
        assert observation.message.startswith(f"{name} is not offered at difficulty 'warehouse' (only at ")
        assert observation.message.endswith(
            "; the tools offered there: query, metrics_layer (and the report's submission)"
        )
    unknown = analysis(env, "no_such_tool")
    assert unknown.status == "error" and "unknown analysis method 'no_such_tool'" in unknown.message
    assert "metrics_layer" in unknown.message and "compare_segments, " not in unknown.message


def test_a_generator_submission_is_refused_without_using_a_submission(env: MetricTrackerRlEnvironment) -> None:
    before = env.state.submissions_used
    observation = env.step(MetricTrackerRlAction(payload_generators=[{"method_name": "get_funnel_break_rows"}]))
    assert observation.status == "error" and "classifications" in observation.message
    assert env.state.submissions_used == before and not observation.done


def test_the_sql_tool_reads_the_warehouse_tables(env: MetricTrackerRlEnvironment) -> None:
    # The schema listing the brief and the tool's description name lists every table's columns.
    observation = analysis(env, "query", sql=f"SELECT DISTINCT table_name FROM ({SCHEMA_LISTING})", limit=50)
    assert observation.status == "ok", observation.message
    assert {row["table_name"] for row in observation.analysis_result["rows"]} == set(WAREHOUSE_TABLES)


def test_the_metrics_layer_shows_every_section_and_says_how_many(env: MetricTrackerRlEnvironment) -> None:
    result = analysis(env, "metrics_layer").analysis_result
    assert (
        result["definitions"] == METRICS_LAYER
        and result["showing"] == f"1-{len(METRICS_LAYER)} of {len(METRICS_LAYER)} sections"
        and "next_offset" not in result
    )
    one = analysis(env, "metrics_layer", section="deduplication").analysis_result
    assert one["definitions"] == {"deduplication": METRICS_LAYER["deduplication"]}
    wrong = analysis(env, "metrics_layer", section="sessions")
    assert wrong.status == "error" and "session_date_and_segment" in wrong.message


def test_a_short_page_of_the_metrics_layer_is_followed_to_its_end(
    env: MetricTrackerRlEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Paged by sections: following next_offset shows each section once, in order, each page within its budget
    unless one section alone is longer."""
    monkeypatch.setattr(metrics_layer_tool, "PAGE_CHARS", 500)
    seen: dict[str, str] = {}
    offset: int | None = 0
    while offset is not None:
        result = analysis(env, "metrics_layer", offset=offset).analysis_result
        page = result["definitions"]
        assert len(page) == 1 or sum(len(k) + len(v) for k, v in page.items()) <= 500
        assert not set(page) & set(seen)
        seen.update(page)
        first, last = (int(part) for part in result["showing"].split(" of ")[0].split("-"))
        assert (first, last) == (offset + 1, offset + len(page))
        offset = result.get("next_offset")
    assert list(seen) == list(METRICS_LAYER)
    assert analysis(env, "metrics_layer", offset=len(METRICS_LAYER)).status == "error"


def test_the_metrics_layer_answers_nowhere_else() -> None:
    """A tool of raw events is no tool of an episode of counts, as the tools over counts are none of the
    warehouse's: the error names the episode's own tools."""
    observation = MetricTrackerRlEnvironment()
    observation.reset(difficulty="abyss", seed=1)
    refused = analysis(observation, "metrics_layer")
    assert refused.status == "error" and "not offered at difficulty 'abyss'" in refused.message
    assert "compare_segments" in refused.message


@pytest.mark.slow  # starts a server process
def test_a_served_warehouse_episode_answers_its_sql_tool(server_url: str) -> None:
    with MetricTrackerRlEnv(base_url=server_url, message_timeout_s=60).sync() as client:
        reset = client.reset(difficulty="warehouse", seed=4).observation
        assert reset.status == "ready" and reset.objective == WAREHOUSE_OBJECTIVE
        step = client.step(
            MetricTrackerRlAction(
                analysis_method="query", analysis_args={"sql": "SELECT count(*) AS n FROM dashboard WHERE sessions > 0"}
            )
        ).observation
        assert step.status == "ok" and step.analysis_result["rows"][0]["n"] > 0
        layer = client.step(MetricTrackerRlAction(analysis_method="metrics_layer")).observation
        assert layer.analysis_result["definitions"] == METRICS_LAYER


def test_a_packed_table_reads_as_its_columns() -> None:
    """The tables an open episode keeps packed (compressed Arrow) read in SQL exactly as their columns would: the
    same column types and the same rows; the events, packed, hold less than half their columns' bytes."""
    world = build_warehouse_world(WAREHOUSE, resolve_episode_config(seed=4, difficulty="warehouse"))
    plain = world.sql_tables()
    packed = {name: pack_table(table) if name in PACKED_TABLES else table for name, table in plain.items()}
    direct, unpacked = EpisodeTables(open_database(), plain), EpisodeTables(open_database(), packed)
    try:
        for name in PACKED_TABLES:
            for sql in (
                f"SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = '{name}' "
                "ORDER BY column_index",
                f"SELECT count(*) AS n, sum(hash(t)) AS h FROM {name} t",
            ):
                assert direct.run(sql, 0, 100) == unpacked.run(sql, 0, 100), (name, sql)
        events = packed["events"]
        assert isinstance(events, PackedTable) and len(events.data) < events.nbytes / 2  # the bulk, compressed
    finally:
        direct.close()
        unpacked.close()


def test_an_open_episode_keeps_its_growing_tables_packed(env: MetricTrackerRlEnvironment) -> None:
    episode = env._episode  # noqa: SLF001 (what the server holds for the session)
    assert episode is not None and isinstance(episode.public.source, Events)
    held = episode.public.source.tables
    assert {name for name, table in held.items() if isinstance(table, PackedTable)} == PACKED_TABLES


def test_the_warehouse_takes_longer_statements_than_the_counts_tiers(env: MetricTrackerRlEnvironment) -> None:
    """A statement that rebuilds sessions from raw events is long: the warehouse allows WAREHOUSE_MAX_SQL_CHARS
    characters where every other tier keeps MAX_SQL_CHARS, and its tool's description says its own number."""
    long = "SELECT count(*) AS n FROM events" + " " * (5000 - 32)
    assert len(long) == 5000
    observation = analysis(env, "query", sql=long)
    assert observation.status == "ok", observation.message
    too_long = "SELECT 1" + " " * (WAREHOUSE_MAX_SQL_CHARS - 7)
    assert len(too_long) == WAREHOUSE_MAX_SQL_CHARS + 1
    observation = analysis(env, "query", sql=too_long)
    assert observation.status == "error" and f"at most {WAREHOUSE_MAX_SQL_CHARS} characters" in observation.message
    episode = env._episode  # noqa: SLF001 (what the server holds for the session)
    assert episode is not None
    with pytest.raises(SqlRefused, match=f"at most {WAREHOUSE_MAX_SQL_CHARS} characters"):
        sandbox_of(episode.public).run(too_long)
    [query] = [tool for tool in openai_tools("warehouse") if tool["function"]["name"] == "query"]
    assert f"max {WAREHOUSE_MAX_SQL_CHARS} chars" in query["function"]["parameters"]["properties"]["sql"]["description"]

    counts = MetricTrackerRlEnvironment()
    try:
        counts.reset(seed=3, difficulty="medium")
        for sql in (long, "SELECT 1" + " " * (MAX_SQL_CHARS - 7)):
            observation = analysis(counts, "query", sql=sql)
            assert observation.status == "error" and f"at most {MAX_SQL_CHARS} characters" in observation.message
        opened = counts._episode  # noqa: SLF001
        assert opened is not None
        with pytest.raises(SqlRefused, match=f"at most {MAX_SQL_CHARS} characters"):
            sandbox_of(opened.public).run(long)
        assert (
            f"max {MAX_SQL_CHARS} chars"
            in TOOL_REGISTRY["query"].openai_schema()["function"]["parameters"]["properties"]["sql"]["description"]
        )
    finally:
        counts.close()


@pytest.mark.parametrize("shape", ["parentheses", "sums", "calls", "subqueries", "cases", "lists"])
def test_the_warehouses_longer_statements_meet_the_same_walls(env: MetricTrackerRlEnvironment, shape: str) -> None:
    """A hostile text as long as the warehouse allows, nested as deep as that length lets it: refused by the
    parser's depth limit or the tree check, never a crash, and the episode's tables still answer."""
    half = (WAREHOUSE_MAX_SQL_CHARS - 20) // 2
    sql = {
        "parentheses": "SELECT " + "(" * half + "1" + ")" * half,
        "sums": "SELECT " + "+".join(["1"] * half),
        "calls": "SELECT " + "abs(" * (half // 3) + "1" + ")" * (half // 3),
        "subqueries": "SELECT " + "(SELECT " * (half // 5) + "1" + ")" * (half // 5),
        "cases": "SELECT " + "CASE WHEN 1=1 THEN " * (half // 12) + "1" + " END" * (half // 12),
        "lists": "SELECT " + "[" * half + "1" + "]" * half,
    }[shape]
    assert MAX_SQL_CHARS < len(sql) <= WAREHOUSE_MAX_SQL_CHARS
    episode = env._episode  # noqa: SLF001 (what the server holds for the session)
    assert episode is not None
    sandbox = sandbox_of(episode.public)
    with pytest.raises(SqlRefused, match="depth limit|nested too deeply"):
        sandbox.run(sql)
    assert sandbox.run("SELECT count(*) > 0 AS any FROM events").rows == [{"any": True}]
