"""The text a model reads: JSON-like values written for a reader with a context window.

`render(value)` writes a tool result compactly:

- a dict is one `key: value` line per entry; a nested dict is a `key:` line with its entries indented below;
- a list of dicts is a table: `key: N rows` (or `key: N of M rows`), the columns its caller declares constant
  (`shared`: one value in every row of every call, such as a generator's detection_method) stated once as
  `same: {...}`, one header line of column names, and one line per row with cells joined by ` | `. Only declared
  columns move: a column that happens to hold one value on this page stays a column, so a tool's table has the
  same header on every call;
- any other list is compact JSON;
- numbers keep what a reader needs: integers whole, other numbers at 4 significant digits (a value of 1000 or
  more to the unit), which stays within the grader's 2% tolerance of the full value;
- a string is written bare unless it would read as something else (a number, `null`, a separator inside a table,
  leading or trailing blanks): then it is quoted as JSON.

`rounded(value)` is the value the text shows (its numbers at the precision written), so that a reference agent
decides from exactly what a model reads. The text is written from values and never read back.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

SIGNIFICANT_DIGITS = 4
CELL_SEPARATOR = " | "
INDENT = "  "
TABLE_HEAD = re.compile(r"^(\d+)(?: of (\d+))? rows?$")
NUMBER = re.compile(r"^-?\d+(?:\.\d+)?(?:e[-+]?\d+)?$")
_WHOLE_FROM = 10**SIGNIFICANT_DIGITS // 10  # at 1000 and above, the unit is finer than 4 significant digits
_FLOAT_FORMAT = f".{SIGNIFICANT_DIGITS}g"
_FAST_FLOAT_FROM = 1e-4  # the fast path's floor: far above the subnormal floats, whose 4 digits read differently
_CACHED_STRING_CHARS = 64


def round_number(value: float) -> float | int:
    """A float at the precision shown: 4 significant digits, or to the unit from 1000 on."""
    if not math.isfinite(value) or value == 0:
        return value
    if abs(value) >= _WHOLE_FROM:
        return int(round(value))
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")


def _number_text(value: int | float) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    shown = round_number(value)
    if isinstance(shown, int):
        return str(shown)
    text = repr(shown)
    return text[:-2] if text.endswith(".0") else text


def rounded(value: Any) -> Any:
    """`value` with every float at the precision shown: what `render(value)` shows of it."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        shown = round_number(value)
        return shown if isinstance(shown, int) or not shown.is_integer() else int(shown)
    if isinstance(value, dict):
        return {key: rounded(item) for key, item in value.items()}
    return [rounded(item) for item in value]


def _needs_quotes(text: str) -> bool:
    return (
        text == ""
        or text != text.strip()
        or text in ("null", "true", "false")
        or bool(NUMBER.match(text))
        or text[0] in "[{"
        or '"' in text
        or "|" in text
        or "\n" in text
        or TABLE_HEAD.match(text) is not None
    )


def _string_text(text: str) -> str:
    return json.dumps(text) if _needs_quotes(text) else text


_short_string_text = lru_cache(maxsize=4096)(_string_text)


def _cell_string_text(text: str) -> str:
    """Short strings are cached: a tool's tables repeat the same dates, entity names and labels in every call
    (long ones, such as SQL text, would only fill the cache)."""
    return _short_string_text(text) if len(text) <= _CACHED_STRING_CHARS else _string_text(text)


def _float_text(value: float) -> str:
    """`_number_text` of a float in one step where that gives the same text: from 0.0001 to under 1000 the
    4-significant-digit format already is the shortest text of the rounded number."""
    if _FAST_FLOAT_FROM <= abs(value) < _WHOLE_FROM:
        return format(value, _FLOAT_FORMAT)
    return _number_text(value)


def _scalar_text(value: Any) -> str:
    # Exact types first (this runs for every table cell a model reads); subclasses take the general path.
    exact = _EXACT_TYPE_TEXT.get(type(value))
    if exact is not None:
        return exact(value)
    if value is None:
        return "null"
    if isinstance(value, (bool, int, float)):
        return _number_text(value)
    if isinstance(value, str):
        return _string_text(value)
    return _json_text(value)


