"""`get_context`: one of the context tables the brief lists at deep and abyss (experiments, campaigns, holidays,
releases, partner status), up to a page of rows."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from metric_tracker_rl.analysis_tools.arguments import ToolArgs
from metric_tracker_rl.analysis_tools.registry import ToolError, register_tool
from metric_tracker_rl.analysis_tools.segment_tools import release_steps, segments_of
from metric_tracker_rl.catalog.tiers import CONTEXT
from metric_tracker_rl.world.context import CONTEXT_TABLES
from metric_tracker_rl.world.public_episode import PublicEpisode

NO_CONTEXT = "this episode has no context tables (difficulty deep has); releases: get_releases"
# The rows a context table shows at most: every table of an episode fits (the schemas' budget has no room for
# an offset), and the query tool reads any table in full.
CONTEXT_PAGE_ROWS = 120


class ContextArgs(ToolArgs):
    table: str = Field(description="Table")


# Offered where there are context tables: elsewhere a call answers that the tier does not offer it, naming the
# tier's tools.
@register_tool(
    "get_context", "A context table the brief lists.", ContextArgs, reads=(CONTEXT,), example={"table": "experiments"}
)
def get_context(episode: PublicEpisode, args: ContextArgs) -> dict[str, Any]:
    data = segments_of(episode)
    if data.context is None:
        raise ToolError(NO_CONTEXT)
    if args.table not in CONTEXT_TABLES:
        raise ToolError(f"unknown context table {args.table!r}; valid: {', '.join(CONTEXT_TABLES)}")
    if args.table == "releases":
        rows = release_steps(data)
    else:
        assert data.context is not None
        rows = data.context.rows(args.table)
    shown = rows[:CONTEXT_PAGE_ROWS]
    more = " (the query tool reads the rest)" if len(rows) > len(shown) else ""
    return {"table": args.table, "showing": f"{len(shown)} of {len(rows)}{more}", "rows": shown}
