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
from metric_tracker_rl.sql.sandbox import WAREHOUSE_MAX_SQL_CHARS

QUERY_LIMIT = WAREHOUSE_MAX_SQL_CHARS  # the query tool's longest statement
FINDING_COLUMNS = ("date", "platform", "app_version", "country", "channel", "user_type", "metric", "what")


@dataclass(frozen=True)
class Finder:
    """A statement that flags candidate findings (its rows: FINDING_COLUMNS), named after the mechanism it was
    written against. `kind`: "defect" (a recording fault) or "incident" (a change in what users did)."""

    name: str
    sql: str
    kind: str = "defect"
    family: str = ""  # an incident finder's: the published family its rows are reported as

    def __post_init__(self) -> None:
        if self.kind not in ("defect", "incident"):
            raise ValueError(f"finder {self.name!r}: kind must be 'defect' or 'incident', got {self.kind!r}")


def finding_rows(finder: Finder) -> str:
    """A finder's statement as a part of a union: its rows in FINDING_COLUMNS's order."""
    return f"SELECT {', '.join(FINDING_COLUMNS)} FROM ({finder.sql})"


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


def _union(finders: list[Finder]) -> str:
    return " UNION ALL ".join(finding_rows(finder) for finder in finders)