_EXACT_TYPE_TEXT: dict[type, Callable[[Any], str]] = {str: _cell_string_text, float: _float_text, int: str}


def _json_text(value: Any) -> str:
    """Compact JSON of a list or dict, its numbers rounded like every other number."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{_json_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_json_text(item) for item in value) + "]"
    if isinstance(value, str) or value is None:
        return json.dumps(value)
    return _number_text(value)


def _is_table(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(item, dict) for item in value)


Shared = dict[str, frozenset[str]]  # table key -> the columns declared constant in it


def _table_lines(
    key: str, rows: list[dict[str, Any]], depth: int, total: int | None, constant: frozenset[str] = frozenset()
) -> list[str]:
    pad = INDENT * depth
    first_columns = rows[0].keys()
    columns_seen = dict.fromkeys(first_columns)
    complete = True  # every row has every column: the common case
    for row in rows:
        if row.keys() != first_columns:  # rare: rows with other columns add theirs, in order of appearance
            columns_seen.update(dict.fromkeys(row))
            complete = False
    columns = list(columns_seen)
    same = {column: rows[0].get(column) for column in columns if column in constant}
    # Equal and of one type: False == 0 in Python, but the text writes `false` and `0`.
    varying = [
        column
        for column in same
        if any(
            column not in row or row[column] != same[column] or type(row[column]) is not type(same[column])
            for row in rows
        )
    ]
    if varying:
        raise ValueError(f"columns {varying} of table {key!r} are declared constant but vary")
    shown = [column for column in columns if column not in same]
    count = f"{len(rows)} of {total}" if total is not None and total != len(rows) else str(len(rows))
    lines = [f"{pad}{key}: {count} rows"]
    if same:
        lines.append(f"{pad}{INDENT}same: {_json_text(same)}")
    lines.append(pad + INDENT + CELL_SEPARATOR.join(shown))
    row_pad, exact, text = pad + INDENT, _EXACT_TYPE_TEXT.get, _scalar_text
    if complete:
        for row in rows:  # `_scalar_text` inlined: one call per cell instead of two
            cells = [exact(type(value), text)(value) for value in map(row.__getitem__, shown)]
            lines.append(row_pad + CELL_SEPARATOR.join(cells))
        return lines
    for row in rows:
        cells = [text(row[column]) if column in row else "" for column in shown]
        lines.append(row_pad + CELL_SEPARATOR.join(cells))
    return lines


def _lines(value: dict[str, Any], depth: int, shared: Shared) -> list[str]:
    pad = INDENT * depth
    lines: list[str] = []
    for key, item in value.items():
        if _is_table(item):
            lines += _table_lines(key, item, depth, None, shared.get(key, frozenset()))
        elif isinstance(item, dict) and item:
            lines.append(f"{pad}{key}:")
            lines += _lines(item, depth + 1, shared)
        elif isinstance(item, list) and not item:
            lines.append(f"{pad}{key}: 0 rows")
        else:
            lines.append(f"{pad}{key}: {_scalar_text(item) if not isinstance(item, dict) else '{}'}")
    return lines


def render(value: dict[str, Any], totals: dict[str, int] | None = None, shared: Shared | None = None) -> str:
    """The text of a result dict. `totals` gives, for a table key, how many rows exist in all (a page); `shared`,
    for a table key, the columns constant in every row of every call, stated once above the header."""
    shared = shared or {}
    if not totals:
        return "\n".join(_lines(value, 0, shared))
    lines: list[str] = []
    for key, item in value.items():
        if key in totals and isinstance(item, list) and all(isinstance(row, dict) for row in item):
            shown = f"0 of {totals[key]}" if totals[key] else "0"
            lines += (
                _table_lines(key, item, 0, totals[key], shared.get(key, frozenset()))
                if item
                else [f"{key}: {shown} rows"]
            )
        else:
            lines += _lines({key: item}, 0, shared)
    return "\n".join(lines)
