"""The web debugger's charts: the episode's data as inline SVG figures (daily counts, conversion, the hourly
heatmap, one date's funnel), with the calendar notes and, in debug mode, the truth marked on them.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from metric_tracker_rl.analysis_tools.registry import MAX_PAGE_ROWS
from metric_tracker_rl.catalog.published import CONVERSION_METRIC_NAMES, CONVERSION_METRICS, COUNT_COLUMNS
from metric_tracker_rl.models import MetricTrackerRlAction, MetricTrackerRlObservation
from metric_tracker_rl.serving.debugger.forms import (
    ANNOTATION_COLOR,
    LINE_COLOR,
    SUBMISSION_COLUMNS,
    TRUTH_COLOR,
    format_number,
    rounded,
)
from metric_tracker_rl.serving.debugger.images import hex_rgb, png_bytes

# --- chart data ---------------------------------------------------------------------------------------

CHART_PAGE_DAYS = 28  # show_raw_data's largest page; the charts read every page of the window


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
    dashboard: bool = False  # the numbers are the dashboard's (a tier of raw events), data defects included

    @property
    def source(self) -> str:
        """What a chart's title adds about its numbers: at a tier of raw events, that they are the dashboard's as
        recorded, so a data defect moves them as much as a business incident."""
        return DASHBOARD_SOURCE if self.dashboard else ""

    @property
    def dates(self) -> list[str]:
        return list(self.daily["date"]) if "date" in self.daily else []


def daily_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """show_raw_data rows as a frame indexed in date order."""
    return pd.DataFrame(rows).sort_values("date").reset_index(drop=True) if rows else pd.DataFrame()


# At a tier of raw events (the warehouse: no count tables, no calendar notes), the charts' daily counts are the
# dashboard's (its sessions reaching each step, named as the count tables name them), the rates their ratios, and the
# marks each release's first rollout date; the hours are not charted.
_DASHBOARD_COUNTS = dict(
    zip(
        COUNT_COLUMNS, ("sessions", "menu_sessions", "cart_sessions", "order_sessions", "payment_sessions"), strict=True
    )
)
DASHBOARD_DAILY_SQL = (
    "WITH d AS (SELECT CAST(date AS VARCHAR) AS date, "
    + ", ".join(f"sum({column}) AS {count}" for count, column in _DASHBOARD_COUNTS.items())
    + " FROM dashboard GROUP BY date) SELECT *, "
    + ", ".join(f"{m.numerator} / nullif({m.denominator}, 0) AS {m.name}" for m in CONVERSION_METRICS)
    + " FROM d ORDER BY date"
)
DASHBOARD_SOURCE = " on the dashboard, as recorded (data defects included)"
RELEASE_MARKS_SQL = (
    "SELECT CAST(min(rollout_start) AS VARCHAR) AS date, 'release' AS kind, platform || ' ' || "
    "app_version || ' starts its staged rollout' AS note FROM releases GROUP BY platform, app_version "
    "ORDER BY date"
)


def read_chart_data(
    step: Callable[[MetricTrackerRlAction], MetricTrackerRlObservation], holds_counts: bool = True
) -> ChartData:
    """The whole window's daily rows (every page), annotations and each day's hours, read with public tools; where
    the episode holds no count tables (`holds_counts` false: raw events), the dashboard's daily rows and the
    releases, read with the query tool."""

    def tool(name: str, **arguments: Any) -> dict[str, Any]:
        observation = step(MetricTrackerRlAction(analysis_method=name, analysis_args=arguments))
        if observation.status != "ok" or observation.analysis_result is None:
            raise RuntimeError(f"{name} failed: {observation.message}")
        return observation.analysis_result

    def query(sql: str) -> list[dict[str, Any]]:  # every page
        rows: list[dict[str, Any]] = []
        offset: int | None = 0
        while offset is not None:
            result = tool("query", sql=sql, limit=MAX_PAGE_ROWS, offset=offset)
            rows += result["rows"]
            offset = result.get("next_offset")
        return rows

    if not holds_counts:
        return ChartData(
            daily=daily_frame(query(DASHBOARD_DAILY_SQL)), annotations=query(RELEASE_MARKS_SQL), dashboard=True
        )
    first = tool("show_raw_data", limit=CHART_PAGE_DAYS)
    rows = list(first["rows"])
    while len(rows) < first["total_rows"]:  # a longer window (frontier: eight weeks) takes more pages
        rows += tool("show_raw_data", limit=CHART_PAGE_DAYS, offset=len(rows))["rows"]
    daily = daily_frame(rows)
    annotations = tool("get_annotations")["annotations"]
    hourly = {date: tool("hourly_rows_for_date", date=date)["rows"] for date in daily["date"]}
    return ChartData(daily=daily, hourly=hourly, annotations=annotations)


def marks_for(annotations: list[dict[str, Any]], debug: dict[str, Any] | None) -> list[Mark]:
    """Public calendar notes mark every panel; in debug mode each expected row also marks its own entity."""
    marks = [
        Mark(a["date"], str(a.get("kind", "note")), note=str(a.get("note", ""))) for a in annotations if a.get("date")
    ]
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
    return pd.DataFrame(
        {
            "event": list(COUNT_COLUMNS),
            "date_count": day.values,
            "median_count": median.values,
            "date_share": (day / day.iloc[0]).values if day.iloc[0] else [float("nan")] * len(day),
            "median_share": (median / median.iloc[0]).values,
        }
    )


# --- charts: inline SVG ---------------------------------------------------------------------------------
# Hand-built SVG instead of rendered images: a whole reset's charts are a few tens of KB of text, built in
# milliseconds, sharp at any zoom, and each point and band carries a hover title.

VIRIDIS = ("#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725")
PANEL_WIDTH, PANEL_HEIGHT = 320, 180
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 46, 8, 26, 22


def _text(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _scale(value: float, low: float, high: float, start: float, end: float) -> float:
    return start if high == low else start + (value - low) / (high - low) * (end - start)


def _marks_on(marks: list[Mark], dates: list[str], column: str | None) -> list[tuple[int, Mark]]:
    """The marks that belong on a chart of `column` (None: a chart of every entity), with their date index."""
    position = {d: i for i, d in enumerate(dates)}
    return [
        (position[m.date], m)
        for m in marks
        if m.date in position and (m.entity_name is None or column is None or m.entity_name == column)
    ]


def _mark_svg(index: int, mark: Mark, x_of: Callable[[float], float], top: float, bottom: float) -> str:
    """A shaded band over the mark's date with its label written up the band."""
    left, right = x_of(index - 0.5), x_of(index + 0.5)
    color = TRUTH_COLOR if mark.truth else ANNOTATION_COLOR
    kind = "mark truth" if mark.truth else "mark"
    tip = f"{mark.date} {mark.label}" + (f": {mark.note}" if mark.note else "")
    label_x = (left + right) / 2 + 3
    return (
        f'<g class="{kind}" data-date="{_text(mark.date)}"><title>{_text(tip)}</title>'
        f'<rect x="{left:.1f}" y="{top:.1f}" width="{right - left:.1f}" height="{bottom - top:.1f}" '
        f'fill="{color}" fill-opacity="{0.28 if mark.truth else 0.18}"/>'
        f'<text class="mark-label" x="{label_x:.1f}" y="{top + 2:.1f}" font-size="8" fill="{color}" '
        f'transform="rotate(90 {label_x:.1f} {top + 2:.1f})">{_text(mark.label)}</text></g>'
    )


