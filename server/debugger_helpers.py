"""Pure formatting and chart functions of the web debugger: observations in, tables, text and figures out.

Nothing here talks to the server; `server/debugger.py` wires these functions to Gradio events.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from metric_tracker_rl.catalog import CONVERSION_METRIC_NAMES, COUNT_COLUMNS
from metric_tracker_rl.models import MetricSubmissionRow, MetricTrackerRlObservation

SUBMISSION_COLUMNS: tuple[str, ...] = tuple(MetricSubmissionRow.model_fields)
NUMERIC_SUBMISSION_COLUMNS = ("baseline_value", "observed_value", "delta_value")
DEFAULT_CHOICE = "(default)"
ANNOTATION_COLOR = "#8c959f"
TRUTH_COLOR = "#cf222e"
LINE_COLOR = "#1a7f37"


# --- reset controls --------------------------------------------------------------------------------

def _number(name: str, text: str | None, kind: type) -> int | float | None:
    if text is None or not str(text).strip():
        return None
    try:
        return kind(str(text).strip())
    except ValueError:
        raise ValueError(f"{name} must be {'an integer' if kind is int else 'a number'}, got {text!r}") from None


def reset_kwargs(task_id: str | None, seed: str | None, scenario_family: str | None, difficulty: str | None,
                 anomaly_density: str | None, anomaly_count: str | None) -> dict[str, Any]:
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


def status_markdown(observation: MetricTrackerRlObservation, config: dict[str, Any]) -> str:
    """One glance at the episode: status, message, its config (from the reset), budgets and the latest score."""
    setting = ", ".join(f"{k}={config[k]}" for k in ("task_id", "seed", "scenario_family", "difficulty",
                                                       "anomaly_density", "anomaly_count")
                        if config.get(k) is not None)
    lines = [f"**{observation.status}** — {observation.message}"]
    if setting:
        lines.append(f"Episode: {setting}")
    lines.append(f"Steps left: {observation.steps_remaining} · submissions left: "
                 f"{observation.submissions_remaining}" + (" · **episode over**" if observation.done else ""))
    if observation.reward_breakdown is not None:
        lines.append(f"Last score: **{observation.reward_breakdown.score:.4f}**")
    return "\n\n".join(lines)


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
        table.append(f"| `{name}` | {_schema_type(prop)} | {'yes' if name in required else 'no'} | {default} | "
                     f"{description} |")
    lines.append("\n".join(table))
    return "\n\n".join(lines)


def parse_arguments(text: str) -> dict[str, Any]:
    """The JSON editor's text as a tool-argument object; blank means no arguments."""
    if not text or not text.strip():
        return {}
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("tool arguments must be a JSON object, e.g. {\"date\": \"2026-03-10\"}")
    return value


def _cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (dict, list)) else value


def result_table(result: dict[str, Any] | None) -> pd.DataFrame:
    """The most table-like part of a tool result: its first list of objects, else its single `row`, else its
    scalar fields. Nested values become JSON text so every cell renders."""
    if not result:
        return pd.DataFrame()
    for value in result.values():
        if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
            return pd.DataFrame([{k: _cell(v) for k, v in item.items()} for item in value])
    if isinstance(result.get("row"), dict):
        return pd.DataFrame([{k: _cell(v) for k, v in result["row"].items()}])
    scalars = {k: _cell(v) for k, v in result.items() if k not in ("method", "arguments")}
    return pd.DataFrame({"field": list(scalars), "value": [str(v) for v in scalars.values()]})


# --- payload builder ----------------------------------------------------------------------------------

def empty_payload() -> pd.DataFrame:
    return pd.DataFrame(columns=list(SUBMISSION_COLUMNS))


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and pd.isna(value)) or (isinstance(value, str)
                                                                             and not value.strip())


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
            with contextlib.suppress(TypeError, ValueError):
                row[column] = float(row[column])
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
            rows.append({c: row.get(c) for c in SUBMISSION_COLUMNS})
    return pd.DataFrame(rows, columns=list(SUBMISSION_COLUMNS))


