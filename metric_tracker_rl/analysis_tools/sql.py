"""`query`: read-only SQL over the episode's public tables (metric_tracker_rl.sql_sandbox does the guarding).

The episode's sandbox is opened on its first query and kept in the episode's memo (its tables go to the SQL
workers with its first statement there); `PublicEpisode.close()` releases it, which the environment calls on reset
and when the session closes. An episode that never queries never opens one, so the other tools keep their speed.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from metric_tracker_rl.analysis_tools.arguments import PageArgs
from metric_tracker_rl.analysis_tools.registry import ToolError, register_tool
from metric_tracker_rl.catalog import COUNT_COLUMNS
from metric_tracker_rl.public import PublicEpisode
from metric_tracker_rl.sql_sandbox import MAX_SQL_CHARS, ROW_CAP, SqlRefused, SqlSandbox

SANDBOX_KEY = "sql_sandbox"
# A page stops before its cells pass this many characters (next_offset says where the rest starts), so a page of
# wide rows stays as readable as a page of any other tool.
PAGE_CHARS = 8000
_COUNTS = ", ".join(COUNT_COLUMNS)
SQL_DESCRIPTION = (f"One DuckDB SELECT over daily(date, weekday, weekend, {_COUNTS}), hourly(date, hour, the same "
                   "counts), annotations(date, kind, note); with segments (frontier) also daily_by_segment and "
                   "hourly_by_segment (the same plus platform, country, app_version) and releases")


class QueryArgs(PageArgs):
    sql: str = Field(min_length=1, max_length=MAX_SQL_CHARS, description=SQL_DESCRIPTION)
    offset: int = Field(default=0, ge=0, le=ROW_CAP, description="A next_offset")


def sandbox_of(episode: PublicEpisode) -> SqlSandbox:
    """The episode's SQL connection, opened on first use (and again if the engine had to drop it)."""
    sandbox = episode.memo.get(SANDBOX_KEY)
    if sandbox is None or not sandbox.usable:
        if sandbox is not None:
            episode.memo.pop(SANDBOX_KEY)
            sandbox.close()
        sandbox = episode.memo[SANDBOX_KEY] = SqlSandbox(episode.sql_tables())
    return sandbox


@register_tool("query", "Read-only SQL over the daily and hourly counts and the calendar notes; paged.",
               QueryArgs, example={"sql": "SELECT weekday, avg(orders_placed) AS orders FROM daily GROUP BY weekday"})
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
    shown: dict[str, Any] = {"row_count": result.row_count, "offset": args.offset, "rows": result.rows[:kept],
                             "next_offset": following if following < result.row_count else None}
    if not kept:
        shown["columns"] = result.columns
    return shown