def _date_ticks(dates: list[str], x_of: Callable[[float], float], y: float, size: int = 9) -> str:
    return "".join(
        f'<text x="{x_of(i):.1f}" y="{y:.1f}" font-size="{size}" text-anchor="middle" fill="#57606a">'
        f"{_text(dates[i][5:])}</text>"
        for i in range(0, len(dates), 7)
    )


@dataclass(frozen=True)
class _Frame:
    """A line panel's plot area: the x of a date's index and the y of a value, with a padded value range."""

    dates: int
    left: float
    right: float
    low: float
    high: float
    pad: float
    top: float = PLOT_TOP
    bottom: float = PANEL_HEIGHT - PLOT_BOTTOM

    @classmethod
    def of(cls, dates: int, values: list[float], width: int) -> _Frame:
        finite = [v for v in values if math.isfinite(v)]
        low, high = (min(finite), max(finite)) if finite else (0.0, 1.0)
        pad = (high - low) * 0.08 or abs(high) * 0.05 or 1.0
        return cls(dates, PLOT_LEFT, width - PLOT_RIGHT, low - pad, high + pad, pad)

    def x_of(self, i: float) -> float:
        return _scale(i, -0.5, self.dates - 0.5, self.left, self.right)

    def y_of(self, v: float) -> float:
        return _scale(v, self.low, self.high, self.bottom, self.top)

    def axes(self, dates: list[str], marks: list[tuple[int, Mark]]) -> list[str]:
        """The frame, the marks' bands and the y axis's two labels (the data's min and max)."""
        parts = [
            f'<rect x="{self.left}" y="{self.top}" width="{self.right - self.left}" '
            f'height="{self.bottom - self.top}" fill="none" stroke="#d0d7de"/>'
        ]
        parts += [_mark_svg(i, m, self.x_of, self.top, self.bottom) for i, m in marks]
        for value in (self.high - self.pad, self.low + self.pad):
            parts.append(
                f'<text x="{self.left - 4}" y="{self.y_of(value) + 3:.1f}" font-size="9" '
                f'text-anchor="end" fill="#57606a">{_text(format_number(value))}</text>'
            )
        return parts


