"""The dial grid in lab/docs/calibration.md, as a table and as a plot, is what lab/calibration/dial_grid.py renders
from its kept artifact, every point of it is a reset the environment accepts, and every point of a rung above deep is at
least as hard for the scan analyst as deep's defaults."""

from __future__ import annotations

import html
import json

import pytest

from lab.agents.registry import known_agents
from lab.calibration.dial_grid import (
    GRID_AGENTS,
    POINTS,
    PUBLISHED_GRID,
    PUBLISHED_PLOT,
    chosen_points,
    grid_table,
    plays_at,
    run_grid,
)
from lab.pictures.dial_plot import EXPERT_TARGET, REFERENCE_AGENT, REFERENCE_TIER, dial_plot_svg, reference_score
from lab.tests.helpers import ROOT, markdown_table_with_header
from metric_tracker_rl.catalog.tasks import cuboid_defaults, resolve_episode_config
from metric_tracker_rl.catalog.tiers import TIERS


def test_the_docs_grid_is_the_kept_artifact_rendered() -> None:
    rendered = grid_table(json.loads(PUBLISHED_GRID.read_text()))
    shown = markdown_table_with_header(
        (ROOT / "lab" / "docs" / "calibration.md").read_text(encoding="utf-8"), rendered.splitlines()[0]
    )
    assert shown == rendered


def test_the_kept_artifact_covers_every_point_and_agent() -> None:
    grid = json.loads(PUBLISHED_GRID.read_text())
    assert [point["label"] for point in grid["points"]] == [label for label, _, _ in POINTS]
    assert tuple(grid["agents"]) == GRID_AGENTS and set(GRID_AGENTS) <= set(known_agents())
    for point, (_, difficulty, settings) in zip(grid["points"], POINTS, strict=True):
        assert (point["difficulty"], point["settings"]) == (difficulty, settings)
        assert set(point["scores"]) == set(GRID_AGENTS)
        assert all(0.0 <= score <= 1.0 for score in point["scores"].values() if score is not None)
        assert all((score is None) == (not plays_at(agent, difficulty)) for agent, score in point["scores"].items())
        assert (point["dilution"] is None) == (not cuboid_defaults(difficulty))


@pytest.mark.parametrize(("label", "difficulty", "settings"), POINTS, ids=[label for label, _, _ in POINTS])
def test_every_point_is_a_reset_the_environment_accepts(label: str, difficulty: str, settings: dict) -> None:
    config = resolve_episode_config(difficulty=difficulty, seed=1, **settings)
    defaults = resolve_episode_config(difficulty=difficulty, seed=1)
    assert config.difficulty == difficulty
    assert all(getattr(config, knob) == value for knob, value in settings.items())
    # A turned knob is turned: the point is not the tier's defaults under another label.
    assert all(getattr(defaults, knob) != value for knob, value in settings.items())
    assert config.standard == (not settings)


def test_every_point_of_a_rung_above_deep_is_at_least_as_hard_for_the_scan_analyst() -> None:
    grid = json.loads(PUBLISHED_GRID.read_text())
    reference = reference_score(grid)
    assert reference is not None
    # The rungs of counts above deep (a tier of raw events has its own agents: the scan analyst reads counts).
    above = [name for name in list(TIERS)[list(TIERS).index(REFERENCE_TIER) + 1 :] if TIERS[name].data == "counts"]
    rung_points = [point for point in grid["points"] if point["difficulty"] in above]
    assert {point["difficulty"] for point in rung_points} == set(above)
    harder = {point["label"]: point["scores"][REFERENCE_AGENT] for point in rung_points}
    assert all(score <= reference for score in harder.values()), (reference, harder)


def test_a_run_chooses_points_by_label_or_difficulty() -> None:
    assert chosen_points(["abyss"]) == tuple(point for point in POINTS if point[1] == "abyss")
    assert chosen_points(["deep, defaults", "frontier"]) == (POINTS[0], POINTS[1])
    with pytest.raises(ValueError, match="unknown point"):
        chosen_points(["abyss, defaults", "nowhere"])


def test_a_merge_that_plays_nothing_keeps_the_grid_as_it_was() -> None:
    grid = json.loads(PUBLISHED_GRID.read_text())
    assert run_grid(grid["seeds"], points=(), kept=grid, progress=False) == grid
    with pytest.raises(ValueError, match="seeds"):
        run_grid(grid["seeds"] + 1, points=(), kept=grid, progress=False)


@pytest.mark.slow
def test_a_merged_rerun_of_one_cell_reproduces_the_kept_grid() -> None:
    grid = json.loads(PUBLISHED_GRID.read_text())
    rerun = run_grid(
        grid["seeds"], points=chosen_points(["frontier"]), agents=("aggregate_only_expert",), kept=grid, progress=False
    )
    assert rerun == grid


def test_an_edited_number_fails_the_comparison() -> None:
    grid = json.loads(PUBLISHED_GRID.read_text())
    rendered = grid_table(grid)
    grid["points"][1]["scores"][GRID_AGENTS[0]] += 0.5  # deep at its defaults
    assert grid_table(grid) != rendered


def test_the_kept_plot_is_the_kept_artifact_drawn() -> None:
    drawn = dial_plot_svg(json.loads(PUBLISHED_GRID.read_text()))
    assert PUBLISHED_PLOT.read_text() == drawn, (
        "redraw with `uv run python -m lab.calibration.dial_grid --render "
        "lab/artifacts/dial_grid.json --plot docs/images/dial_grid.svg`"
    )


def test_the_plot_names_every_agent_point_and_the_target() -> None:
    grid = json.loads(PUBLISHED_GRID.read_text())
    svg = dial_plot_svg(grid)
    assert all(f">{agent}</text>" in svg for agent in GRID_AGENTS)
    assert all(f">{label}</text>" in svg for label, _, _ in POINTS)
    assert f"target ({EXPERT_TARGET:.2f})" in svg
    assert all(f">{difficulty}</text>" in svg for difficulty in {difficulty for _, difficulty, _ in POINTS})
    legend = f"{REFERENCE_AGENT} at {REFERENCE_TIER}'s defaults ({reference_score(grid):.3f})"
    assert f">{html.escape(legend, quote=True)}</text>" in svg
    # One dot per score the grid holds, each titled with its value; a missing score draws none.
    scores = [
        (agent, point["label"], score)
        for point in grid["points"]
        for agent, score in point["scores"].items()
        if score is not None
    ]
    assert all(f"<title>{agent} at {label}: {score:.3f}</title>" in svg for agent, label, score in scores)
    assert svg.count("<circle") == len(scores) + sum(point["dilution"] is not None for point in grid["points"])


def test_an_edited_number_changes_the_plot() -> None:
    grid = json.loads(PUBLISHED_GRID.read_text())
    drawn = dial_plot_svg(grid)
    grid["points"][1]["scores"][GRID_AGENTS[0]] -= 0.2
    assert dial_plot_svg(grid) != drawn
