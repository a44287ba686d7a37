"""The difficulty dial: the expert, the scan analyst and the shortcuts below them, scored at points of the dial, with
the dilution share of each point; frontier's tier is the first row, then deep and abyss, each at its defaults and
with one knob turned at a time.

    uv run python -m lab.calibration.dial_grid --seeds 50 --workers 1 --output lab/artifacts/dial_grid.json
    uv run python -m lab.calibration.dial_grid --seeds 50 --points abyss --merge lab/artifacts/dial_grid.json \
        --output lab/artifacts/dial_grid.json   # rerun abyss's points only, keep every other row
    uv run python -m lab.calibration.dial_grid --render lab/artifacts/dial_grid.json   # print the table, run nothing
    uv run python -m lab.calibration.dial_grid --render lab/artifacts/dial_grid.json --plot docs/images/dial_grid.svg

A point is a difficulty and reset settings (the dial's knobs, docs/data.md). Each agent's score is its mean over
the point's episodes that hold an incident (the calibration sweep's seeds, its null episodes left out; the cuboid
tiers' own agents run at deep and abyss only); the dilution share is that of lab.calibration.dilution at the point's
difficulty and settings (cuboid tiers only). `--points` and `--agents` choose the cells a run plays; `--merge`
takes every other cell from a kept grid of the same seeds, so a rung's rows are rerun without the others. The run
prints each agent's seconds per episode at each tier. lab/docs/calibration.md shows the rendered table and the plot
(`--plot`, lab/pictures/dial_plot.py), and lab/tests/test_dial_grid.py compares them with the artifact."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from lab.calibration.calibrate import DEEP_ONLY_AGENTS, NULL_GROUP, EpisodeSpec, scored_in, sweep
from lab.calibration.dilution import episodes as tier_episodes
from lab.pictures.dial_plot import dial_plot_svg
from metric_tracker_rl.catalog.tasks import cuboid_defaults
from metric_tracker_rl.generation.dilution import dilution_by_depth

PUBLISHED_GRID = Path(__file__).resolve().parents[2] / "lab" / "artifacts" / "dial_grid.json"
PUBLISHED_PLOT = Path(__file__).resolve().parents[2] / "docs" / "images" / "dial_grid.svg"
# The expert plays each tier's own procedure (frontier's at frontier, deep's at deep and abyss); the padder pads
# frontier's; the scan analyst plays the method a capable model used at deep.
GRID_AGENTS = (
    "expert",
    "scan_analyst",
    "one_dimension_expert",
    "short_segment_rule",
    "aggregate_only_expert",
    "next_date_padder",
)
Point = tuple[str, str, dict[str, Any]]  # (label, difficulty, settings)


def one_knob_at_a_time(difficulty: str, turns: dict[str, tuple[Any, ...]]) -> tuple[Point, ...]:
    """The tier at its defaults, then each knob turned to each of its values, the others left at the defaults."""
    return (
        (f"{difficulty}, defaults", difficulty, {}),
        *(
            (f"{difficulty}, {knob}={value}", difficulty, {knob: value})
            for knob, values in turns.items()
            for value in values
        ),
    )


# frontier's tier, then deep's and abyss's dials. Each knob is turned both ways where it can be (the depth only
# down: three is the most); abyss also turns the look-alikes per incident, which scales its leaf blips too.
DEEP_TURNS = {"max_cuboid_depth": (1, 2), "magnitude_scale": (0.75, 1.5), "concurrency": (0, 3)}
ABYSS_TURNS = {**DEEP_TURNS, "decoy_ratio": (0.5, 2.0)}
POINTS: tuple[Point, ...] = (
    ("frontier (its own tier)", "frontier", {}),
    *one_knob_at_a_time("deep", DEEP_TURNS),
    *one_knob_at_a_time("abyss", ABYSS_TURNS),
)


def plays_at(agent: str, difficulty: str) -> bool:
    """The cuboid tiers' own agents read deep's tables and context, which only a cuboid tier (deep, abyss) has."""
    return agent not in DEEP_ONLY_AGENTS or bool(cuboid_defaults(difficulty))


def chosen_points(names: Iterable[str]) -> tuple[Point, ...]:
    """The points a run plays, in POINTS order: each name is a point's label or a difficulty (all its points)."""
    names = set(names)
    labels = {label for label, _, _ in POINTS}
    difficulties = {difficulty for _, difficulty, _ in POINTS}
    unknown = sorted(names - labels - difficulties)
    if unknown:
        raise ValueError(
            f"unknown point(s) {', '.join(map(repr, unknown))}; valid: a difficulty "
            f"({', '.join(sorted(difficulties))}) or a label ({'; '.join(labels)})"
        )
    return tuple(point for point in POINTS if point[0] in names or point[1] in names)


