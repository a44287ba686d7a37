"""Pure formatting and chart functions of the web debugger: observations in, tables, text and figures out.

Nothing here talks to the server; `server/debugger.py` wires these functions to Gradio events.
"""

from __future__ import annotations

import base64
import contextlib
import html
import json
import math
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from metric_tracker_rl.catalog import CONVERSION_METRIC_NAMES, COUNT_COLUMNS
from metric_tracker_rl.models import ConversionMetricDefinition, MetricSubmissionRow, MetricTrackerRlObservation

SUBMISSION_COLUMNS: tuple[str, ...] = tuple(MetricSubmissionRow.model_fields)
NUMERIC_SUBMISSION_COLUMNS = ("baseline_value", "observed_value", "delta_value")
DEFAULT_CHOICE = "(default)"
# Every column fits a 1400 px window (long names wrap); narrower, the table scrolls with the key columns pinned.
PAYLOAD_COLUMN_WIDTHS = ["92px", "118px", "168px", "150px", "150px", "105px", "105px", "92px", "70px"]
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


def status_markdown(observation: MetricTrackerRlObservation | None, config: dict[str, Any],
                    error: str | None = None, heading: str = "error") -> str:
    """One glance at the episode: status, message, its config (from the reset), budgets and the latest score.
    A page-side `error` (bad JSON, a lost session) replaces the first line and keeps the episode's lines."""
    if observation is None:
        return f"**{heading}** — {error}" if error else "No episode: press Reset."
    setting = ", ".join(f"{k}={config[k]}" for k in ("task_id", "seed", "scenario_family", "difficulty",
                                                       "anomaly_density", "anomaly_count")
                        if config.get(k) is not None)
    lines = [f"**{heading}** — {error}" if error else f"**{observation.status}** — {observation.message}"]
    if setting:
        lines.append(f"Episode: {setting}")
    lines.append(f"Steps left: {observation.steps_remaining} · submissions left: "
                 f"{observation.submissions_remaining}" + (" · **episode over**" if observation.done else ""))
    if observation.reward_breakdown is not None:
        lines.append(f"Last score: **{observation.reward_breakdown.score:.4f}**")
    return "\n\n".join(lines)


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


EMPTY_REPORT_WARNING = ("The payload is empty: submitting it grades an empty report (score 0) and uses a graded "
                        "submission. Press **Submit the empty report** to do it anyway, or add rows first.")


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
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the arguments are not valid JSON: {exc.msg.lower()} at line {exc.lineno}, column "
                         f"{exc.colno}") from None
    if not isinstance(value, dict):
        raise ValueError("tool arguments must be a JSON object, e.g. {\"date\": \"2026-03-10\"}")
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


# --- chart data ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Mark:
    """A date to highlight on the charts; `entity_name` None marks every panel."""

    date: str
    label: str
    entity_name: str | None = None
    truth: bool = False
    note: str = ""


@dataclass
class ChartData:
    """Everything the charts draw, read once per reset from public tools."""

    daily: pd.DataFrame
    hourly: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # hourly rows per date
    annotations: list[dict[str, Any]] = field(default_factory=list)

    @property
    def dates(self) -> list[str]:
        return list(self.daily["date"]) if "date" in self.daily else []


def daily_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """show_raw_data rows as a frame indexed in date order."""
    return pd.DataFrame(rows).sort_values("date").reset_index(drop=True) if rows else pd.DataFrame()


def marks_for(annotations: list[dict[str, Any]], debug: dict[str, Any] | None) -> list[Mark]:
    """Public calendar notes mark every panel; in debug mode each expected row also marks its own entity."""
    marks = [Mark(a["date"], str(a.get("kind", "note")), note=str(a.get("note", ""))) for a in annotations
             if a.get("date")]
    for row in (debug or {}).get("expected_rows", []):
        marks.append(Mark(row["date"], row["anomaly_type"], row["entity_name"], truth=True))
    return marks


def expected_rows_table(debug: dict[str, Any] | None) -> pd.DataFrame:
    """The ground truth of a debug-mode episode: expected rows with the injection that caused each."""
    if not debug:
        return pd.DataFrame(columns=list(SUBMISSION_COLUMNS))
    return rounded(pd.DataFrame(debug.get("expected_rows", []), columns=list(SUBMISSION_COLUMNS)))


