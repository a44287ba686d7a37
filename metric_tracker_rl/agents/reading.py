"""What every reference agent reads off public tool results the same way."""

from __future__ import annotations

from typing import Any

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