def line_panel_svg(dates: list[str], values: list[float], column: str, marks: list[Mark]) -> str:
    """One metric over the window: a line with a dot per day, min/max on the y axis, marks as labelled bands."""
    frame = _Frame.of(len(dates), values, PANEL_WIDTH)
    parts = [
        f'<svg class="panel" data-column="{_text(column)}" viewBox="0 0 {PANEL_WIDTH} {PANEL_HEIGHT}" '
        f'role="img" aria-label="{_text(column)} per day">',
        f'<text x="{frame.left}" y="14" font-size="11" font-weight="600" fill="#24292f">{_text(column)}</text>',
        *frame.axes(dates, _marks_on(marks, dates, column)),
    ]
    points = [(frame.x_of(i), frame.y_of(v), dates[i], v) for i, v in enumerate(values) if math.isfinite(v)]
    if points:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{LINE_COLOR}" stroke-width="1.6"/>')
        parts += [
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.2" fill="{LINE_COLOR}"><title>{_text(d)}: '
            f"{_text(format_number(v))}</title></circle>"
            for x, y, d, v in points
        ]
    parts.append(_date_ticks(dates, frame.x_of, PANEL_HEIGHT - 6))
    parts.append("</svg>")
    return "".join(parts)


BASELINE_COLOR = "#57606a"
WIDE_PANEL_WIDTH = 720


