"""The difficulty dial: the deep expert and the shortcuts below it, scored at points of the dial, with
the dilution share of each point; frontier's tier is the first row, a rung below the deep settings.

    uv run python -m benchmarks.dial_grid --seeds 50 --workers 2 --output docs/artifacts/dial_grid.json
    uv run python -m benchmarks.dial_grid --render docs/artifacts/dial_grid.json   # print the table, run nothing
    uv run python -m benchmarks.dial_grid --render docs/artifacts/dial_grid.json --plot docs/images/dial_grid.svg

A point is a difficulty and reset settings (the dial's knobs, docs/data.md). Each agent's score is its mean over
the point's episodes that hold an incident (the calibration sweep's seeds, its null episodes left out; the deep
tier's own agents run at deep only); the dilution
share is that of benchmarks.dilution at the point's settings (deep only). docs/calibration.md shows the rendered
table and the plot (`--plot`, benchmarks/dial_plot.py), and tests/test_dial_grid.py compares them with the artifact."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.calibrate import DEEP_ONLY_AGENTS, NULL_GROUP, EpisodeSpec, scored_in, sweep
from benchmarks.dial_plot import dial_plot_svg
from benchmarks.dilution import episodes as deep_episodes
from metric_tracker_rl.generation.dilution import dilution_by_depth

PUBLISHED_GRID = Path(__file__).resolve().parents[1] / "docs" / "artifacts" / "dial_grid.json"
PUBLISHED_PLOT = Path(__file__).resolve().parents[1] / "docs" / "images" / "dial_grid.svg"
# The expert plays each tier's own procedure (frontier's at frontier, deep's at deep); the padder pads frontier's.
GRID_AGENTS = ("expert", "one_dimension_expert", "short_segment_rule", "aggregate_only_expert", "next_date_padder")
# (label, difficulty, settings): frontier's tier, deep at its defaults, then one knob turned at a time.
POINTS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("frontier (its own tier)", "frontier", {}),
    ("deep, defaults", "deep", {}),
    ("deep, max_cuboid_depth=1", "deep", {"max_cuboid_depth": 1}),
    ("deep, max_cuboid_depth=2", "deep", {"max_cuboid_depth": 2}),
    ("deep, magnitude_scale=0.75", "deep", {"magnitude_scale": 0.75}),
    ("deep, magnitude_scale=1.5", "deep", {"magnitude_scale": 1.5}),
    ("deep, concurrency=0", "deep", {"concurrency": 0}),
    ("deep, concurrency=3", "deep", {"concurrency": 3}),
)


def point_specs(difficulty: str, settings: dict[str, Any], seeds: int) -> list[EpisodeSpec]:
    """The point's episodes that hold an incident: the calibration sweep's, with the settings added."""
    return [EpisodeSpec(spec.group, {**spec.reset_kwargs, **settings}) for spec in sweep(difficulty, seeds)
            if spec.group != NULL_GROUP]


def dilution_share(settings: dict[str, Any], seeds: int) -> float | None:
    """The share of two- and three-dimension incidents no one-dimension view shows (None: there are none)."""
    chosen = [diluted for depth, diluted, _ in dilution_by_depth(deep_episodes(seeds, settings)) if depth >= 2]
    return sum(chosen) / len(chosen) if chosen else None


def run_grid(seeds: int, agents: tuple[str, ...] = GRID_AGENTS, progress: bool = True,
             workers: int = 1) -> dict[str, Any]:
    points = []
    total = len(POINTS) * len(agents)
    for index, (label, difficulty, settings) in enumerate(POINTS):
        specs = point_specs(difficulty, settings, seeds)
        scores = {}
        for number, agent in enumerate(agents):
            if progress:
                print(f"\r{label:<28} {agent:<22} ({index * len(agents) + number + 1}/{total})", end="",
                      file=sys.stderr, flush=True)
            # The deep tier's own agents read deep's tables and context: elsewhere they are not run.
            scores[agent] = None if agent in DEEP_ONLY_AGENTS and difficulty != "deep" else \
                float(np.mean([score for score, _ in scored_in(agent, specs, workers=workers)]))
        points.append({"label": label, "difficulty": difficulty, "settings": settings, "episodes": len(specs),
                       "scores": scores,
                       "dilution": dilution_share(settings, seeds) if difficulty == "deep" else None})
    if progress:
        print(file=sys.stderr)
    return {"seeds": seeds, "agents": list(agents), "points": points}


def grid_table(grid: dict[str, Any]) -> str:
    """The grid as a markdown table: one row a point, its dilution share, then each agent's mean."""
    header = ["point", "episodes", "dilution", *grid["agents"]]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    for point in grid["points"]:
        dilution = "—" if point["dilution"] is None else f"{point['dilution']:.0%}"
        cells = [point["label"], str(point["episodes"]), dilution,
                 *("—" if point["scores"][agent] is None else f"{point['scores'][agent]:.3f}"
                   for agent in grid["agents"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50, help="calibration seeds per point (null ones left out)")
    parser.add_argument("--output", type=Path, help="write the grid (JSON) here")
    parser.add_argument("--render", type=Path, metavar="GRID", help="print the table of a grid file; run nothing")
    parser.add_argument("--plot", type=Path, metavar="SVG", help="also draw the grid (the run's, or --render's) as a "
                        "line plot here")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    parser.add_argument("--workers", type=int, default=1, help="processes that play episodes (the scores do not "
                        "depend on it)")
    args = parser.parse_args(argv)
    if args.render is None and args.seeds < 10:
        parser.error("--seeds must be at least 10")
    grid = json.loads(args.render.read_text()) if args.render is not None else \
        run_grid(args.seeds, progress=not args.quiet, workers=args.workers)
    print(grid_table(grid))
    if args.output is not None and args.render is None:
        args.output.write_text(json.dumps(grid, indent=1) + "\n")
        print(f"wrote {args.output}")
    if args.plot is not None:
        args.plot.write_text(dial_plot_svg(grid))
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
