"""The dial grid as a line plot (docs/images/dial_grid.svg): one line per agent, its mean score at each point of the
dial, with the deep expert's target and the dilution share, drawn from the kept artifact by benchmarks/dial_grid.py
(`--plot`). Hand-built SVG, as the debugger's charts are: a few KB of text, sharp at any zoom, every point with a
hover title, and no plotting library to install.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from metric_tracker_rl.serving.debugger_forms import ANNOTATION_COLOR, TRUTH_COLOR

# The deep expert's target mean over a sweep (docs/calibration.md): the line every deep point is read against.
EXPERT_TARGET = 0.90
AGENT_COLORS = ("#1a7f37", "#0969da", "#bf8700", "#8250df", "#e16f24", "#57606a")
WIDTH, HEIGHT = 860, 420
LEFT, RIGHT, TOP, BOTTOM = 60, 620, 44, 300  # the plot area; the legend sits right of it, the point labels below
TEXT_COLOR, AXIS_COLOR, GRID_COLOR = "#24292f", "#57606a", "#d0d7de"
Y_TICKS = (0.0, 0.25, 0.5, 0.75, 1.0)
ValueOf = Callable[[dict[str, Any]], float | None]  # a series' value at a point, None where it has none


def _escaped(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _x_of(index: int, count: int) -> float:
    """The centre of a point's slot: the points are evenly spaced across the plot area."""
    return LEFT + (index + 0.5) * (RIGHT - LEFT) / count


def _y_of(score: float) -> float:
    return BOTTOM - score * (BOTTOM - TOP)


def _runs(points: list[dict[str, Any]], value_of: ValueOf) -> list[list[tuple[int, float]]]:
    """Each unbroken run of (index, value): a line never joins two tiers, nor crosses a point without a value."""
    runs: list[list[tuple[int, float]]] = []
    previous = None
    for index, point in enumerate(points):
        value = value_of(point)
        if value is None:
            previous = None
            continue
        if previous is None or points[previous]["difficulty"] != point["difficulty"]:
            runs.append([])
        runs[-1].append((index, value))
        previous = index
    return runs


def _series_svg(points: list[dict[str, Any]], value_of: ValueOf, name: str, color: str, dash: str = "") -> list[str]:
    """One series: its lines (per run) and a dot with a hover title at every point that has a value."""
    count = len(points)
    style = f' stroke-dasharray="{dash}"' if dash else ""
    parts = []
    for run in _runs(points, value_of):
        path = " ".join(f"{_x_of(i, count):.1f},{_y_of(v):.1f}" for i, v in run)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"{style}/>')
        parts += [f'<circle cx="{_x_of(i, count):.1f}" cy="{_y_of(v):.1f}" r="3.2" fill="{color}"><title>'
                  f'{_escaped(name)} at {_escaped(points[i]["label"])}: {v:.3f}</title></circle>' for i, v in run]
    return parts


def _axes_svg(points: list[dict[str, Any]]) -> list[str]:
    """The frame, the score grid and its labels, each point's label, the axis titles and the tiers' divider."""
    count = len(points)
    parts = [f'<rect x="{LEFT}" y="{TOP}" width="{RIGHT - LEFT}" height="{BOTTOM - TOP}" fill="none" '
             f'stroke="{GRID_COLOR}"/>']
    for score in Y_TICKS:
        y = _y_of(score)
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{RIGHT}" y2="{y:.1f}" stroke="{GRID_COLOR}"/>'
                     f'<text x="{LEFT - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" '
                     f'fill="{AXIS_COLOR}">{score:.2f}</text>')
    for index, point in enumerate(points):
        x = _x_of(index, count)
        parts.append(f'<text x="{x:.1f}" y="{BOTTOM + 14}" font-size="11" text-anchor="end" fill="{AXIS_COLOR}" '
                     f'transform="rotate(-30 {x:.1f} {BOTTOM + 14})">{_escaped(point["label"])}</text>')
    for index in range(1, count):
        if points[index]["difficulty"] != points[index - 1]["difficulty"]:
            x = (_x_of(index - 1, count) + _x_of(index, count)) / 2
            parts.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{BOTTOM}" stroke="{AXIS_COLOR}" '
                         f'stroke-dasharray="2 3"/>')
    parts.append(f'<text x="{(LEFT + RIGHT) / 2}" y="{HEIGHT - 8}" font-size="12" text-anchor="middle" '
                 f'fill="{TEXT_COLOR}">point of the dial (frontier\'s tier; deep, one knob turned from its '
                 'defaults)</text>')
    middle = (TOP + BOTTOM) / 2
    parts.append(f'<text x="16" y="{middle}" font-size="12" text-anchor="middle" fill="{TEXT_COLOR}" '
                 f'transform="rotate(-90 16 {middle})">mean score (episodes with an incident)</text>')
    return parts


def _legend_svg(entries: list[tuple[str, str, str]]) -> list[str]:
    """(name, colour, dash) per entry: a short line of the series' style beside its name."""
    parts = []
    for number, (name, color, dash) in enumerate(entries):
        y = TOP + 8 + 20 * number
        style = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(f'<line x1="{RIGHT + 16}" y1="{y}" x2="{RIGHT + 40}" y2="{y}" stroke="{color}" '
                     f'stroke-width="2"{style}/><text x="{RIGHT + 46}" y="{y + 4}" font-size="11" '
                     f'fill="{TEXT_COLOR}">{_escaped(name)}</text>')
    return parts


def dial_plot_svg(grid: dict[str, Any]) -> str:
    """The grid (dial_grid.run_grid's result) as one SVG: a line per agent over the points, the deep expert's
    target as a dashed line, the dilution share as a dotted one; frontier's point stands apart from deep's line."""
    points = grid["points"]
    agents = grid["agents"]
    title = f"The dial: each agent's mean score per point ({grid['seeds']} calibration seeds a point)"
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
             f'height="{HEIGHT}" role="img" aria-label="{_escaped(title)}" font-family="sans-serif">',
             f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
             f'<text x="{LEFT}" y="24" font-size="14" font-weight="600" fill="{TEXT_COLOR}">{_escaped(title)}</text>',
             *_axes_svg(points)]
    target = _y_of(EXPERT_TARGET)
    parts.append(f'<line x1="{LEFT}" y1="{target:.1f}" x2="{RIGHT}" y2="{target:.1f}" stroke="{TRUTH_COLOR}" '
                 'stroke-width="1.5" stroke-dasharray="6 4"/>')
    parts += _series_svg(points, lambda point: point["dilution"], "dilution share", ANNOTATION_COLOR, "2 3")
    colors = [AGENT_COLORS[number % len(AGENT_COLORS)] for number in range(len(agents))]
    for agent, color in zip(agents, colors, strict=True):
        parts += _series_svg(points, lambda point, agent=agent: point["scores"][agent], agent, color)
    entries = [(agent, color, "") for agent, color in zip(agents, colors, strict=True)]
    entries += [(f"the deep expert's target ({EXPERT_TARGET:.2f})", TRUTH_COLOR, "6 4"),
                ("dilution share (not a score)", ANNOTATION_COLOR, "2 3")]
    parts += _legend_svg(entries)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
