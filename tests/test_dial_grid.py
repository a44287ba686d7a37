"""The dial grid in docs/calibration.md is what benchmarks/dial_grid.py renders from its kept artifact, and every
point of it is a reset the environment accepts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.calibrate import DEEP_ONLY_AGENTS
from benchmarks.dial_grid import GRID_AGENTS, POINTS, PUBLISHED_GRID, grid_table
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