def baseline_chart_svg(
    dates: list[str],
    values: list[float],
    baseline: list[float],
    column: str,
    title: str,
    marks: list[Mark],
    reset_count: int,
) -> str:
    """One metric over the window (a line with a dot per day) against its baseline (dashed), on one wide panel:
    the debugger's cuboid chart. Marks are drawn as on every other chart."""
    frame = _Frame.of(len(dates), [*values, *baseline], WIDE_PANEL_WIDTH)
    parts = [
        f'<svg class="panel" data-column="{_text(column)}" viewBox="0 0 {WIDE_PANEL_WIDTH} {PANEL_HEIGHT}" '
        f'role="img" aria-label="{_text(title)}">',
        *frame.axes(dates, _marks_on(marks, dates, None)),
    ]
    expected = [(frame.x_of(i), frame.y_of(v)) for i, v in enumerate(baseline) if math.isfinite(v)]
    if expected:
        parts.append(
            f'<polyline class="baseline" points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in expected)}" '
            f'fill="none" stroke="{BASELINE_COLOR}" stroke-width="1.2" stroke-dasharray="4 3"/>'
        )
    points = [
        (frame.x_of(i), frame.y_of(v), dates[i], v, baseline[i]) for i, v in enumerate(values) if math.isfinite(v)
    ]
    if points:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _, _ in points)
        parts.append(
            f'<polyline class="observed" points="{path}" fill="none" stroke="{LINE_COLOR}" stroke-width="1.6"/>'
        )
        parts += [
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.4" fill="{LINE_COLOR}"><title>{_text(d)}: '
            f"{_text(format_number(v))} (baseline {_text(format_number(b))})</title></circle>"
            for x, y, d, v, b in points
        ]
    parts.append(_date_ticks(dates, frame.x_of, PANEL_HEIGHT - 6))
    parts.append("</svg>")
    legend = (
        f'<div class="mt-legend"><span style="color:{LINE_COLOR}">━ the cuboid</span> · '
        f'<span style="color:{BASELINE_COLOR}">╌ its same-weekday baseline</span></div>'
    )
    return _chart("cuboid", title, "".join(parts) + legend, reset_count)


def _chart(kind: str, title: str, body: str, reset_count: int) -> str:
    return (
        f'<div class="mt-chart" data-chart="{kind}" data-reset="{reset_count}">'
        f'<div class="mt-chart-title">{_text(title)}</div>{body}</div>'
    )


def small_multiples_svg(
    daily: pd.DataFrame, columns: tuple[str, ...], title: str, marks: list[Mark], reset_count: int
) -> str:
    """One small line chart per column, in a grid that wraps with the page's width."""
    dates = [str(d) for d in daily["date"]] if "date" in daily else []
    panels = "".join(
        line_panel_svg(dates, [float(v) for v in daily[c]] if c in daily else [], c, marks) for c in columns
    )
    return _chart("lines", title, f'<div class="mt-grid">{panels}</div>', reset_count)


def daily_counts_svg(data: ChartData, marks: list[Mark], reset_count: int) -> str:
    return small_multiples_svg(data.daily, COUNT_COLUMNS, f"Daily event counts{data.source}", marks, reset_count)


def conversion_svg(data: ChartData, marks: list[Mark], reset_count: int) -> str:
    return small_multiples_svg(
        data.daily, CONVERSION_METRIC_NAMES, f"Daily conversion rates{data.source}", marks, reset_count
    )


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
    pixels = [
        [
            hex_rgb(_viridis(_scale(share, low, high, 0.0, 0.999)) if math.isfinite(share) else "#eaeef2")
            for share in row
        ]
        for row in values[::-1].tolist()
    ]
    image = base64.b64encode(png_bytes(pixels)).decode()
    parts = [
        f'<svg class="heatmap" data-column="{_text(column)}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{_text(title)}">',
        f'<image class="cells" href="data:image/png;base64,{image}" x="{left}" y="{top}" '
        f'width="{right - left}" height="{height - bottom - top}" preserveAspectRatio="none" '
        f'style="image-rendering: pixelated"/>',
    ]
    for hour in range(0, 24, 6):
        parts.append(
            f'<text x="{left - 4}" y="{y_of(hour) + 3:.1f}" font-size="12" text-anchor="end" '
            f'fill="#57606a">{hour:02d}h</text>'
        )
    for i, mark in _marks_on(marks, dates, column):
        color = TRUTH_COLOR if mark.truth else "#24292f"
        x0, x1 = x_of(i - 0.5), x_of(i + 0.5)
        tip = f"{mark.date} {mark.label}" + (f": {mark.note}" if mark.note else "")
        parts.append(
            f'<g class="{"mark truth" if mark.truth else "mark"}" data-date="{_text(mark.date)}">'
            f"<title>{_text(tip)}</title>"
            f'<rect x="{x0:.1f}" y="{top:.1f}" width="{x1 - x0:.1f}" height="{height - bottom - top:.1f}" '
            f'fill="none" stroke="{color}" stroke-width="1.5"/>'
            f'<text class="mark-label" x="{(x0 + x1) / 2:.1f}" y="{top - 4:.1f}" font-size="11" '
            f'fill="{color}" transform="rotate(-60 {(x0 + x1) / 2:.1f} {top - 4:.1f})">'
            f"{_text(mark.label)}</text></g>"
        )
    parts.append(_date_ticks(dates, x_of, height - 6, size=12))
    parts.append("</svg>")
    legend = (
        f'<div class="mt-legend">share of the day: <span style="color:{VIRIDIS[0]}">■</span> '
        f'{_text(format_number(low * 100))}% … <span style="color:{VIRIDIS[-1]}">■</span> '
        f"{_text(format_number(high * 100))}%</div>"
    )
    return _chart("heatmap", title, "".join(parts) + legend, reset_count)


