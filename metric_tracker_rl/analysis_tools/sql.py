"""What the SQL tool (`query`: read-only SQL over the episode's public tables; metric_tracker_rl.sql.sandbox does
the guarding) stands on: the episode's sandbox, and the description of the tables a model reads.

The episode's sandbox is opened on its first query and kept in the episode's memo (its tables go to the SQL
workers with its first statement there); `PublicEpisode.close()` releases it, which the environment calls on reset
and when the session closes. An episode that never queries never opens one, so the other tools keep their speed.
"""

from __future__ import annotations

import numpy as np

from metric_tracker_rl.catalog.published import CONVERSION_METRIC_NAMES, COUNT_COLUMNS
from metric_tracker_rl.settings import DEFAULT_STEP_TIMEOUT_S
from metric_tracker_rl.sql.sandbox import (
    CUT_MARK,
    MAX_CELL_CHARS,
    MAX_SQL_CHARS,
    ROW_CAP,
    TIME_LIMIT_S,
    WAREHOUSE_MAX_SQL_CHARS,
    SqlSandbox,
)
from metric_tracker_rl.world.funnel import HOURS, FunnelData
from metric_tracker_rl.world.public_episode import PublicEpisode, sql_tables_of
from metric_tracker_rl.world.segments import CELL_FIELDS, CellLayout, SegmentedData
from metric_tracker_rl.world.warehouse_brief import SCHEMA_LISTING, WAREHOUSE_TABLES

SANDBOX_KEY = "sql_sandbox"
# Column groups the description names once (each table lists them in this order), and how it names their members:
# the rates are the brief's conversion metrics, which the brief lists already.
COLUMN_GROUPS: dict[str, tuple[str, ...]] = {"<counts>": COUNT_COLUMNS, "<rates>": CONVERSION_METRIC_NAMES}
# The table with a column per dimension names them as one group: which dimensions there are depends on the tier
# (deep adds channel and user_type), and the brief lists them.
DIMENSIONS_GROUP = "<dimensions>"
DIMENSION_TABLE = "daily_by_segment"
GROUP_MEMBERS_TEXT = {
    "<counts>": ", ".join(COUNT_COLUMNS),
    "<rates>": "the brief's conversion_metrics by name",
    DIMENSIONS_GROUP: "the brief's segments.dimensions",
}


def episode_table_columns(segmented: bool) -> dict[str, tuple[str, ...]]:
    """Each table the SQL tool loads and its columns, read off the tables of an episode with no date (and, with
    segments, no cell): every episode of the kind has the same."""
    data = FunnelData(
        dates=(),
        weekdays=(),
        weekend=np.zeros(0, dtype=bool),
        hourly=np.zeros((0, HOURS, len(COUNT_COLUMNS)), dtype=np.int64),
    )
    segments = SegmentedData(CellLayout((), (), ()), (), np.zeros((0, 0, HOURS, len(COUNT_COLUMNS)), dtype=np.int64))
    return {name: tuple(table) for name, table in sql_tables_of(data, (), segments if segmented else None).items()}


def _columns_text(name: str, columns: tuple[str, ...]) -> str:
    text = ", ".join(columns)
    if name == DIMENSION_TABLE:
        text = text.replace(", ".join(CELL_FIELDS), DIMENSIONS_GROUP)
    for group, members in COLUMN_GROUPS.items():
        text = text.replace(", ".join(members), group)
    return text


def limits_text(max_sql_chars: int) -> str:
    """The limits a query meets, and how its cells read (cut text, NaN and its order)."""
    return (
        f"One DuckDB SELECT (max {max_sql_chars} chars, {TIME_LIMIT_S:g} s CPU; past a busy server's step bound, "
        f"{DEFAULT_STEP_TIMEOUT_S:g} s, an error using no step); a result over {ROW_CAP} rows is "
        "refused before paging (limit pages it, caps nothing: use SQL LIMIT). Text over "
        f"{MAX_CELL_CHARS} chars is cut there: {CUT_MARK.format(length='N')}. x/0 is Infinity, 0/0 NaN, shown "
        "so; NaN sorts above every number (first under DESC)."
    )


def sql_description() -> str:
    """The `sql` argument's description: the limits a query meets, how cells read (cut text, NaN and its order),
    then every table with its columns (those of the segmented world marked as such), written from the tables
    themselves."""
    everywhere = episode_table_columns(segmented=False)
    frontier = {
        name: columns for name, columns in episode_table_columns(segmented=True).items() if name not in everywhere
    }

    def listed(tables: dict[str, tuple[str, ...]]) -> str:
        return "; ".join(f"{name}({_columns_text(name, columns)})" for name, columns in tables.items())

    groups = "; ".join(f"{group} = {members}" for group, members in GROUP_MEMBERS_TEXT.items())
    return f"{limits_text(MAX_SQL_CHARS)} Tables: {listed(everywhere)}; with segments: {listed(frontier)}. {groups}"


SQL_DESCRIPTION = sql_description()


def warehouse_sql_description() -> str:
    """The `sql` argument's description at the warehouse: the same limits but its own statement length, its tables
    by name (the brief says what each holds) and how to list their columns."""
    return (
        f"{limits_text(WAREHOUSE_MAX_SQL_CHARS)} Tables: {', '.join(WAREHOUSE_TABLES)}. "
        f"Columns: {SCHEMA_LISTING}; nested: list_filter(event_params, lambda p: p.key = 'session_id')[1]"
        ".value.int_value, device.device_id."
    )


WAREHOUSE_SQL_DESCRIPTION = warehouse_sql_description()


def sandbox_of(episode: PublicEpisode) -> SqlSandbox:
    """The episode's SQL connection, opened on first use (and again if the engine had to drop it), taking statements
    as long as its data allow (a raw event export's are longer)."""
    sandbox = episode.memo.get(SANDBOX_KEY)
    if sandbox is None or not sandbox.usable:
        if sandbox is not None:
            episode.memo.pop(SANDBOX_KEY)
            sandbox.close()
        limit = episode.source.max_sql_chars
        sandbox = episode.memo[SANDBOX_KEY] = SqlSandbox(
            episode.sql_tables(), MAX_SQL_CHARS if limit is None else limit
        )
    return sandbox
