"""The abyss episode the docs show played twice (lab/docs/abyss_episode.md, lab/calibration/rung_example.py): the
page is what the kept example renders, the episode fits the rule that chose it, and replaying each play on this version
gives back every text the agent read and its score."""

from __future__ import annotations

import json

import pytest

from lab.calibration.replay import REPRODUCED, replay
from lab.calibration.rung_example import EXPERT_AT_LEAST, GAP, render
from lab.tests.helpers import ROOT

EXAMPLE = ROOT / "lab" / "artifacts" / "abyss_example.json"
PAGE = ROOT / "lab" / "docs" / "abyss_episode.md"


@pytest.fixture(scope="module")
def example() -> dict:
    return json.loads(EXAMPLE.read_text())


def test_the_page_is_what_the_kept_example_renders(example: dict) -> None:
    assert PAGE.read_text() == render(example), ("run: uv run python -m lab.calibration.rung_example --render "
                                                 "lab/artifacts/abyss_example.json > lab/docs/abyss_episode.md")


def test_the_episode_fits_the_rule_that_chose_it(example: dict) -> None:
    expert, scan = example["expert"], example["scan_analyst"]
    assert expert["seed"] == scan["seed"] and expert["difficulty"] == scan["difficulty"] == "abyss"
    assert expert["score"] >= EXPERT_AT_LEAST and scan["score"] <= expert["score"] - GAP
    assert example["scan_losses"], "the page says where the scan analyst goes wrong"
    assert sum(loss["points"] for loss in example["scan_losses"]) == pytest.approx(1 - scan["score"], abs=0.02)


@pytest.mark.slow
@pytest.mark.parametrize("agent", ["expert", "scan_analyst"])
def test_each_play_replays_to_the_same_texts_and_score(example: dict, agent: str) -> None:
    result = replay(example[agent])
    assert result.first_difference is None, result.first_difference
    assert result.matched_texts == result.calls == len(example[agent]["calls"])
    assert result.status == REPRODUCED