def hourly_matrix(hourly: dict[str, list[dict[str, Any]]], column: str, normalise: bool = True) -> pd.DataFrame:
    """Hour-of-day x date matrix of one event; normalised to each date's share so mix shifts stand out."""
    if not hourly:
        return pd.DataFrame()
    dates = sorted(hourly)
    counts = np.full((24, len(dates)), np.nan)
    for j, date in enumerate(dates):
        for row in hourly[date]:
            counts[int(row["hour"]), j] = float(row[column])
    if normalise:
        totals = counts.sum(axis=0)
        counts = counts / np.where(totals == 0.0, np.nan, totals)
    return pd.DataFrame(counts, index=range(24), columns=dates)


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


# --- charts: inline SVG ---------------------------------------------------------------------------------
# Hand-built SVG instead of rendered images: a whole reset's charts are a few tens of KB of text, built in
# milliseconds, sharp at any zoom, and each point and band carries a hover title.

VIRIDIS = ("#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b",
           "#fde725")
PANEL_WIDTH, PANEL_HEIGHT = 320, 180
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 46, 8, 26, 22


def _text(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _scale(value: float, low: float, high: float, start: float, end: float) -> float:
    return start if high == low else start + (value - low) / (high - low) * (end - start)


def _marks_on(marks: list[Mark], dates: list[str], column: str | None) -> list[tuple[int, Mark]]:
    """The marks that belong on a chart of `column` (None: a chart of every entity), with their date index."""
    position = {d: i for i, d in enumerate(dates)}
    return [(position[m.date], m) for m in marks
            if m.date in position and (m.entity_name is None or column is None or m.entity_name == column)]


def _mark_svg(index: int, mark: Mark, x_of: Callable[[float], float], top: float, bottom: float) -> str:
    """A shaded band over the mark's date with its label written up the band."""
    left, right = x_of(index - 0.5), x_of(index + 0.5)
    color = TRUTH_COLOR if mark.truth else ANNOTATION_COLOR
    kind = "mark truth" if mark.truth else "mark"
    tip = f"{mark.date} {mark.label}" + (f": {mark.note}" if mark.note else "")
    label_x = (left + right) / 2 + 3
    return (f'<g class="{kind}" data-date="{_text(mark.date)}"><title>{_text(tip)}</title>'
            f'<rect x="{left:.1f}" y="{top:.1f}" width="{right - left:.1f}" height="{bottom - top:.1f}" '
            f'fill="{color}" fill-opacity="{0.28 if mark.truth else 0.18}"/>'
            f'<text class="mark-label" x="{label_x:.1f}" y="{top + 2:.1f}" font-size="8" fill="{color}" '
            f'transform="rotate(90 {label_x:.1f} {top + 2:.1f})">{_text(mark.label)}</text></g>')


def _date_ticks(dates: list[str], x_of: Callable[[float], float], y: float, size: int = 9) -> str:
    return "".join(f'<text x="{x_of(i):.1f}" y="{y:.1f}" font-size="{size}" text-anchor="middle" fill="#57606a">'
                   f'{_text(dates[i][5:])}</text>' for i in range(0, len(dates), 7))


def line_panel_svg(dates: list[str], values: list[float], column: str, marks: list[Mark]) -> str:
    """One metric over the window: a line with a dot per day, min/max on the y axis, marks as labelled bands."""
    left, right = PLOT_LEFT, PANEL_WIDTH - PLOT_RIGHT
    top, bottom = PLOT_TOP, PANEL_HEIGHT - PLOT_BOTTOM
    finite = [v for v in values if math.isfinite(v)]
    low, high = (min(finite), max(finite)) if finite else (0.0, 1.0)
    pad = (high - low) * 0.08 or abs(high) * 0.05 or 1.0
    low, high = low - pad, high + pad

    def x_of(i: float) -> float:
        return _scale(i, -0.5, len(dates) - 0.5, left, right)

    def y_of(v: float) -> float:
        return _scale(v, low, high, bottom, top)

    parts = [f'<svg class="panel" data-column="{_text(column)}" viewBox="0 0 {PANEL_WIDTH} {PANEL_HEIGHT}" '
             f'role="img" aria-label="{_text(column)} per day">',
             f'<text x="{left}" y="14" font-size="11" font-weight="600" fill="#24292f">{_text(column)}</text>',
             f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" fill="none" '
             f'stroke="#d0d7de"/>']
    parts += [_mark_svg(i, m, x_of, top, bottom) for i, m in _marks_on(marks, dates, column)]
    for value in (high - pad, low + pad):
        parts.append(f'<text x="{left - 4}" y="{y_of(value) + 3:.1f}" font-size="9" text-anchor="end" '
                     f'fill="#57606a">{_text(format_number(value))}</text>')
    points = [(x_of(i), y_of(v), dates[i], v) for i, v in enumerate(values) if math.isfinite(v)]
    if points:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{LINE_COLOR}" stroke-width="1.6"/>')
        parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.2" fill="{LINE_COLOR}"><title>{_text(d)}: '
                  f'{_text(format_number(v))}</title></circle>' for x, y, d, v in points]
    parts.append(_date_ticks(dates, x_of, PANEL_HEIGHT - 6))
    parts.append("</svg>")
    return "".join(parts)


