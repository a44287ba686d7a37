"""The web debugger's forms and tables: observations in, the text and tables Gradio shows out, and the
user's entries (reset settings, tool arguments, payload rows) back to actions.

Nothing here talks to the server; `page.py` wires these functions to Gradio events.
"""

from __future__ import annotations

import contextlib
import json
import math
from typing import Any

import pandas as pd

from metric_tracker_rl.models import ConversionMetricDefinition, MetricSubmissionRow, MetricTrackerRlObservation

SUBMISSION_COLUMNS: tuple[str, ...] = tuple(MetricSubmissionRow.model_fields)
NUMERIC_SUBMISSION_COLUMNS = ("baseline_value", "observed_value", "delta_value")
DEFAULT_CHOICE = "(default)"
# Every column fits a 1400 px window (long names wrap); narrower, the table scrolls with the key columns pinned.
ANNOTATION_COLOR = "#8c959f"
TRUTH_COLOR = "#cf222e"
LINE_COLOR = "#1a7f37"


# --- numbers on the page -----------------------------------------------------------------------------


def format_number(value: Any) -> Any:
    """A number as the page shows it: whole numbers as integers, others to four significant digits (one
    decimal from 100 up). The grader's tolerance is 2 %, so a rounded payload value still grades the same;
    the raw JSON views keep full precision."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if not math.isfinite(value):
        return value
    if float(value).is_integer():
        return int(value)
    return round(value, 1) if abs(value) >= 100 else float(f"{value:.4g}")


def rounded(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of a table with every number as `format_number` shows it."""
    return frame.apply(lambda column: column.map(format_number)) if not frame.empty else frame


# --- reset controls --------------------------------------------------------------------------------


def _number(name: str, text: str | None, kind: type) -> int | float | None:
    if text is None or not str(text).strip():
        return None
    try:
        return kind(str(text).strip())
    except ValueError:
        raise ValueError(f"{name} must be {'an integer' if kind is int else 'a number'}, got {text!r}") from None


def reset_kwargs(
    task_id: str | None,
    seed: str | None,
    scenario_family: str | None,
    difficulty: str | None,
    anomaly_density: str | None,
    anomaly_count: str | None,
) -> dict[str, Any]:
    """Reset keyword arguments from the form: blank fields and "(default)" choices are left to the server,
    which validates the rest and names the valid choices."""

    def chosen(value: str | None) -> str | None:
        return value if value and value != DEFAULT_CHOICE else None

    values: dict[str, Any] = {
        "task_id": chosen(task_id),
        "seed": _number("seed", seed, int),
        "scenario_family": chosen(scenario_family),
        "difficulty": chosen(difficulty),
        "anomaly_density": _number("anomaly_density", anomaly_density, float),
        "anomaly_count": _number("anomaly_count", anomaly_count, int),
    }
    return {k: v for k, v in values.items() if v is not None}


def status_markdown(
    observation: MetricTrackerRlObservation | None,
    config: dict[str, Any],
    error: str | None = None,
    heading: str = "error",
) -> str:
    """One glance at the episode: status, message, its config (from the reset), budgets and the latest score.
    A page-side `error` (bad JSON, a lost session) replaces the first line and keeps the episode's lines."""
    if observation is None:
        return f"**{heading}** — {error}" if error else "No episode: press Reset."
    setting = episode_setting(config)
    lines = [
        f"**{heading}** — {error}"
        if error
        else f"**{observation.status}** — {observation.message}{preview_summary(observation)}"
    ]
    if setting:
        lines.append(f"Episode: {setting}")
    lines.append(
        f"Steps left: {observation.steps_remaining} · submissions left: "
        f"{observation.submissions_remaining}" + (" · **episode over**" if observation.done else "")
    )
    if observation.reward_breakdown is not None:
        lines.append(f"Last score: **{observation.reward_breakdown.score:.4f}**")
    return "\n\n".join(lines)


def episode_setting(config: dict[str, Any]) -> str:
    """The status's episode line: what the episode is and how many incidents it holds, as its tier sets them (a
    count, or the range it is drawn from; anomaly_density only ever sets the count, so it is not shown)."""
    setting = [
        f"{k}={config[k]}" for k in ("task_id", "seed", "scenario_family", "difficulty") if config.get(k) is not None
    ]
    drawn = config.get("anomaly_count_range")
    if config.get("anomaly_count") is not None:
        setting.append(f"anomaly_count={config['anomaly_count']}")
    elif drawn:
        setting.append(f"anomaly_count={drawn[0]} to {drawn[1]} (drawn)")
    return ", ".join(setting)


