"""The dial grid in docs/calibration.md, as a table and as a plot, is what benchmarks/dial_grid.py renders from its
kept artifact, and every point of it is a reset the environment accepts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.calibrate import DEEP_ONLY_AGENTS
from benchmarks.dial_grid import GRID_AGENTS, POINTS, PUBLISHED_GRID, PUBLISHED_PLOT, grid_table
from benchmarks.dial_plot import EXPERT_TARGET, dial_plot_svg
from metric_tracker_rl.agents import AGENTS
from metric_tracker_rl.spec.tasks import resolve_episode_config

ROOT = Path(__file__).resolve().parents[1]


def table_under_header(text: str, header: str) -> str | None:
    """The markdown table of `text` that starts with the line `header`."""
    lines = text.splitlines()
    for number, line in enumerate(lines):
        if line == header:
            rows = [line]
            for following in lines[number + 1:]:
                if not following.startswith("|"):
                    break
                rows.append(following)
            return "\n".join(rows)
    return None


def test_the_docs_grid_is_the_kept_artifact_rendered() -> None:
    rendered = grid_table(json.loads(PUBLISHED_GRID.read_text()))
    shown = table_under_header((ROOT / "docs" / "calibration.md").read_text(encoding="utf-8"),
                               rendered.splitlines()[0])
    assert shown == rendered


def test_the_kept_artifact_covers_every_point_and_agent() -> None:
    grid = json.loads(PUBLISHED_GRID.read_text())
    assert [point["label"] for point in grid["points"]] == [label for label, _, _ in POINTS]
    assert tuple(grid["agents"]) == GRID_AGENTS and set(GRID_AGENTS) <= set(AGENTS)
    for point, (_, difficulty, settings) in zip(grid["points"], POINTS, strict=True):
        assert (point["difficulty"], point["settings"]) == (difficulty, settings)
        assert set(point["scores"]) == set(GRID_AGENTS)
        assert all(0.0 <= score <= 1.0 for score in point["scores"].values() if score is not None)
        assert all((score is None) == (agent in DEEP_ONLY_AGENTS and difficulty != "deep")
                   for agent, score in point["scores"].items())
        assert (point["dilution"] is None) == (difficulty != "deep")


@pytest.mark.parametrize(("label", "difficulty", "settings"), POINTS, ids=[label for label, _, _ in POINTS])
def test_every_point_is_a_reset_the_environment_accepts(label: str, difficulty: str, settings: dict) -> None:
    config = resolve_episode_config(difficulty=difficulty, seed=1, **settings)
    assert config.difficulty == difficulty
    assert all(getattr(config, knob) == value for knob, value in settings.items())


def test_an_edited_number_fails_the_comparison() -> None:
    grid = json.loads(PUBLISHED_GRID.read_text())
    rendered = grid_table(grid)
    grid["points"][1]["scores"][GRID_AGENTS[0]] += 0.5  # deep at its defaults
    assert grid_table(grid) != rendered


def test_the_kept_plot_is_the_kept_artifact_drawn() -> None:
    drawn = dial_plot_svg(json.loads(PUBLISHED_GRID.read_text()))
    assert PUBLISHED_PLOT.read_text() == drawn, ("redraw with `uv run python -m benchmarks.dial_grid --render "
                                                 "docs/artifacts/dial_grid.json --plot docs/images/dial_grid.svg`")


def test_the_plot_names_every_agent_point_and_the_target() -> None:
    grid = json.loads(PUBLISHED_GRID.read_text())
    svg = dial_plot_svg(grid)
    assert all(f">{agent}</text>" in svg for agent in GRID_AGENTS)
    assert all(f">{label}</text>" in svg for label, _, _ in POINTS)
    assert f"target ({EXPERT_TARGET:.2f})" in svg
    # One dot per score the grid holds, each titled with its value; a missing score draws none.
    scores = [(agent, point["label"], score) for point in grid["points"] for agent, score in point["scores"].items()
              if score is not None]
    assert all(f"<title>{agent} at {label}: {score:.3f}</title>" in svg for agent, label, score in scores)
    assert svg.count("<circle") == len(scores) + sum(point["dilution"] is not None for point in grid["points"])


def test_an_edited_number_changes_the_plot() -> None:
    grid = json.loads(PUBLISHED_GRID.read_text())
    drawn = dial_plot_svg(grid)
    grid["points"][1]["scores"][GRID_AGENTS[0]] -= 0.2
    assert dial_plot_svg(grid) != drawn


@pytest.mark.parametrize("page", ["docs/calibration.md", "README.md"])
def test_the_plot_is_shown_where_a_reader_looks(page: str) -> None:
    text = (ROOT / page).read_text(encoding="utf-8")
    shown = [line for line in text.splitlines() if line.startswith("![") and line.endswith("dial_grid.svg)")]
    assert len(shown) == 1
    target = shown[0].rsplit("(", 1)[1].rstrip(")")
    assert ((ROOT / page).parent / target).resolve() == PUBLISHED_PLOT