def _chart(kind: str, title: str, body: str, reset_count: int) -> str:
    return (f'<div class="mt-chart" data-chart="{kind}" data-reset="{reset_count}">'
            f'<div class="mt-chart-title">{_text(title)}</div>{body}</div>')


def small_multiples_svg(daily: pd.DataFrame, columns: tuple[str, ...], title: str, marks: list[Mark],
                        reset_count: int) -> str:
    """One small line chart per column, in a grid that wraps with the page's width."""
    dates = [str(d) for d in daily["date"]] if "date" in daily else []
    panels = "".join(line_panel_svg(dates, [float(v) for v in daily[c]] if c in daily else [], c, marks)
                     for c in columns)
    return _chart("lines", title, f'<div class="mt-grid">{panels}</div>', reset_count)


def daily_counts_svg(data: ChartData, marks: list[Mark], reset_count: int) -> str:
    return small_multiples_svg(data.daily, COUNT_COLUMNS, "Daily event counts", marks, reset_count)


def conversion_svg(data: ChartData, marks: list[Mark], reset_count: int) -> str:
    return small_multiples_svg(data.daily, CONVERSION_METRIC_NAMES, "Daily conversion rates", marks, reset_count)


def _viridis(share: float) -> str:
    return VIRIDIS[min(len(VIRIDIS) - 1, max(0, int(share * len(VIRIDIS))))]


def hourly_heatmap_svg(data: ChartData, column: str, marks: list[Mark], reset_count: int) -> str:
    """Share of the day's events in each hour, per date; a shifted mix shows as a column out of pattern."""
    matrix = hourly_matrix(data.hourly, column)
    title = f"Hour-of-day share of {column}"
    if matrix.empty:
        return _chart("heatmap", title, "<p>No hourly data.</p>", reset_count)
    dates = [str(d) for d in matrix.columns]
    width, height, left, top, bottom = 640, 360, 40, 80, 26
    right = width - 10
    values = matrix.to_numpy()
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)

    def x_of(i: float) -> float:
        return _scale(i, -0.5, len(dates) - 0.5, left, right)

    def y_of(hour: float) -> float:
        return _scale(hour, -0.5, 23.5, height - bottom, top)

    # One pixel per hour and date, scaled up without smoothing: a single element for the browser to lay out.
    pixels = [[_hex_rgb(_viridis(_scale(share, low, high, 0.0, 0.999)) if math.isfinite(share) else "#eaeef2")
               for share in row] for row in values[::-1].tolist()]
    image = base64.b64encode(png_bytes(pixels)).decode()
    parts = [f'<svg class="heatmap" data-column="{_text(column)}" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{_text(title)}">',
             f'<image class="cells" href="data:image/png;base64,{image}" x="{left}" y="{top}" '
             f'width="{right - left}" height="{height - bottom - top}" preserveAspectRatio="none" '
             f'style="image-rendering: pixelated"/>']
    for hour in range(0, 24, 6):
        parts.append(f'<text x="{left - 4}" y="{y_of(hour) + 3:.1f}" font-size="12" text-anchor="end" '
                     f'fill="#57606a">{hour:02d}h</text>')
    for i, mark in _marks_on(marks, dates, column):
        color = TRUTH_COLOR if mark.truth else "#24292f"
        x0, x1 = x_of(i - 0.5), x_of(i + 0.5)
        tip = f"{mark.date} {mark.label}" + (f": {mark.note}" if mark.note else "")
        parts.append(f'<g class="{"mark truth" if mark.truth else "mark"}" data-date="{_text(mark.date)}">'
                     f'<title>{_text(tip)}</title>'
                     f'<rect x="{x0:.1f}" y="{top:.1f}" width="{x1 - x0:.1f}" height="{height - bottom - top:.1f}" '
                     f'fill="none" stroke="{color}" stroke-width="1.5"/>'
                     f'<text class="mark-label" x="{(x0 + x1) / 2:.1f}" y="{top - 4:.1f}" font-size="11" '
                     f'fill="{color}" transform="rotate(-60 {(x0 + x1) / 2:.1f} {top - 4:.1f})">'
                     f'{_text(mark.label)}</text></g>')
    parts.append(_date_ticks(dates, x_of, height - 6, size=12))
    parts.append("</svg>")
    legend = (f'<div class="mt-legend">share of the day: <span style="color:{VIRIDIS[0]}">■</span> '
              f'{_text(format_number(low * 100))}% … <span style="color:{VIRIDIS[-1]}">■</span> '
              f'{_text(format_number(high * 100))}%</div>')
    return _chart("heatmap", title, "".join(parts) + legend, reset_count)