def preview_summary(observation: MetricTrackerRlObservation) -> str:
    """What a preview found and what it cost, for the status line (the step's message only names the tool): a
    preview is a step like any other action, so that the step budget bounds every episode; it uses no submission."""
    result = observation.analysis_result or {}
    if observation.status != "ok" or result.get("method") != "preview_submission":
        return ""
    return (
        f" {result['valid_row_count']} row(s) valid of {result['row_count']}, {len(result['issues'])} "
        "issue(s); used a step, no submission."
    )


def submit_label(observation: MetricTrackerRlObservation | None) -> str:
    """The Submit button's text: what one press costs, read from the observation's budget."""
    if observation is None or observation.done:
        return "Submit report (episode over: press Reset)"
    left = observation.submissions_remaining
    if left <= 0:
        return "Submit report (no graded submission left)"
    if left == 1:
        return "Submit report (uses the only graded submission left and ends the episode)"
    return f"Submit report (uses 1 of {left} graded submissions left)"


EMPTY_REPORT_WARNING = (
    "The payload is empty: submitting it grades an empty report (score 0) and uses a graded "
    "submission. Press **Submit the empty report** to do it anyway, or add rows first."
)


# --- tool forms -------------------------------------------------------------------------------------


def default_arguments(method: dict[str, Any]) -> dict[str, Any]:
    """Arguments to prefill a tool's form: the schema's non-null defaults, overridden by the tool's example."""
    properties = method.get("parameters", {}).get("properties", {})
    defaults = {name: prop["default"] for name, prop in properties.items() if prop.get("default") is not None}
    return {**defaults, **method.get("example", {})}


def _schema_type(prop: dict[str, Any]) -> str:
    if "type" in prop:
        inner = prop.get("items", {})
        return f"{prop['type']}[{_schema_type(inner)}]" if prop["type"] == "array" and inner else prop["type"]
    if "anyOf" in prop:
        return " | ".join(_schema_type(p) for p in prop["anyOf"])
    if "$ref" in prop:
        return prop["$ref"].rsplit("/", 1)[-1]
    return "any"


def describe_method(method: dict[str, Any]) -> str:
    """Markdown help for a tool, generated from its JSON schema."""
    schema = method.get("parameters", {})
    properties = schema.get("properties", {})
    required = set(schema.get("required", []))
    lines = [f"**{method['name']}** ({method.get('kind', 'analysis')}): {method.get('description', '')}"]
    if not properties:
        lines.append("No arguments.")
        return "\n\n".join(lines)
    table = ["| argument | type | required | default | description |", "|---|---|---|---|---|"]
    for name, prop in properties.items():
        default = "" if "default" not in prop else json.dumps(prop["default"])
        description = str(prop.get("description", "")).replace("|", "\\|")
        table.append(
            f"| `{name}` | {_schema_type(prop)} | {'yes' if name in required else 'no'} | {default} | {description} |"
        )
    lines.append("\n".join(table))
    return "\n\n".join(lines)


def parse_arguments(text: str) -> dict[str, Any]:
    """The JSON editor's text as a tool-argument object; blank means no arguments."""
    if not text or not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"the arguments are not valid JSON: {exc.msg.lower()} at line {exc.lineno}, column {exc.colno}"
        ) from None
    if not isinstance(value, dict):
        raise ValueError('tool arguments must be a JSON object, e.g. {"date": "2026-03-10"}')
    return value


