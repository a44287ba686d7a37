"""A result's cells as the query tool shows them: plain JSON values, text cut at MAX_CELL_CHARS with a mark that says
so, and column names a table view can show (`engine.EpisodeTables` pages its results through these)."""

from __future__ import annotations

import datetime
import decimal
import json
import math
from typing import Any

MAX_CELL_CHARS = 200
CUT_MARK = "...(cut, {length} chars)"  # what ends a text cell cut at MAX_CELL_CHARS
# Cells a page passes as they are, with no conversion (cell() gives each of them back unchanged).
_PLAIN_CELLS = frozenset({int, bool, type(None)})


def column_names(names: list[str]) -> list[str]:
    """Column names that a table view can show: one line, no cell separator or key mark, non-empty, unique."""
    out: list[str] = []
    for i, name in enumerate(names):
        clean = " ".join(str(name).replace("|", "/").replace(":", "_").split())[:64] or f"column_{i + 1}"
        unique, n = clean, 2
        while unique in out:
            unique, n = f"{clean}_{n}", n + 1
        out.append(unique)
    return out


def page_cells(rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    """Each row's cells as cell() gives them; the cells it gives back unchanged (whole numbers, booleans, nulls,
    finite floats and text within MAX_CELL_CHARS: most of a page) are kept without a call."""
    return [
        [
            value
            if (kind := type(value)) in _PLAIN_CELLS
            or (kind is float and value - value == 0.0)  # finite: inf - inf and NaN - NaN are NaN
            or (kind is str and len(value) <= MAX_CELL_CHARS)
            else cell(value)
            for value in row
        ]
        for row in rows
    ]


def cell(value: Any) -> Any:
    """A DuckDB value as a plain JSON value: finite numbers, text (cut at MAX_CELL_CHARS, marked), booleans and
    null. NaN and the infinities (0/0, x/0) are shown as the words NaN, Infinity and -Infinity: JSON has no such
    numbers, and a null would read as a missing value."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, decimal.Decimal):
        return cell(float(value))
    if isinstance(value, (datetime.date, datetime.time)):  # datetime is a date
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        text = bytes(value).hex()
    elif isinstance(value, str):
        text = value
    elif isinstance(value, (list, dict, tuple)):
        text = json.dumps(value, default=str, ensure_ascii=False)
    else:
        text = str(value)
    if len(text) > MAX_CELL_CHARS:
        text = cut_text(text)
    return text


def cut_text(text: str) -> str:
    """A text cell cut at MAX_CELL_CHARS, with a mark that says it was cut and how long it was."""
    return f"{text[:MAX_CELL_CHARS]}{CUT_MARK.format(length=len(text))}"