def point_specs(difficulty: str, settings: dict[str, Any], seeds: int) -> list[EpisodeSpec]:
    """The point's episodes that hold an incident: the calibration sweep's, with the settings added."""
    return [
        EpisodeSpec(spec.group, {**spec.reset_kwargs, **settings})
        for spec in sweep(difficulty, seeds)
        if spec.group != NULL_GROUP
    ]


def dilution_share(difficulty: str, settings: dict[str, Any], seeds: int) -> float | None:
    """The share of two- and three-dimension incidents no one-dimension view shows (None: there are none, or the
    tier's root causes are not cuboids)."""
    if not cuboid_defaults(difficulty):
        return None
    chosen = [
        diluted for depth, diluted, _ in dilution_by_depth(tier_episodes(seeds, settings, difficulty)) if depth >= 2
    ]
    return sum(chosen) / len(chosen) if chosen else None


class Timings:
    """Seconds per episode of each agent at each tier, over the episodes a run played."""

    def __init__(self) -> None:
        self.seconds: dict[tuple[str, str], float] = defaultdict(float)
        self.episodes: dict[tuple[str, str], int] = defaultdict(int)

    def add(self, agent: str, difficulty: str, seconds: float, episodes: int) -> None:
        self.seconds[agent, difficulty] += seconds
        self.episodes[agent, difficulty] += episodes

    def table(self) -> str:
        lines = ["agent                 tier      episodes  seconds/episode"]
        lines += [
            f"{agent:<21} {difficulty:<9} {count:>8}  {self.seconds[agent, difficulty] / count:>15.2f}"
            for (agent, difficulty), count in self.episodes.items()
        ]
        return "\n".join(lines)


def _checked_kept(kept: dict[str, Any] | None, seeds: int) -> dict[str, dict[str, Any]]:
    """The kept grid's points by label: of the same seeds, each at the difficulty and settings POINTS gives it."""
    if kept is None:
        return {}
    if kept["seeds"] != seeds:
        raise ValueError(f"the kept grid ran {kept['seeds']} seeds a point, this run {seeds}: merge runs of one size")
    wanted = {label: (difficulty, settings) for label, difficulty, settings in POINTS}
    for point in kept["points"]:
        if wanted.get(point["label"]) != (point["difficulty"], point["settings"]):
            raise ValueError(f"the kept grid's point {point['label']!r} is not one of today's points")
    return {point["label"]: point for point in kept["points"]}


def run_grid(
    seeds: int,
    points: tuple[Point, ...] = POINTS,
    agents: tuple[str, ...] = GRID_AGENTS,
    kept: dict[str, Any] | None = None,
    progress: bool = True,
    workers: int = 1,
    timings: Timings | None = None,
) -> dict[str, Any]:
    """Every agent of `agents` at every point of `points`; every other cell of the kept grid (if any) is copied.
    The result holds the points either has, in POINTS order, and at each point the agents either scored."""
    kept_points = _checked_kept(kept, seeds)
    chosen = {label for label, _, _ in points}
    total, done = len(points) * len(agents), 0
    result = []
    for label, difficulty, settings in POINTS:
        if label not in chosen:
            if label in kept_points:
                result.append(kept_points[label])
            continue
        specs = point_specs(difficulty, settings, seeds)
        scores = dict(kept_points.get(label, {}).get("scores", {}))
        for agent in agents:
            done += 1
            if progress:
                print(f"\r{label:<28} {agent:<22} ({done}/{total})", end="", file=sys.stderr, flush=True)
            if not plays_at(agent, difficulty):
                scores[agent] = None
                continue
            started = time.perf_counter()
            scores[agent] = float(np.mean([score for score, _ in scored_in(agent, specs, workers=workers)]))
            if timings is not None:
                timings.add(agent, difficulty, time.perf_counter() - started, len(specs))
        result.append(
            {
                "label": label,
                "difficulty": difficulty,
                "settings": settings,
                "episodes": len(specs),
                "scores": {agent: scores[agent] for agent in GRID_AGENTS if agent in scores},
                "dilution": dilution_share(difficulty, settings, seeds),
            }
        )
    if progress:
        print(file=sys.stderr)
    scored = {agent for point in result for agent in point["scores"]}
    agents_shown = [agent for agent in GRID_AGENTS if agent in scored]
    return {"seeds": seeds, "agents": agents_shown, "points": [_without_gaps(point, agents_shown) for point in result]}


