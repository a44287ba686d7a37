"""What every reference agent reads off public tool results the same way."""

from __future__ import annotations

import datetime as dt
from typing import Any

from metric_tracker_rl.catalog.published import AGGREGATE_DIFFICULTIES

# The most rows a page of a get_*_rows tool holds (its `limit` argument says so).
PAGE_ROWS = 120
# Annotation kinds that explain a date (the calendar says why it moved): never an incident.
EXPLAINED_KINDS = frozenset({"marketing_campaign", "public_holiday", "data_freshness"})

Row = dict[str, Any]


def explained_dates(annotations_result: dict[str, Any]) -> set[str]:
    """The dates a `get_annotations` result explains."""
    return {a["date"] for a in annotations_result.get("annotations", []) if a["kind"] in EXPLAINED_KINDS}


def signed_share(row: Row) -> float:
    """A row's delta as a share of its baseline (the sign says which way it moved)."""
    return row["delta_value"] / max(abs(row["baseline_value"]), 1e-9)


def relative_move(row: Row) -> float:
    """How far a row moved, as a share of its baseline."""
    return abs(signed_share(row))


def episode_dates(brief: dict[str, Any]) -> list[str]:
    """The window's dates in order, from the brief's first date and length (consecutive days)."""
    first = dt.date.fromisoformat(brief["window"]["first_date"])
    return [(first + dt.timedelta(days=offset)).isoformat() for offset in range(brief["window"]["days"])]


def same_weekday_peers(day: int, days: int) -> list[int]:
    """The positions of a date's same weekday in the other weeks of the window (the published baseline rule)."""
    return [peer for peer in range(day % 7, days, 7) if peer != day]


def weekday(date: str) -> str:
    return dt.date.fromisoformat(date).strftime("%A")


def published_range(brief: dict[str, Any], family: str, difficulty: str) -> tuple[float, float]:
    """A family's published magnitude range at one difficulty (the brief's `families` table)."""
    row = next(row for row in brief["families"] if row["family"] == family)
    low, high = row[difficulty]
    return float(low), float(high)


def magnitude_bounds(brief: dict[str, Any], family: str) -> tuple[float, float]:
    """A family's published magnitude range over every difficulty (the brief's `families` table)."""
    row = next(row for row in brief["families"] if row["family"] == family)
    if not all(difficulty in row for difficulty in AGGREGATE_DIFFICULTIES):
        raise ValueError(
            "the brief publishes no magnitude ranges (difficulty frontier publishes none): this agent "
            "reads the aggregate tiers' brief only"
        )
    ranges = [row[difficulty] for difficulty in AGGREGATE_DIFFICULTIES]
    return float(min(low for low, _ in ranges)), float(max(high for _, high in ranges))


# The kinds of signal a list_suspicious_dates entry shows, in the order it breaks ties; hourly mixes count rising.
SUSPICIOUS_KINDS = ("conversion_rate", "event_count", "hourly_mix")


def strongest_signal(entry: dict[str, Any]) -> tuple[str, str]:
    """The (entity_type, entity_name) behind a list_suspicious_dates entry's max_abs_robust_z: the kind whose
    strongest entity moved most (|z| for counts and rates, the rise for an hourly mix)."""

    def strength(kind: str) -> float:
        z = entry.get(f"{kind}_z") or 0.0
        return max(z, 0.0) if kind == "hourly_mix" else abs(z)

    kind = max(SUSPICIOUS_KINDS, key=strength)  # the first of equally strong kinds, as the ranking breaks ties
    return kind, entry[kind]
