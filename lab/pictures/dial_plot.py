"""The dial grid as a line plot (docs/images/dial_grid.svg): one line per agent, its mean score at each point of the
dial, one panel a tier, with the expert's target, the scan analyst's score at deep's defaults (the line every point
of a harder rung is read against) and the dilution share, drawn from the kept artifact by lab/calibration/dial_grid.py
(`--plot`). Hand-built SVG, as the debugger's charts are: a few KB of text, sharp at any zoom, every point with a
hover title, and no plotting library to install.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from metric_tracker_rl.serving.debugger.forms import ANNOTATION_COLOR, TRUTH_COLOR

# The expert's target mean over a sweep of a cuboid tier (lab/docs/calibration.md): the line its points are read
# against.
EXPERT_TARGET = 0.90
# A rung above deep is at least as hard as deep's defaults for the method a capable model used there: its points are
# read against this agent's score at this tier's defaults.
REFERENCE_AGENT, REFERENCE_TIER = "scan_analyst", "deep"
REFERENCE_DASH = "8 3 2 3"
AGENT_COLORS = ("#1a7f37", "#bf3989", "#0969da", "#bf8700", "#8250df", "#e16f24", "#57606a")
WIDTH, HEIGHT = 1080, 430
# The plot area; the legend sits right of it, the point labels below (the first one's reaches left of the area).
LEFT, RIGHT, TOP, BOTTOM = 130, 790, 44, 300
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
        parts += [
            f'<circle cx="{_x_of(i, count):.1f}" cy="{_y_of(v):.1f}" r="3.2" fill="{color}"><title>'
            f"{_escaped(name)} at {_escaped(points[i]['label'])}: {v:.3f}</title></circle>"
            for i, v in run
        ]
    return parts


def _tier_spans(points: list[dict[str, Any]]) -> list[tuple[str, int, int]]:
    """(difficulty, first index, last index) of each tier's run of points, in order."""
    spans: list[tuple[str, int, int]] = []
    for index, point in enumerate(points):
        if spans and spans[-1][0] == point["difficulty"]:
            spans[-1] = (spans[-1][0], spans[-1][1], index)
        else:
            spans.append((point["difficulty"], index, index))
    return spans


def _axes_svg(points: list[dict[str, Any]]) -> list[str]:
    """The frame, the score grid and its labels, each point's label, the axis titles, and each tier's panel: its
    name above its points and a divider before it."""
    count = len(points)
    parts = [
        f'<rect x="{LEFT}" y="{TOP}" width="{RIGHT - LEFT}" height="{BOTTOM - TOP}" fill="none" stroke="{GRID_COLOR}"/>'
    ]
    for score in Y_TICKS:
        y = _y_of(score)
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{RIGHT}" y2="{y:.1f}" stroke="{GRID_COLOR}"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" '
            f'fill="{AXIS_COLOR}">{score:.2f}</text>'
        )
    for index, point in enumerate(points):
        x = _x_of(index, count)
        parts.append(
            f'<text x="{x:.1f}" y="{BOTTOM + 14}" font-size="11" text-anchor="end" fill="{AXIS_COLOR}" '
            f'transform="rotate(-30 {x:.1f} {BOTTOM + 14})">{_escaped(point["label"])}</text>'
        )
    for difficulty, first, last in _tier_spans(points):
        if first > 0:
            x = (_x_of(first - 1, count) + _x_of(first, count)) / 2
            parts.append(
                f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{BOTTOM}" stroke="{AXIS_COLOR}" '
                f'stroke-dasharray="2 3"/>'
            )
        middle = (_x_of(first, count) + _x_of(last, count)) / 2
        parts.append(
            f'<text x="{middle:.1f}" y="{TOP - 6}" font-size="12" font-weight="600" text-anchor="middle" '
            f'fill="{AXIS_COLOR}">{_escaped(difficulty)}</text>'
        )
    parts.append(
        f'<text x="{(LEFT + RIGHT) / 2}" y="{HEIGHT - 8}" font-size="12" text-anchor="middle" '
        f'fill="{TEXT_COLOR}">point of the dial (frontier\'s tier; deep and abyss, one knob turned from the '
        "tier's defaults)</text>"
    )
    middle = (TOP + BOTTOM) / 2
    axis_title_x = LEFT - 44
    parts.append(
        f'<text x="{axis_title_x}" y="{middle}" font-size="12" text-anchor="middle" fill="{TEXT_COLOR}" '
        f'transform="rotate(-90 {axis_title_x} {middle})">mean score (episodes with an incident)</text>'
    )
    return parts