def funnel_svg(data: ChartData, date: str, marks: list[Mark], reset_count: int) -> str:
    """Each funnel event as a share of app opens on `date` beside the median day; the date's marks are named."""
    comparison = funnel_comparison(data.daily, date)
    width, height, left, top, bottom = 480, 360, 48, 48, 56
    right = width - 10
    notes = [m for _, m in _marks_on(marks, [date], None)]
    title = f"Funnel shape on {date} vs the median day"
    parts = [f'<svg class="funnel" viewBox="0 0 {width} {height}" role="img" aria-label="{_text(title)}">']
    for n, mark in enumerate(notes):
        color = TRUTH_COLOR if mark.truth else "#57606a"
        parts.append(f'<text class="mark-label" x="{left}" y="{14 + 14 * n}" font-size="12" fill="{color}">'
                     f'{_text(mark.date)}: {_text(mark.label)}'
                     f'{" (" + _text(mark.entity_name) + ")" if mark.entity_name else ""}</text>')
    highest = max([1.0, *[float(v) for v in comparison["date_share"] if math.isfinite(float(v))]])

    def y_of(share: float) -> float:
        return _scale(share, 0.0, highest, height - bottom, top)

    slot = (right - left) / max(1, len(comparison))
    for i, row in enumerate(comparison.itertuples()):
        for offset, share, color, who in ((0.12, row.median_share, ANNOTATION_COLOR, "median day"),
                                          (0.5, row.date_share, LINE_COLOR, date)):
            if not math.isfinite(float(share)):
                continue
            x = left + slot * i + slot * offset
            y = y_of(float(share))
            parts.append(f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{slot * 0.38:.1f}" '
                         f'height="{height - bottom - y:.1f}" fill="{color}"><title>{_text(row.event)} on '
                         f'{_text(who)}: {_text(format_number(float(share)))} of app opens</title></rect>')
        label_x = left + slot * (i + 0.5)
        for line, word in enumerate(str(row.event).replace("_", " ").split(" ", 1)):
            parts.append(f'<text x="{label_x:.1f}" y="{height - bottom + 16 + 14 * line}" font-size="12" '
                         f'text-anchor="middle" fill="#57606a">{_text(word)}</text>')
    for share in (0.0, highest / 2, highest):
        parts.append(f'<text x="{left - 4}" y="{y_of(share) + 3:.1f}" font-size="12" text-anchor="end" '
                     f'fill="#57606a">{_text(format_number(share))}</text>')
    parts.append("</svg>")
    legend = (f'<div class="mt-legend"><span style="color:{ANNOTATION_COLOR}">■</span> median day '
              f'<span style="color:{LINE_COLOR}">■</span> {_text(date)} (share of app opens)</div>')
    return _chart("funnel", title, "".join(parts) + legend, reset_count)


def _hex_rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def png_bytes(pixels: list[list[tuple[int, ...]]]) -> bytes:
    """A PNG of rows of RGB or RGBA pixels (all rows alike), written with zlib alone."""
    channels = len(pixels[0][0])
    raw = b"".join(b"\x00" + bytes(channel for pixel in row for channel in pixel) for row in pixels)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", len(pixels[0]), len(pixels), 8, 6 if channels == 4 else 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b""))


# --- favicon ------------------------------------------------------------------------------------------

def favicon_ico(size: int = 32) -> bytes:
    """A small .ico (one PNG inside) of a rising green line on white: the tab's icon, drawn here so that no
    image file or outside request is needed."""
    points = [(3, 24), (10, 17), (16, 20), (22, 10), (29, 6)]
    pixels = [[(255, 255, 255, 0)] * size for _ in range(size)]
    for y in range(2, size - 2):
        for x in range(2, size - 2):
            pixels[y][x] = (255, 255, 255, 255)
    for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
        for step in range(64):
            x = x0 + (x1 - x0) * step / 63
            y = y0 + (y1 - y0) * step / 63
            for dx in (-1, 0, 1):
                for dy in (-1, 0, 1):
                    pixels[round(y) + dy][round(x) + dx] = (26, 127, 55, 255)
    png = png_bytes(pixels)
    header = struct.pack("<HHH", 0, 1, 1)
    entry = struct.pack("<BBBBHHII", size, size, 0, 0, 1, 32, len(png), len(header) + 16)
    return header + entry + png
