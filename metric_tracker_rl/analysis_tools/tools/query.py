"""`query`: one read-only DuckDB SELECT over the episode's public tables, a page at a time."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from metric_tracker_rl.analysis_tools.arguments import PageArgs
from metric_tracker_rl.analysis_tools.registry import (
    RAW_EVENT_TIERS,
    ToolError,
    ToolVariant,
    episode_arguments,
    episode_tools,
    register_tool,
)
from metric_tracker_rl.analysis_tools.sql import SANDBOX_KEY, SQL_DESCRIPTION, WAREHOUSE_SQL_DESCRIPTION, sandbox_of
from metric_tracker_rl.sql.sandbox import MAX_SQL_CHARS, ROW_CAP, WAREHOUSE_MAX_SQL_CHARS, SqlRefused, SqlSandbox
from metric_tracker_rl.world.public_episode import PublicEpisode

# A page stops before its cells pass this many characters (next_offset says where the rest starts), so a page of
# wide rows stays as readable as a page of any other tool.
PAGE_CHARS = 8000


class StatementArgs(PageArgs):
    """A statement and the page of its result (each tier's statement length and tables: its own subclass)."""

    sql: str


class QueryArgs(StatementArgs):
    sql: str = Field(min_length=1, max_length=MAX_SQL_CHARS, description=SQL_DESCRIPTION)
    offset: int = Field(default=0, ge=0, le=ROW_CAP, description="A next_offset")


class WarehouseQueryArgs(StatementArgs):
    sql: str = Field(min_length=1, max_length=WAREHOUSE_MAX_SQL_CHARS, description=WAREHOUSE_SQL_DESCRIPTION)
    offset: int = Field(default=0, ge=0, le=ROW_CAP, description="A next_offset")


# At a tier of raw events the same tool reads the episode's own tables (PublicEpisode.sql_tables), and says so. No
# description names a tier: each is read at every tier that offers it (tests/test_text_truth.py).
WAREHOUSE_QUERY = ToolVariant(
    RAW_EVENT_TIERS, "Read-only SQL over the raw events, side tables and dashboard; paged.", WarehouseQueryArgs
)


@register_tool(
    "query",
    "Read-only SQL over the counts, notes and any context tables the brief lists; paged.",
    QueryArgs,
    reads=(),
    variants=(WAREHOUSE_QUERY,),
    example={"sql": "SELECT weekday, avg(orders_placed) AS orders FROM daily GROUP BY weekday"},
)
def query(episode: PublicEpisode, args: QueryArgs) -> dict[str, Any]:
    try:
        result = sandbox_of(episode).run(args.sql, args.offset, args.limit)
    except SqlRefused as exc:
        raise ToolError(str(exc)) from None
    budget, kept = PAGE_CHARS, 0
    for row in result.rows:
        budget -= sum(len(str(value)) + 3 for value in row.values())
        if budget < 0 and kept:
            break
        kept += 1
    following = args.offset + kept
    shown: dict[str, Any] = {
        "row_count": result.row_count,
        "offset": args.offset,
        "rows": result.rows[:kept],
        "next_offset": following if following < result.row_count else None,
    }
    if not kept:
        shown["columns"] = result.columns
    return shown


def needs_sandbox(episode: PublicEpisode, arguments: Any) -> bool:
    """Whether a `query` call with `arguments` is one the tool runs but the episode's sandbox is not open yet (its
    first statement: opening it builds the episode's tables)."""
    sandbox = episode.memo.get(SANDBOX_KEY)
    if isinstance(sandbox, SqlSandbox) and sandbox.usable:
        return False
    return _statement_args(episode, arguments) is not None


def _statement_args(episode: PublicEpisode, arguments: Any) -> StatementArgs | None:
    try:
        args = episode_arguments("query", episode, arguments, episode_tools(episode))
    except ToolError:
        return None
    return args if isinstance(args, StatementArgs) else None


def open_statement(episode: PublicEpisode, arguments: Any) -> tuple[SqlSandbox, str, int, int] | None:
    """The sandbox, text, offset and limit that a `query` call with `arguments` runs (SqlSandbox.run), where the
    episode's sandbox is open already; None for arguments the tool refuses, and for an episode's first statement
    (opening its sandbox builds its tables, work for a thread)."""
    sandbox = episode.memo.get(SANDBOX_KEY)
    if not isinstance(sandbox, SqlSandbox) or not sandbox.usable:
        return None
    args = _statement_args(episode, arguments)
    return None if args is None else (sandbox, args.sql, args.offset, args.limit)
