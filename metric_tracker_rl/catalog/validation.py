"""Checks that need no ground truth, and the one way their mistakes are worded.

A submitted row's date must be in the window, its entity name valid for its type, and its key must not repeat.
Validity is public, so the tools and the environment may refuse such rows without revealing anything; the grader
counts them as false positives when they reach it. `describe_validation_error` and `check_choice` word every
argument mistake (tool calls, submissions, reset settings, previews) the same way: what is wrong, then what is
valid."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

from pydantic import ValidationError

from metric_tracker_rl.catalog.plain_types import MetricSubmissionRow, SubmissionIssue
from metric_tracker_rl.catalog.published import (
    DIFFICULTIES,
    ENTITY_NAMES,
    ENTITY_NAMES_BY_DATA,
    SEGMENTED_DIFFICULTIES,
    row_key,
)
from metric_tracker_rl.catalog.tiers import TIERS

ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# The entity names of the episode whose rows are being checked (validate_rows reads it): those of its data
# (published.ENTITY_NAMES_BY_DATA: a raw event export's data_quality rows name its dashboard's metrics). Set with
# `entity_names_of`.
EPISODE_ENTITY_NAMES: ContextVar[Mapping[str, tuple[str, ...]]] = ContextVar(
    "episode_entity_names", default=ENTITY_NAMES
)


def entity_names_at(difficulty: str) -> Mapping[str, tuple[str, ...]]:
    """The entity names a report row may name at a difficulty (a name no tier has: the names of counts)."""
    tier = TIERS.get(difficulty)
    return ENTITY_NAMES if tier is None else ENTITY_NAMES_BY_DATA[tier.data]


@contextmanager
def entity_names_of(difficulty: str) -> Iterator[None]:
    """Check rows (validate_rows, and the grader through it) with the entity names of `difficulty` inside."""
    token = EPISODE_ENTITY_NAMES.set(entity_names_at(difficulty))
    try:
        yield
    finally:
        EPISODE_ENTITY_NAMES.reset(token)


def date_problem(value: str, window: Sequence[str]) -> str | None:
    """Why `value` is not a date of the window (ordered), or None. A date written in another format (15/03/2026)
    gets a format hint rather than "not in the window": the model then knows what to change."""
    if value in window:
        return None
    if not ISO_DATE.match(value):
        return (
            f"date {value!r} is not in YYYY-MM-DD format; write dates as YYYY-MM-DD, e.g. {window[0]} "
            f"(valid dates are {window[0]} .. {window[-1]})"
        )
    return f"date {value!r} is not in the episode window; valid dates are {window[0]} .. {window[-1]} (YYYY-MM-DD)"


SEGMENT_FIELDS: tuple[str, ...] = ("platform", "country", "app_version", "channel", "user_type")
_SEGMENTED_LISTED = [d for d in DIFFICULTIES if d in SEGMENTED_DIFFICULTIES]
NO_SEGMENTS = (
    "this episode's funnel has no segments (difficulties "
    f"{', '.join(_SEGMENTED_LISTED[:-1])} and {_SEGMENTED_LISTED[-1]} have)"
)


def segment_problem(named: Mapping[str, str], segment_values: Mapping[str, Sequence[str]] | None) -> str | None:
    """What is wrong with the segment fields a row or a scoped tool call names, if anything: segments exist only
    where the episode has them (a tier with segments), a field only where it has its dimension, and each named
    value must be one of the episode's."""
    for name, value in named.items():
        if segment_values is None:
            return f"{name} {value!r}: {NO_SEGMENTS}; name none of {', '.join(SEGMENT_FIELDS)}"
        if name not in segment_values:
            return (
                f"{name} {value!r}: this episode has no {name} dimension; its dimensions: {', '.join(segment_values)}"
            )
        if value not in segment_values[name]:
            return f"{name} {value!r} is not a value of this episode; valid: {', '.join(segment_values[name])}"
    return None


def segment_issue(row: MetricSubmissionRow, segment_values: Mapping[str, Sequence[str]] | None) -> str | None:
    """segment_problem of a report row's segment fields."""
    named = {name: value for name in SEGMENT_FIELDS if (value := getattr(row, name)) is not None}
    return segment_problem(named, segment_values)


def validate_rows(
    rows: Sequence[MetricSubmissionRow],
    valid_dates: Iterable[str],
    segment_values: Mapping[str, Sequence[str]] | None = None,
) -> dict[int, SubmissionIssue]:
    """Per-row issues that need no truth: unknown dates, entities or segment values, and repeated keys.
    `segment_values` lists each dimension's values of a segmented episode (None: the episode has no segments)."""
    dates = tuple(sorted(valid_dates))
    names = EPISODE_ENTITY_NAMES.get()
    issues: dict[int, SubmissionIssue] = {}
    first_index: dict[str, int] = {}
    for i, row in enumerate(rows):
        problem = date_problem(row.date, dates)
        if problem is not None:
            issues[i] = SubmissionIssue(row_index=i, code="invalid_row", message=problem)
            continue
        if row.entity_name not in names[row.entity_type]:
            issues[i] = SubmissionIssue(
                row_index=i,
                code="invalid_row",
                message=f"entity_name {row.entity_name!r} is not valid for entity_type {row.entity_type!r}; "
                f"valid: {', '.join(names[row.entity_type])}",
            )
            continue
        problem = segment_issue(row, segment_values)
        if problem is not None:
            issues[i] = SubmissionIssue(row_index=i, code="invalid_row", message=problem)
            continue
        key = row_key(row.date, row.entity_type, row.entity_name)
        if key in first_index:
            issues[i] = SubmissionIssue(
                row_index=i, code="duplicate_row", message=f"repeats the key of row {first_index[key]}"
            )
        else:
            first_index[key] = i
    return issues


def describe_validation_error(exc: ValidationError, limit: int = 5) -> str:
    """A pydantic error as one line: each problem as `location: message` (an unexpected or a missing field said
    so), the first `limit` of them and how many more there are."""
    parts = []
    for error in exc.errors()[:limit]:
        location = ".".join(str(p) for p in error["loc"]) or "arguments"
        if error["type"] == "extra_forbidden":
            parts.append(f"unexpected argument {location!r}")
        elif error["type"] == "missing":
            parts.append(f"missing required argument {location!r}")
        else:
            parts.append(f"{location}: {error['msg'].removeprefix('Value error, ')}")
    more = f" (+{exc.error_count() - limit} more)" if exc.error_count() > limit else ""
    return "; ".join(parts) + more


def check_choice(kind: str, value: object, choices: Sequence[str]) -> str:
    """`value` if it is one of `choices`, else a ValueError that names them."""
    if value not in choices:
        raise ValueError(f"unknown {kind} {value!r}; valid: {', '.join(choices)}")
    return str(value)


def check_name_in_any_case(kind: str, value: object, names: Sequence[str]) -> str:
    """The one of `names` that `value` spells, in any letter case (a name of a reset setting: FRONTIER is
    frontier), else a ValueError that names them. `names` must differ from each other in more than case."""
    if isinstance(value, str):
        matches = [name for name in names if name.casefold() == value.casefold()]
        if len(matches) == 1:
            return matches[0]
    raise ValueError(f"unknown {kind} {value!r}; valid (in any case): {', '.join(names)}")