def _legend_svg(entries: list[tuple[str, str, str]]) -> list[str]:
    """(name, colour, dash) per entry: a short line of the series' style beside its name."""
    parts = []
    for number, (name, color, dash) in enumerate(entries):
        y = TOP + 8 + 20 * number
        style = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<line x1="{RIGHT + 16}" y1="{y}" x2="{RIGHT + 40}" y2="{y}" stroke="{color}" '
            f'stroke-width="2"{style}/><text x="{RIGHT + 46}" y="{y + 4}" font-size="11" '
            f'fill="{TEXT_COLOR}">{_escaped(name)}</text>'
        )
    return parts


def reference_score(grid: dict[str, Any]) -> float | None:
    """REFERENCE_AGENT's score at REFERENCE_TIER's defaults (None: the grid has no such cell)."""
    for point in grid["points"]:
        if point["difficulty"] == REFERENCE_TIER and not point["settings"]:
            return point["scores"].get(REFERENCE_AGENT)
    return None


def _reference_svg(grid: dict[str, Any], color: str) -> list[str]:
    """The reference score as a line from its own point to the right edge, over every point right of it."""
    reference = reference_score(grid)
    if reference is None:
        return []
    points = grid["points"]
    start = next(
        index for index, point in enumerate(points) if point["difficulty"] == REFERENCE_TIER and not point["settings"]
    )
    y = _y_of(reference)
    return [
        f'<line x1="{_x_of(start, len(points)):.1f}" y1="{y:.1f}" x2="{RIGHT}" y2="{y:.1f}" stroke="{color}" '
        f'stroke-width="1.5" stroke-dasharray="{REFERENCE_DASH}"><title>{REFERENCE_AGENT} at '
        f"{REFERENCE_TIER}'s defaults: {reference:.3f}</title></line>"
    ]


def dial_plot_svg(grid: dict[str, Any]) -> str:
    """The grid (dial_grid.run_grid's result) as one SVG: a line per agent over the points, one panel a tier, the
    expert's target as a dashed line, the scan analyst's score at deep's defaults as a dash-dotted one across the
    panels right of it, the dilution share as a dotted one."""
    points = grid["points"]
    agents = grid["agents"]
    title = f"The dial: each agent's mean score per point ({grid['seeds']} calibration seeds a point)"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
        f'height="{HEIGHT}" role="img" aria-label="{_escaped(title)}" font-family="sans-serif">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
        f'<text x="{LEFT}" y="24" font-size="14" font-weight="600" fill="{TEXT_COLOR}">{_escaped(title)}</text>',
        *_axes_svg(points),
    ]
    target = _y_of(EXPERT_TARGET)
    parts.append(
        f'<line x1="{LEFT}" y1="{target:.1f}" x2="{RIGHT}" y2="{target:.1f}" stroke="{TRUTH_COLOR}" '
        'stroke-width="1.5" stroke-dasharray="6 4"/>'
    )
    parts += _series_svg(points, lambda point: point["dilution"], "dilution share", ANNOTATION_COLOR, "2 3")
    colors = dict(zip(agents, (AGENT_COLORS[number % len(AGENT_COLORS)] for number in range(len(agents))), strict=True))
    reference = reference_score(grid)
    if reference is not None:
        parts += _reference_svg(grid, colors[REFERENCE_AGENT])
    for agent, color in colors.items():
        parts += _series_svg(points, lambda point, agent=agent: point["scores"].get(agent), agent, color)
    entries = [(agent, color, "") for agent, color in colors.items()]
    entries.append((f"the expert's target ({EXPERT_TARGET:.2f})", TRUTH_COLOR, "6 4"))
    if reference is not None:
        entries.append(
            (
                f"{REFERENCE_AGENT} at {REFERENCE_TIER}'s defaults ({reference:.3f})",
                colors[REFERENCE_AGENT],
                REFERENCE_DASH,
            )
        )
    entries.append(("dilution share (not a score)", ANNOTATION_COLOR, "2 3"))
    parts += _legend_svg(entries)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
