"""The debugger's cuboid view: a segmented episode's metric in any cuboid (a value, or all values, of each
dimension) against its published baseline (the median of the same weekday in the other weeks), and its context
tables, read with the SQL tool in a read-only session of the same episode (it costs the tab's episode no steps).

Nothing here talks to the server; a tab's session (`tabs.py`) runs the queries these functions write.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from metric_tracker_rl.catalog.published import CONVERSION_BY_NAME, COUNT_COLUMNS
from metric_tracker_rl.world.context import CONTEXT_TABLES
from metric_tracker_rl.world.daily_panel import peer_median, same_weekday_peers
from metric_tracker_rl.world.segments import SEGMENT_FIELDS

SEGMENT_TABLE = "daily_by_segment"
ALL_VALUES = "(all)"
CUBOID_METRICS: tuple[str, ...] = (*COUNT_COLUMNS, *CONVERSION_BY_NAME)


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def dimension_values_query(fields: tuple[str, ...]) -> str:
    """One query listing every value of each dimension column the episode has (field, value), in order."""
    return (
        " UNION ALL ".join(
            f"SELECT DISTINCT '{field}' AS dimension, CAST({field} AS VARCHAR) AS value FROM {SEGMENT_TABLE}"
            for field in fields
        )
        + " ORDER BY dimension, value"
    )


def dimension_values(rows: list[dict[str, Any]], fields: tuple[str, ...]) -> dict[str, list[str]]:
    """The rows of `dimension_values_query` as each field's values (fields in publication order)."""
    found: dict[str, list[str]] = {field: [] for field in fields}
    for row in rows:
        found[str(row["dimension"])].append(str(row["value"]))
    return found


def episode_fields(segments: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The dimension fields a segmented episode's brief names (none without segments), in report order."""
    if not segments:
        return ()
    named = segments.get("dimensions", {})
    return tuple(field for field in SEGMENT_FIELDS if field in named)


def cuboid_of(choices: Mapping[str, str | None]) -> dict[str, str]:
    """The chosen values, without the dimensions left at all values."""
    return {field: value for field, value in choices.items() if value and value != ALL_VALUES}


def cuboid_query(cuboid: Mapping[str, str]) -> str:
    """The cuboid's daily counts (every count column, summed over its leaves), one row per date."""
    where = " AND ".join(f"{field} = {_literal(value)}" for field, value in cuboid.items())
    sums = ", ".join(f"sum({column}) AS {column}" for column in COUNT_COLUMNS)
    return (
        f"SELECT date, {sums} FROM {SEGMENT_TABLE}"
        + (f" WHERE {where}" if where else "")
        + " GROUP BY date ORDER BY date"
    )


def cuboid_series(rows: list[dict[str, Any]], metric: str) -> tuple[list[str], list[float], list[float]]:
    """The cuboid's metric per date and its baseline: the published rule, the median of the same weekday in the
    other weeks (a conversion's baseline is the median of its own daily values)."""
    if metric not in CUBOID_METRICS:
        raise ValueError(f"unknown metric {metric!r}; valid: {', '.join(CUBOID_METRICS)}")
    dates = [str(row["date"]) for row in rows]
    if metric in COUNT_COLUMNS:
        values = np.array([float(row[metric]) for row in rows])
    else:
        definition = CONVERSION_BY_NAME[metric]
        numerator = np.array([float(row[definition.numerator]) for row in rows])
        denominator = np.array([float(row[definition.denominator]) for row in rows])
        values = np.divide(numerator, denominator, out=np.full(len(rows), np.nan), where=denominator > 0)
    peers = same_weekday_peers(len(values)) if len(values) > 7 else None
    baseline = peer_median(values, peers) if peers is not None else np.full_like(values, np.nan)
    return dates, [float(v) for v in values], [float(v) for v in baseline]


def cuboid_title(cuboid: Mapping[str, str], metric: str) -> str:
    where = " ∧ ".join(f"{field}={value}" for field, value in cuboid.items()) or "every segment (the aggregate)"
    return f"{metric} in {where}, against its same-weekday baseline"


def context_tables(segments: Mapping[str, Any] | None) -> list[str]:
    """The context tables a segmented episode's brief lists (none without segments), in the brief's order. The
    brief's entry also holds prose (how to read the tables) under keys of its own: only names of tables the SQL
    tool holds are kept."""
    if not segments:
        return []
    listed = segments.get("context_tables") or {}
    names = list(listed) if isinstance(listed, Mapping) else [str(t) for t in listed]
    return [name for name in names if name in CONTEXT_TABLES]


def context_query(table: str, tables: list[str], limit: int = 200) -> str:
    """The rows of one of the episode's context tables (the table must be one the brief lists)."""
    if table not in tables:
        raise ValueError(f"unknown context table {table!r}; valid: {', '.join(tables) or 'none in this episode'}")
    return f"SELECT * FROM {table} LIMIT {limit}"