def _without_gaps(point: dict[str, Any], agents: list[str]) -> dict[str, Any]:
    """The point with no score (None) for each of the agents that does not play at its tier, wherever a merge
    left it out."""
    scores = {agent: None for agent in agents if not plays_at(agent, point["difficulty"])} | point["scores"]
    return {**point, "scores": {agent: scores[agent] for agent in GRID_AGENTS if agent in scores}}


def _score_cell(scores: dict[str, float | None], agent: str) -> str:
    if agent not in scores:
        return "not run"
    return "—" if scores[agent] is None else f"{scores[agent]:.3f}"


def grid_table(grid: dict[str, Any]) -> str:
    """The grid as a markdown table: one row a point, its dilution share, then each agent's mean."""
    header = ["point", "episodes", "dilution", *grid["agents"]]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    for point in grid["points"]:
        dilution = "—" if point["dilution"] is None else f"{point['dilution']:.0%}"
        cells = [
            point["label"],
            str(point["episodes"]),
            dilution,
            *(_score_cell(point["scores"], agent) for agent in grid["agents"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50, help="calibration seeds per point (null ones left out)")
    parser.add_argument(
        "--points",
        nargs="+",
        metavar="POINT",
        help="play only these points: a difficulty (all its points) or a point's label (quoted); default: every point",
    )
    parser.add_argument("--agents", help=f"comma-separated: play only these agents (of {', '.join(GRID_AGENTS)})")
    parser.add_argument(
        "--merge",
        type=Path,
        metavar="GRID",
        help="take every cell this run does not play from this grid file (same --seeds)",
    )
    parser.add_argument("--output", type=Path, help="write the grid (JSON) here")
    parser.add_argument("--render", type=Path, metavar="GRID", help="print the table of a grid file; run nothing")
    parser.add_argument(
        "--plot", type=Path, metavar="SVG", help="also draw the grid (the run's, or --render's) as a line plot here"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    parser.add_argument(
        "--workers", type=int, default=1, help="processes that play episodes (the scores do not depend on it)"
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.render is None and args.seeds < 10:
        parser.error("--seeds must be at least 10")
    agents = GRID_AGENTS if args.agents is None else tuple(name.strip() for name in args.agents.split(","))
    if set(agents) - set(GRID_AGENTS):
        parser.error(f"--agents takes agents of the grid: {', '.join(GRID_AGENTS)}")
    try:
        points = POINTS if args.points is None else chosen_points(args.points)
    except ValueError as error:
        parser.error(str(error))
    if args.render is not None:
        grid = json.loads(args.render.read_text())
    else:
        timings = Timings()
        kept = json.loads(args.merge.read_text()) if args.merge is not None else None
        grid = run_grid(
            args.seeds, points, agents, kept, progress=not args.quiet, workers=args.workers, timings=timings
        )
        print(timings.table(), file=sys.stderr)
    print(grid_table(grid))
    if args.output is not None and args.render is None:
        args.output.write_text(json.dumps(grid, indent=1) + "\n")
        print(f"wrote {args.output}")
    if args.plot is not None:
        args.plot.write_text(dial_plot_svg(grid))
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
