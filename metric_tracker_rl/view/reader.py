"""Reading back the text `view.render` wrote: for harnesses that hold only the text (`observation.read_observation`,
an Inspect transcript's tables in `transcript`)."""

from __future__ import annotations

import json
from typing import Any

from metric_tracker_rl.view.render import CELL_SEPARATOR, INDENT, NUMBER, TABLE_HEAD


class ViewParseError(ValueError):
    """Text that `render` did not write."""


def _scalar(text: str) -> Any:
    if text == "null":
        return None
    if text in ("true", "false"):
        return text == "true"
    if text[:1] in "\"[{":
        return json.loads(text)
    if NUMBER.match(text):
        number = float(text)
        return int(number) if "." not in text and "e" not in text else number
    return text


def _cells(line: str) -> list[str]:
    """A table line's cells: separators inside quoted (JSON) cells are not cell boundaries."""
    cells, current, quoted, escaped = [], [], False, False
    i = 0
    while i < len(line):
        char = line[i]
        if quoted:
            current.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
            current.append(char)
        elif line.startswith(CELL_SEPARATOR, i):
            cells.append("".join(current))
            current = []
            i += len(CELL_SEPARATOR)
            continue
        else:
            current.append(char)
        i += 1
    cells.append("".join(current))
    return cells


def _depth(line: str) -> int:
    stripped = line.lstrip(" ")
    return (len(line) - len(stripped)) // len(INDENT)


def parse(text: str) -> dict[str, Any]:
    """The value that `render` wrote as `text` (numbers as shown). Raises ViewParseError for other text."""
    lines = text.split("\n") if text else []
    value, position = _parse_block(lines, 0, 0)
    if position != len(lines):
        raise ViewParseError(f"unexpected line {position + 1}: {lines[position]!r}")
    return value


def _parse_block(lines: list[str], position: int, depth: int) -> tuple[dict[str, Any], int]:
    value: dict[str, Any] = {}
    pad = INDENT * depth
    while position < len(lines):
        line = lines[position]
        if _depth(line) < depth:
            break
        if not line.startswith(pad) or _depth(line) != depth:
            raise ViewParseError(f"line {position + 1} is indented unexpectedly: {line!r}")
        key, separator, rest = line[len(pad):].partition(":")
        if not separator:
            raise ViewParseError(f"line {position + 1} has no 'key:': {line!r}")
        rest = rest.removeprefix(" ")
        position += 1
        table = TABLE_HEAD.match(rest)
        if rest == "":
            value[key], position = _parse_block(lines, position, depth + 1)
        elif table:
            value[key], position = _parse_table(lines, position, depth + 1, int(table.group(1)))
        else:
            value[key] = _scalar(rest)
    return value, position


def _parse_table(lines: list[str], position: int, depth: int, count: int) -> tuple[list[dict[str, Any]], int]:
    if count == 0:
        return [], position
    pad = INDENT * depth
    same: dict[str, Any] = {}
    if lines[position].startswith(pad + "same: "):
        same = json.loads(lines[position][len(pad) + len("same: "):])
        position += 1
    header = lines[position][len(pad):].split(CELL_SEPARATOR)
    position += 1
    rows = []
    for line in lines[position:position + count]:
        cells = _cells(line[len(pad):])
        if len(cells) != len(header):
            raise ViewParseError(f"a table row has {len(cells)} cells for {len(header)} columns: {line!r}")
        row = dict(same)
        row.update({column: _scalar(cell) for column, cell in zip(header, cells, strict=True) if cell != ""})
        # Column order as rendered: the header's columns and the shared ones, in the order of the first row.
        rows.append(row)
    if len(rows) != count:
        raise ViewParseError(f"a table announced {count} rows and holds {len(rows)}")
    return rows, position + count