def breakdown_table(observation: MetricTrackerRlObservation) -> pd.DataFrame:
    """Reward components of the latest graded submission, one per line."""
    breakdown = observation.reward_breakdown
    if breakdown is None:
        return pd.DataFrame(columns=["component", "value"])
    items = breakdown.model_dump()
    return pd.DataFrame({"component": list(items), "value": [round(float(v), 4) for v in items.values()]})


def issues_table(issues: list[Any]) -> pd.DataFrame:
    """Submission or preview issues (models or dicts) as a table."""
    records = [i.model_dump() if hasattr(i, "model_dump") else dict(i) for i in issues]
    return pd.DataFrame(records, columns=["row_index", "code", "message"])


# --- chart data ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Mark:
    """A date to highlight on the charts; `entity_name` None marks every panel."""

    date: str
    label: str
    entity_name: str | None = None
    truth: bool = False


@dataclass
class ChartData:
    """Everything the charts draw, read once per reset from public tools."""

    daily: pd.DataFrame
    hourly: dict[str, pd.DataFrame] = field(default_factory=dict)
    annotations: list[dict[str, Any]] = field(default_factory=list)

    @property
    def dates(self) -> list[str]:
        return list(self.daily["date"]) if "date" in self.daily else []


def daily_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """show_raw_data rows as a frame indexed in date order."""
    return pd.DataFrame(rows).sort_values("date").reset_index(drop=True) if rows else pd.DataFrame()


def marks_for(annotations: list[dict[str, Any]], debug: dict[str, Any] | None) -> list[Mark]:
    """Public calendar notes mark every panel; in debug mode each expected row also marks its own entity."""
    marks = [Mark(a["date"], str(a.get("kind", "note"))) for a in annotations if a.get("date")]
    for row in (debug or {}).get("expected_rows", []):
        marks.append(Mark(row["date"], row["anomaly_type"], row["entity_name"], truth=True))
    return marks


def expected_rows_table(debug: dict[str, Any] | None) -> pd.DataFrame:
    """The ground truth of a debug-mode episode: expected rows with the injection that caused each."""
    if not debug:
        return pd.DataFrame(columns=list(SUBMISSION_COLUMNS))
    return pd.DataFrame(debug.get("expected_rows", []), columns=list(SUBMISSION_COLUMNS))


def hourly_matrix(hourly: dict[str, pd.DataFrame], column: str, normalise: bool = True) -> pd.DataFrame:
    """Hour-of-day x date matrix of one event; normalised to each date's share so mix shifts stand out."""
    if not hourly:
        return pd.DataFrame()
    matrix = pd.DataFrame({date: frame.set_index("hour")[column] for date, frame in sorted(hourly.items())})
    matrix = matrix.astype(float)
    if normalise:
        totals = matrix.sum(axis=0).replace(0.0, float("nan"))
        matrix = matrix.div(totals, axis=1)
    return matrix


def funnel_comparison(daily: pd.DataFrame, date: str) -> pd.DataFrame:
    """Counts of each funnel event on `date` beside the median day, and each as a share of app opens."""
    if daily.empty or date not in set(daily["date"]):
        return pd.DataFrame(columns=["event", "date_count", "median_count", "date_share", "median_share"])
    day = daily.loc[daily["date"] == date, list(COUNT_COLUMNS)].iloc[0].astype(float)
    median = daily[list(COUNT_COLUMNS)].astype(float).median()
    return pd.DataFrame({
        "event": list(COUNT_COLUMNS),
        "date_count": day.values,
        "median_count": median.values,
        "date_share": (day / day.iloc[0]).values if day.iloc[0] else [float("nan")] * len(day),
        "median_share": (median / median.iloc[0]).values,
    })


# --- figures ------------------------------------------------------------------------------------------

def _draw_marks(axis: Any, dates: list[str], marks: list[Mark], column: str | None) -> None:
    position = {d: i for i, d in enumerate(dates)}
    for mark in marks:
        if mark.date not in position or (mark.entity_name is not None and mark.entity_name != column):
            continue
        x = position[mark.date]
        color = TRUTH_COLOR if mark.truth else ANNOTATION_COLOR
        axis.axvspan(x - 0.5, x + 0.5, color=color, alpha=0.25 if mark.truth else 0.15, lw=0)
        if mark.truth:
            axis.annotate(mark.label, (x, 0.97), xycoords=("data", "axes fraction"), fontsize=6, color=color,
                          ha="right", va="top", bbox={"facecolor": "white", "alpha": 0.8, "lw": 0, "pad": 1})


