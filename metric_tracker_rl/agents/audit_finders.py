"""Queries that find where the audit's data went wrong without knowing that anything did: each is one SQL statement
over an episode's tables (the query tool's), run as is on any audit episode, and each row it returns is a candidate
finding. A finder reads what any analyst may read (the events, the side tables, the dashboard); which mechanism it
was written against is its name, never something the episode says.

A finder's rows have the columns `date` (a reporting date, ISO text), `platform`, `app_version`, `country`,
`channel` and `user_type` (NULL: every value), `metric` (a dashboard metric: sessions, a rate, revenue_usd, or
a funnel count's column), and `what` (the finder's name, so one union of finders tells its rows apart). A test per
finder holds it to its mechanism: on a log with the mechanism edited in it returns the mechanism's dates and
segment, and on the same log without it none of them (tests/test_audit_finders_*.py).
"""

from __future__ import annotations

from dataclasses import dataclass

FINDING_COLUMNS = ("date", "platform", "app_version", "country", "channel", "user_type", "metric", "what")


@dataclass(frozen=True)
class Finder:
    """A statement that flags candidate findings (its rows: FINDING_COLUMNS), named after the mechanism it was
    written against. `kind`: "defect" (a recording fault) or "incident" (a change in what users did)."""

    name: str
    sql: str
    kind: str = "defect"

    def __post_init__(self) -> None:
        if self.kind not in ("defect", "incident"):
            raise ValueError(f"finder {self.name!r}: kind must be 'defect' or 'incident', got {self.kind!r}")
