"""Queries that find where the audit's data went wrong without knowing that anything did: each is one SQL statement
over an episode's tables (the query tool's), run as is on any audit episode, and each row it returns is a candidate
finding. A finder reads what any analyst may read (the events, the side tables, the dashboard); which mechanism it
was written against is its name, never something the episode says.

A finder's rows have the columns `date` (a reporting date, ISO text), `platform`, `app_version`, `country`,
`channel` and `user_type` (NULL: every value), `metric` (a dashboard metric: sessions, a rate, revenue_usd, or
a funnel count's column), and `what` (the finder's name, so one union of finders tells its rows apart). A test per
finder holds it to its mechanism: on a log with the mechanism edited in it returns the mechanism's dates and
segment, and on the same log without it none of them (tests/test_audit_recording.py, tests/test_audit_pipeline.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from metric_tracker_rl.agents.warehouse_findings import sent_text
from metric_tracker_rl.agents.warehouse_sql import sessions_cte
from metric_tracker_rl.sql.sandbox import WAREHOUSE_MAX_SQL_CHARS

QUERY_LIMIT = WAREHOUSE_MAX_SQL_CHARS  # the query tool's longest statement
FINDING_COLUMNS = ("date", "platform", "app_version", "country", "channel", "user_type", "metric", "what")


@dataclass(frozen=True)
class Finder:
    """A statement that flags candidate findings (its rows: FINDING_COLUMNS), named after the mechanism it was
    written against. `kind`: "defect" (a recording fault) or "incident" (a change in what users did); `lasting`: see
    the field."""

    name: str
    sql: str
    kind: str = "defect"
    family: str = ""  # an incident finder's: the published family its rows are reported as
    # An incident finder whose change lasts two dates or more (its scan reads runs of dates): a date of it that
    # departs past the margin with no date beside it that does is noise that passed the run's test with a
    # neighbour's help, never the change.
    lasting: bool = False
    # An incident finder whose scan keeps a finding only where its segment's siblings did not move with it (the
    # scan's `alone`): a wider segment's fall or rise on its date and metric is then its change, diluted.
    alone: bool = False

    def __post_init__(self) -> None:
        if self.kind not in ("defect", "incident"):
            raise ValueError(f"finder {self.name!r}: kind must be 'defect' or 'incident', got {self.kind!r}")


def finding_rows(finder: Finder, sql: str | None = None) -> str:
    """A finder's statement (or `sql`, the same query) as a part of a union: its rows in FINDING_COLUMNS's order."""
    return f"SELECT {', '.join(FINDING_COLUMNS)} FROM ({finder.sql if sql is None else sql})"


def batched_sql(finders: tuple[Finder, ...]) -> Iterator[tuple[str, str]]:
    """The finders as few statements as the query tool's length allows: (a name, a union of finders' rows)."""
    batch: list[Finder] = []
    for finder in finders:
        candidate = [*batch, finder]
        if batch and len(sent_text(_union(candidate))) > QUERY_LIMIT:
            yield "finders " + ", ".join(f.name for f in batch), _union(batch)
            candidate = [finder]
        batch = candidate
    if batch:
        yield "finders " + ", ".join(f.name for f in batch), _union(batch)


def over_sessions(sql: str) -> tuple[bool, str] | None:
    """A statement that reads the counted sessions first (warehouse_sql.sessions_cte), as (whether it reads their
    hours, the rest of it: a query over `s`), or None for any other."""
    for hours in (True, False):
        prefix = sessions_cte(hours=hours)
        if sql.startswith(prefix + ", "):
            return hours, "WITH " + sql[len(prefix) + 2 :]
        if sql.startswith(prefix + " "):
            return hours, sql[len(prefix) + 1 :]
    return None


def _union(finders: list[Finder]) -> str:
    """The finders' rows as one statement that reads the counted sessions once, for every finder that reads them
    (with their hours where one does: the sessions are the same, with one column more)."""
    read = [over_sessions(finder.sql) for finder in finders]
    if not any(read):
        return " UNION ALL ".join(finding_rows(finder) for finder in finders)
    parts = (finding_rows(finder, rest[1] if rest else None) for finder, rest in zip(finders, read, strict=True))
    return f"{sessions_cte(hours=any(rest[0] for rest in read if rest))} " + " UNION ALL ".join(parts)