def small_multiples_figure(daily: pd.DataFrame, columns: tuple[str, ...], title: str,
                           marks: list[Mark]) -> Figure:
    """One small line chart per column over the window, marks shaded behind the lines."""
    ncols = 4 if len(columns) > 5 else len(columns)
    nrows = -(-len(columns) // ncols)
    figure = Figure(figsize=(3.2 * ncols, 2.3 * nrows), layout="constrained")
    figure.suptitle(title, fontsize=10)
    axes = figure.subplots(nrows, ncols, squeeze=False)
    dates = list(daily["date"]) if not daily.empty else []
    ticks = list(range(0, len(dates), 7))
    for axis, column in zip(axes.flat, columns, strict=False):
        if column in daily:
            axis.plot(range(len(dates)), daily[column].astype(float), color=LINE_COLOR, lw=1.3, marker=".", ms=3)
        _draw_marks(axis, dates, marks, column)
        axis.set_title(column, fontsize=8)
        axis.set_xticks(ticks, [dates[i][5:] for i in ticks])
        axis.tick_params(labelsize=7)
        axis.grid(alpha=0.3)
    for axis in list(axes.flat)[len(columns):]:
        axis.set_visible(False)
    return figure


def daily_counts_figure(data: ChartData, marks: list[Mark]) -> Figure:
    return small_multiples_figure(data.daily, COUNT_COLUMNS, "Daily event counts", marks)


def conversion_figure(data: ChartData, marks: list[Mark]) -> Figure:
    return small_multiples_figure(data.daily, CONVERSION_METRIC_NAMES, "Daily conversion rates", marks)


def hourly_heatmap_figure(data: ChartData, column: str, marks: list[Mark]) -> Figure:
    """Share of the day's events in each hour, per date; a shifted mix shows as a column out of pattern."""
    matrix = hourly_matrix(data.hourly, column)
    figure = Figure(figsize=(7.5, 3.6), layout="constrained")
    axis = figure.subplots()
    axis.set_title(f"Hour-of-day share of {column}", fontsize=10)
    if not matrix.empty:
        image = axis.imshow(matrix.values, aspect="auto", origin="lower", cmap="viridis", interpolation="nearest")
        figure.colorbar(image, ax=axis, fraction=0.04)
        dates = list(matrix.columns)
        ticks = list(range(0, len(dates), 7))
        axis.set_xticks(ticks, [dates[i][5:] for i in ticks])
        position = {d: i for i, d in enumerate(dates)}
        for mark in marks:
            if mark.date in position and (mark.entity_name is None or mark.entity_name == column):
                color = TRUTH_COLOR if mark.truth else "white"
                axis.axvline(position[mark.date] - 0.5, color=color, lw=1)
                axis.axvline(position[mark.date] + 0.5, color=color, lw=1)
    axis.set_ylabel("hour")
    axis.tick_params(labelsize=7)
    return figure


def funnel_figure(data: ChartData, date: str) -> Figure:
    """Each funnel event as a share of app opens on `date` beside the median day."""
    comparison = funnel_comparison(data.daily, date)
    figure = Figure(figsize=(5.5, 3.6), layout="constrained")
    axis = figure.subplots()
    axis.set_title(f"Funnel shape on {date} vs the median day", fontsize=10)
    positions = range(len(comparison))
    axis.bar([p - 0.2 for p in positions], comparison["median_share"], width=0.4, color=ANNOTATION_COLOR,
             label="median day")
    axis.bar([p + 0.2 for p in positions], comparison["date_share"], width=0.4, color=LINE_COLOR, label=date)
    axis.set_xticks(list(positions), [e.replace("_", "\n") for e in comparison["event"]])
    axis.set_ylabel("share of app opens")
    axis.tick_params(labelsize=7)
    axis.legend(fontsize=7)
    return figure
