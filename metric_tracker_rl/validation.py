"""Checks of a submission that need no ground truth: a row's date must be in the window, its entity name valid
for its type, and its key must not repeat. Validity is public, so the tools and the environment may refuse such
rows without revealing anything; the grader counts them as false positives when they reach it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from metric_tracker_rl.catalog import ENTITY_NAMES, row_key
from metric_tracker_rl.models import MetricSubmissionRow, SubmissionIssue


def validate_rows(rows: Sequence[MetricSubmissionRow], valid_dates: Iterable[str]) -> dict[int, SubmissionIssue]:
    """Per-row issues that need no truth: unknown dates or entities, and repeated keys."""
    dates = set(valid_dates)
    issues: dict[int, SubmissionIssue] = {}
    first_index: dict[str, int] = {}
    for i, row in enumerate(rows):
        if row.date not in dates:
            issues[i] = SubmissionIssue(row_index=i, code="invalid_row",
                                        message=f"date {row.date!r} is not in the episode window")
            continue
        if row.entity_name not in ENTITY_NAMES[row.entity_type]:
            issues[i] = SubmissionIssue(
                row_index=i, code="invalid_row",
                message=f"entity_name {row.entity_name!r} is not valid for entity_type {row.entity_type!r}; "
                        f"valid: {', '.join(ENTITY_NAMES[row.entity_type])}")
            continue
        key = row_key(row.date, row.entity_type, row.entity_name)
        if key in first_index:
            issues[i] = SubmissionIssue(row_index=i, code="duplicate_row",
                                        message=f"repeats the key of row {first_index[key]}")
        else:
            first_index[key] = i
    return issues