def funnel_svg(data: ChartData, date: str, marks: list[Mark], reset_count: int) -> str:
    """Each funnel event as a share of app opens on `date` beside the median day; the date's marks are named."""
    comparison = funnel_comparison(data.daily, date)
    width, height, left, top, bottom = 480, 360, 48, 48, 56
    right = width - 10
    notes = [m for _, m in _marks_on(marks, [date], None)]
    title = f"Funnel shape on {date} vs the median day{data.source}"
    parts = [f'<svg class="funnel" viewBox="0 0 {width} {height}" role="img" aria-label="{_text(title)}">']
    for n, mark in enumerate(notes):
        color = TRUTH_COLOR if mark.truth else "#57606a"
        parts.append(
            f'<text class="mark-label" x="{left}" y="{14 + 14 * n}" font-size="12" fill="{color}">'
            f"{_text(mark.date)}: {_text(mark.label)}"
            f"{' (' + _text(mark.entity_name) + ')' if mark.entity_name else ''}</text>"
        )
    median_shares = comparison["median_share"].to_numpy(dtype=float)
    date_shares = comparison["date_share"].to_numpy(dtype=float)
    highest = max([1.0, *[float(v) for v in date_shares if math.isfinite(v)]])

    def y_of(share: float) -> float:
        return _scale(share, 0.0, highest, height - bottom, top)

    slot = (right - left) / max(1, len(comparison))
    for i, row in enumerate(comparison.itertuples()):
        for offset, share, color, who in (
            (0.12, median_shares[i], ANNOTATION_COLOR, "median day"),
            (0.5, date_shares[i], LINE_COLOR, date),
        ):
            if not math.isfinite(float(share)):
                continue
            x = left + slot * i + slot * offset
            y = y_of(float(share))
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{slot * 0.38:.1f}" '
                f'height="{height - bottom - y:.1f}" fill="{color}"><title>{_text(row.event)} on '
                f"{_text(who)}: {_text(format_number(float(share)))} of app opens</title></rect>"
            )
        label_x = left + slot * (i + 0.5)
        for line, word in enumerate(str(row.event).replace("_", " ").split(" ", 1)):
            parts.append(
                f'<text x="{label_x:.1f}" y="{height - bottom + 16 + 14 * line}" font-size="12" '
                f'text-anchor="middle" fill="#57606a">{_text(word)}</text>'
            )
    for share in (0.0, highest / 2, highest):
        parts.append(
            f'<text x="{left - 4}" y="{y_of(share) + 3:.1f}" font-size="12" text-anchor="end" '
            f'fill="#57606a">{_text(format_number(share))}</text>'
        )
    parts.append("</svg>")
    legend = (
        f'<div class="mt-legend"><span style="color:{ANNOTATION_COLOR}">■</span> median day '
        f'<span style="color:{LINE_COLOR}">■</span> {_text(date)} (share of app opens)</div>'
    )
    return _chart("funnel", title, "".join(parts) + legend, reset_count)