def _rounded_deep(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _rounded_deep(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded_deep(v) for v in value]
    return format_number(value)


def _cell(value: Any) -> Any:
    return json.dumps(_rounded_deep(value)) if isinstance(value, (dict, list)) else value


def result_table(result: dict[str, Any] | None) -> pd.DataFrame:
    """The most table-like part of a tool result: its first list of objects, else its single `row`, else its
    scalar fields. Nested values become JSON text so every cell renders."""
    if not result:
        return pd.DataFrame()
    for value in result.values():
        if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
            return rounded(pd.DataFrame([{k: _cell(v) for k, v in item.items()} for item in value]))
    if isinstance(result.get("row"), dict):
        return rounded(pd.DataFrame([{k: _cell(v) for k, v in result["row"].items()}]))
    scalars = {k: _cell(format_number(v)) for k, v in result.items() if k not in ("method", "arguments")}
    return pd.DataFrame({"field": list(scalars), "value": [str(v) for v in scalars.values()]})


# --- payload builder ----------------------------------------------------------------------------------


def empty_payload() -> pd.DataFrame:
    return pd.DataFrame(columns=list(SUBMISSION_COLUMNS))


def _blank(value: Any) -> bool:
    return (
        value is None or (isinstance(value, float) and pd.isna(value)) or (isinstance(value, str) and not value.strip())
    )


def rows_from_frame(frame: pd.DataFrame | None) -> list[dict[str, Any]]:
    """Submission rows from the editable table: blank rows dropped, numbers parsed where they parse (anything
    else is passed through so the server's validation names the problem)."""
    if frame is None or frame.empty:
        return []
    rows = []
    for record in frame.to_dict(orient="records"):
        row = {c: record.get(c) for c in SUBMISSION_COLUMNS}
        if all(_blank(v) for v in row.values()):
            continue
        for column in NUMERIC_SUBMISSION_COLUMNS:
            value = row[column]
            with contextlib.suppress(TypeError, ValueError):
                row[column] = None if value is None else float(value)
        rows.append({k: (None if _blank(v) else v) for k, v in row.items()})
    return rows


def _key(row: dict[str, Any]) -> tuple[Any, Any, Any]:
    return row.get("date"), row.get("entity_type"), row.get("entity_name")


def merge_rows(frame: pd.DataFrame | None, new_rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Append generated rows to the payload table; a row whose key is already in the table is skipped."""
    rows = rows_from_frame(frame)
    seen = {_key(r) for r in rows}
    for row in new_rows:
        if _key(row) not in seen:
            seen.add(_key(row))
            rows.append({c: format_number(row.get(c)) for c in SUBMISSION_COLUMNS})
    return pd.DataFrame(rows, columns=list(SUBMISSION_COLUMNS))


def breakdown_table(observation: MetricTrackerRlObservation) -> pd.DataFrame:
    """Reward components of the latest graded submission, one per line (only those the feedback carries: before
    a curriculum episode's last submission, the score and the counts)."""
    breakdown = observation.reward_breakdown
    if breakdown is None:
        return EMPTY_BREAKDOWN
    items = breakdown.model_dump(exclude_none=True)
    return pd.DataFrame({"component": list(items), "value": [format_number(float(v)) for v in items.values()]})


EMPTY_RESULT = pd.DataFrame(columns=["field", "value"])
EMPTY_BREAKDOWN = pd.DataFrame(columns=["component", "value"])
EMPTY_DEFINITIONS = pd.DataFrame(columns=list(ConversionMetricDefinition.model_fields))


def issues_table(issues: list[Any]) -> pd.DataFrame:
    """Submission or preview issues (models or dicts) as a table."""
    records = [i.model_dump() if hasattr(i, "model_dump") else dict(i) for i in issues]
    return pd.DataFrame(records, columns=["row_index", "code", "message"])


COMPARISON_COLUMNS = [
    "row",
    "date",
    "entity_type",
    "entity_name",
    "verdict",
    "anomaly_type",
    "detection_method",
    "values in tolerance",
    "severity",
]


def comparison_table(observation: MetricTrackerRlObservation | None) -> pd.DataFrame:
    """The graded comparison of a finished open-mode episode, one line per submitted row and then one per missed
    incident (row "missed"); empty while the episode runs and always in held-out mode, where the server sends none."""
    comparison = observation.comparison if observation is not None else None
    if comparison is None:
        return pd.DataFrame(columns=COMPARISON_COLUMNS)
    records = []
    for entry in comparison["rows"]:
        date, entity_type, entity_name = entry["key"].split("|")
        matched = entry["verdict"] == "matched"
        records.append(
            [
                str(entry["row_index"]),
                date,
                entity_type,
                entity_name,
                entry["verdict"].replace("_", " "),
                _mark(entry.get("anomaly_type_ok")) if matched else "",
                _mark(entry.get("detection_method_ok")) if matched else "",
                f"{entry['values_in_tolerance']}/3" if matched else "",
                _mark(entry.get("severity_ok")) if matched else "",
            ]
        )
    for row in comparison["missed"]:
        records.append(
            [
                "missed",
                row["date"],
                row["entity_type"],
                row["entity_name"],
                f"missed: {row['anomaly_type']}",
                "",
                "",
                "",
                row["severity"],
            ]
        )
    return pd.DataFrame(records, columns=COMPARISON_COLUMNS)


def _mark(ok: bool | None) -> str:
    return "right" if ok else "wrong"
