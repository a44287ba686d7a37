"""`preview_submission`: checks report rows as a submission would (format, dates, entities, repeated keys)
without grading them."""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationError

from metric_tracker_rl.analysis_tools.arguments import ToolArgs
from metric_tracker_rl.analysis_tools.registry import REFERENCE_API, cap_rows, register_tool
from metric_tracker_rl.catalog.plain_types import MetricSubmissionRow
from metric_tracker_rl.catalog.validation import describe_validation_error, entity_names_of, validate_rows
from metric_tracker_rl.world.public_episode import PublicEpisode

MAX_PREVIEW_ROWS = 200


class PreviewArgs(ToolArgs):
    # Not echoed in the result's `arguments`: raw rows may hold anything (deep nesting, large junk), and the
    # result already reports every row (valid rows and per-row issues).
    rows: list[dict[str, Any]] = Field(
        description="Candidate submission rows", max_length=MAX_PREVIEW_ROWS, exclude=True
    )


@register_tool(
    "preview_submission",
    "Check rows without grading them (format, dates, entities, repeated keys); uses no submission.",
    PreviewArgs,
    kept_for=f"{REFERENCE_API} and the debugger's report preview; a model's submit_report refuses invalid "
    "rows without using a submission",
    reads=(),
    example={
        "rows": [
            {
                "date": "2026-03-10",
                "entity_type": "event_count",
                "entity_name": "app_opens",
                "anomaly_type": "absolute_spike_in_event_count",
                "detection_method": "compare_count_to_median",
                "baseline_value": 40000.0,
                "observed_value": 60000.0,
                "delta_value": 20000.0,
                "severity": "high",
            }
        ]
    },
)
def preview_submission(episode: PublicEpisode, args: PreviewArgs) -> dict[str, Any]:
    valid_rows: list[tuple[int, MetricSubmissionRow]] = []
    issues: list[dict[str, Any]] = []
    for i, raw in enumerate(args.rows):
        try:
            valid_rows.append((i, MetricSubmissionRow.model_validate(raw)))
        except ValidationError as exc:
            issues.append({"row_index": i, "code": "invalid_row", "message": describe_validation_error(exc)})
    with entity_names_of(str(episode.task.get("config", {}).get("difficulty"))):
        row_issues = validate_rows([r for _, r in valid_rows], episode.dates, episode.segment_values())
    for position, issue in row_issues.items():
        issues.append({"row_index": valid_rows[position][0], "code": issue.code, "message": issue.message})
    issues.sort(key=lambda item: item["row_index"])
    return {
        "row_count": len(args.rows),
        "valid_row_count": len(valid_rows) - len(row_issues),
        "issues": issues,
        **cap_rows([r.model_dump(exclude_none=True) for _, r in valid_rows]),
    }
