"""Reading a model's text back into the value it shows: for tests that check the text says what the environment
did (the product renders text from values and never parses it)."""

from __future__ import annotations

import json
import re
from typing import Any

from metric_tracker_rl.catalog.published import DIFFICULTIES
from metric_tracker_rl.view.observation import Feedback, SeenObservation
from metric_tracker_rl.view.prompt import FAMILY_LIST_COLUMNS
from metric_tracker_rl.view.render import CELL_SEPARATOR, INDENT, NUMBER, TABLE_HEAD


class ViewParseError(ValueError):
    """Text that `view.render` did not write."""


def _scalar(text: str) -> Any:
    if text == "null":
        return None
    if text in ("true", "false"):
        return text == "true"
    if text[:1] in '"[{':
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
        key, separator, rest = line[len(pad) :].partition(":")
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
        same = json.loads(lines[position][len(pad) + len("same: ") :])
        position += 1
    header = lines[position][len(pad) :].split(CELL_SEPARATOR)
    position += 1
    rows = []
    for line in lines[position : position + count]:
        cells = _cells(line[len(pad) :])
        if len(cells) != len(header):
            raise ViewParseError(f"a table row has {len(cells)} cells for {len(header)} columns: {line!r}")
        row = dict(same)
        row.update({column: _scalar(cell) for column, cell in zip(header, cells, strict=True) if cell != ""})
        rows.append(row)
    if len(rows) != count:
        raise ViewParseError(f"a table announced {count} rows and holds {len(rows)}")
    return rows, position + count


_RANGE = re.compile(r"^(-?\d+(?:\.\d+)?(?:e[-+]?\d+)?)-(-?\d+(?:\.\d+)?(?:e[-+]?\d+)?)$")


def _family_from_text(family: dict[str, Any]) -> dict[str, Any]:
    """A brief's family row as `prompt` builds it, from its text (lists joined by commas, ranges as `low-high`)."""

    def value_of(key: str, value: Any) -> Any:
        if key in FAMILY_LIST_COLUMNS:
            return str(value).split(",")
        if key in DIFFICULTIES:
            match = _RANGE.match(str(value))
            if match is None:
                raise ViewParseError(f"{key} of family {family.get('family')!r} is no range: {value!r}")
            return float(match.group(1)), float(match.group(2))
        return value

    return {key: value_of(key, value) for key, value in family.items()}


def read_observation(text: str) -> SeenObservation:
    """The view of the observation that `render_observation` (or `first_prompt`) wrote as `text`, read off the text
    alone: a test compares it with `seen`'s view of the observation, which must be equal."""
    value = parse(text)
    budgets = {
        "steps_remaining": value.pop("steps_remaining", 0),
        "submissions_remaining": value.pop("submissions_remaining", 0),
        "done": bool(value.pop("episode_over", False)),
    }
    if "benign_fluctuations" in value:  # only the brief publishes them
        value["families"] = [_family_from_text(family) for family in value.get("families", [])]
        return SeenObservation(text, "ready", config=value.get("config", {}), brief=value, **budgets)
    if "error" in value:
        return SeenObservation(text, "error", **budgets)
    if "graded" in value:
        graded = value["graded"]
        feedback = Feedback(**{key: graded[key] for key in Feedback.__dataclass_fields__ if key in graded})
        return SeenObservation(
            text, "graded", reward_breakdown=feedback, expected_row_count=graded.get("expected_row_count"), **budgets
        )
    return SeenObservation(text, "ok", analysis_result=value, **budgets)
