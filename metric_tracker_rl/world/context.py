"""The context tables of a tier with context (deep): what a team knows besides the counts, to cross-reference.

- experiments: each experiment's treatment arm (a cuboid: the fields it names; NULL means every value), the
  funnel step its change targets, and its dates. Its intended effect on that step in that arm is no incident;
  a step it does not target breaking in its arm is one;
- campaigns: marketing campaigns by channel and country (more low-intent traffic from that channel there);
- holidays: public holidays, by country (NULL: every country);
- releases: the mobile releases and their rollout share by date (SegmentedData.release_rows, as at frontier);
- partner_status: the payment partners' status log, by platform and country, with the hours of each notice.
  A share of the partners' payment failures (note_share) have a notice; EMPTY_NOTICES others match nothing.

Public, like segments.py: every row is something a model may read. The segmented generator (generation/segmented.py)
fills the tables from what its kinds placed, but a row never says whether an incident lies behind it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from fractions import Fraction
from typing import Any

import numpy as np

from metric_tracker_rl.sql.columns import SqlTable

# The tables get_context reads and the SQL tool holds, in publication order (releases are SegmentedData's).
CONTEXT_TABLES: tuple[str, ...] = ("experiments", "campaigns", "holidays", "releases", "partner_status")
# How a model reads them, and what each table holds (the brief publishes these).
CONTEXT_READING = (
    "get_context(table) shows one; the query tool holds each under the same name and columns. A "
    "null field covers every value of its dimension"
)
CONTEXT_MEANINGS: dict[str, str] = {
    "experiments": "each experiment's treatment arm (the fields it names), the funnel step its change targets, "
    "and its first and last dates. Its intended effect on that step in that arm, a rise or a fall, is "
    "not an incident; a step it does not target breaking in its arm is one",
    "campaigns": "marketing campaigns by channel and country and their dates: they bring more, lower-intent "
    "traffic from that channel in that country, whose own conversion stays as it was",
    "holidays": "public holidays by country: lower traffic with a weekend-like daily pattern in that country",
    "releases": "each mobile release's rollout share of its platform's users by date",
    "partner_status": "the payment partners' status notices by platform and country, with their hours (end "
    "exclusive): a partner_payment_failure has one with its platform, country and hours {noted} "
    "(note_share), a payment_failure never; up to {empty} more per episode match no incident",
}
# The notices per episode that match no incident: this many are drawn, inclusive (one that would fall on a date
# and country an incident touches is dropped).
EMPTY_NOTICES = (0, 1)


def share_in_words(share: float) -> str:
    """A share as a reader takes it in: `about 1 in 2`, or never / always."""
    if share <= 0.0:
        return "never"
    if share >= 1.0:
        return "always"
    ratio = Fraction(share).limit_denominator(10)
    return f"about {ratio.numerator} in {ratio.denominator} times"


def context_meanings(note_share: float) -> dict[str, str]:
    """What each table holds, for an episode whose partner failures get a notice with chance `note_share`."""
    return {
        **CONTEXT_MEANINGS,
        "partner_status": CONTEXT_MEANINGS["partner_status"].format(
            noted=share_in_words(note_share), empty=EMPTY_NOTICES[1]
        ),
    }


@dataclass(frozen=True)
class Experiment:
    experiment: str
    platform: str | None
    country: str | None
    channel: str | None
    user_type: str | None
    target_step: str  # a conversion metric (a funnel step)
    start_date: str
    end_date: str


@dataclass(frozen=True)
class Campaign:
    campaign: str
    channel: str
    country: str
    start_date: str
    end_date: str


@dataclass(frozen=True)
class Holiday:
    date: str
    country: str | None  # None: every country
    name: str


@dataclass(frozen=True)
class PartnerNotice:
    partner: str
    platform: str | None
    country: str | None
    date: str
    start_hour: int
    end_hour: int  # exclusive
    status: str


ContextRow = Experiment | Campaign | Holiday | PartnerNotice
ROW_TYPES: dict[str, type] = {
    "experiments": Experiment,
    "campaigns": Campaign,
    "holidays": Holiday,
    "partner_status": PartnerNotice,
}
_DATE_COLUMNS = frozenset({"start_date", "end_date", "date"})
_INT_COLUMNS = frozenset({"start_hour", "end_hour"})


@dataclass(frozen=True)
class ContextTables:
    """The context rows of one episode (releases excepted: SegmentedData holds them), each table sorted by date."""

    experiments: tuple[Experiment, ...] = ()
    campaigns: tuple[Campaign, ...] = ()
    holidays: tuple[Holiday, ...] = ()
    partner_status: tuple[PartnerNotice, ...] = ()

    @classmethod
    def of(cls, rows: Sequence[ContextRow]) -> ContextTables:
        """The tables holding `rows`, each sorted by its dates and then its text (so the order says nothing of
        which row an incident lies behind)."""
        tables: dict[str, list[Any]] = {name: [] for name in ROW_TYPES}
        for row in rows:
            table = next(name for name, row_type in ROW_TYPES.items() if isinstance(row, row_type))
            tables[table].append(row)
        return cls(**{name: tuple(sorted(found, key=_order)) for name, found in tables.items()})

    def rows(self, table: str) -> list[dict[str, Any]]:
        """One table's rows as dicts (the four of ROW_TYPES; releases are SegmentedData's)."""
        if table not in ROW_TYPES:
            raise KeyError(table)
        return [asdict(row) for row in getattr(self, table)]

    def sql_tables(self) -> dict[str, SqlTable]:
        """The four tables as the SQL tool's columns (typed even when empty): dates as DATE, hours as INTEGER,
        text as VARCHAR (NULL where a field covers every value)."""
        return {name: _columns(row_type, getattr(self, name)) for name, row_type in ROW_TYPES.items()}


def _order(row: Any) -> tuple[str, ...]:
    values = asdict(row)
    return tuple(str(values[name]) for name in ("start_date", "date") if name in values) + tuple(
        str(value) for value in values.values()
    )


def _columns(row_type: type, rows: Sequence[Any]) -> SqlTable:
    table: SqlTable = {}
    for column in fields(row_type):
        values = [getattr(row, column.name) for row in rows]
        if column.name in _DATE_COLUMNS:
            table[column.name] = np.array(values, dtype="datetime64[D]")
        elif column.name in _INT_COLUMNS:
            table[column.name] = np.array(values, dtype=np.int32)
        else:
            table[column.name] = np.array(values, dtype=object)
    return table


# Each country's payment partner (fictional names), and the one status every notice carries: a notice never says
# whether it had an effect.
PAYMENT_PARTNERS: dict[str, str] = {
    "US": "CardRail",
    "GB": "CardRail",
    "DE": "SepaLink",
    "FR": "SepaLink",
    "BR": "PixGate",
    "IN": "UpiHub",
    "JP": "KonbiniPay",
    "MX": "OxxoNet",
}
PARTNER_NOTICE_STATUS = "degraded: elevated payment errors reported"


def partner_of(country: str) -> str:
    return PAYMENT_PARTNERS[country]


# What the partner status log holds at deep's defaults (its draw: partner_payment_failure and EMPTY_NOTICES): about
# MATCHED_NOTICE_SHARE of its notices match a payment incident, and about NOTED_PAYMENT_SHARE of the payment
# incidents (a partner's failure or a version's) have a notice (measured over 1000 seeds; tests/test_context_tables.py
# keeps them).
MATCHED_NOTICE_SHARE = 0.35
NOTED_PAYMENT_SHARE = 0.27
