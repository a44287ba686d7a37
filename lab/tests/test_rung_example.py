"""The episodes the docs show played twice (lab/docs/abyss_episode.md and lab/docs/warehouse_episode.md,
lab/calibration/rung_example.py): each page is what its kept example renders, the episode fits the rule that chose
it, and replaying each play on this version gives back every text the agent read and its score."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lab.calibration.replay import REPRODUCED, replay
from lab.calibration.rung_example import EXPERT_AT_LEAST, GAP, PLAYERS, artifact_path, page_path, render

TIERS = tuple(PLAYERS)


def _example(difficulty: str) -> dict[str, Any]:
    example: dict[str, Any] = json.loads(artifact_path(difficulty).read_text())
    return example


@pytest.mark.parametrize("difficulty", TIERS)
def test_the_page_is_what_the_kept_example_renders(difficulty: str) -> None:
    assert page_path(difficulty).read_text() == render(_example(difficulty)), (
        f"run: uv run python -m lab.calibration.rung_example --render lab/artifacts/{difficulty}_example.json "
        f"> lab/docs/{difficulty}_episode.md"
    )


@pytest.mark.parametrize("difficulty", TIERS)
def test_the_episode_fits_the_rule_that_chose_it(difficulty: str) -> None:
    example, players = _example(difficulty), PLAYERS[difficulty]
    expert, analyst = example["expert"], example[players.key]
    assert (expert["agent"], analyst["agent"]) == (players.expert, players.analyst)
    assert expert["seed"] == analyst["seed"] and expert["difficulty"] == analyst["difficulty"] == difficulty
    assert expert["score"] >= EXPERT_AT_LEAST and analyst["score"] <= expert["score"] - GAP
    assert example[players.losses_key], f"the page says where the {players.name} goes wrong"
    assert sum(loss["points"] for loss in example[players.losses_key]) == pytest.approx(1 - analyst["score"], abs=0.02)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("difficulty", "role"), [(tier, role) for tier in TIERS for role in ("expert", PLAYERS[tier].key)]
)
def test_each_play_replays_to_the_same_texts_and_score(difficulty: str, role: str) -> None:
    play = _example(difficulty)[role]
    result = replay(play)
    assert result.first_difference is None, result.first_difference
    assert result.matched_texts == result.calls == len(play["calls"])
    assert result.status == REPRODUCED
