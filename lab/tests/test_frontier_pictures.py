"""The frontier pictures in docs/images are what lab/pictures/frontier_pictures.py draws from today's generator: a
change to the world, its version numbers or the charts shows up here until the pictures are drawn again."""

from __future__ import annotations

import re

import pytest

from lab.pictures.frontier_pictures import OUTPUT, pictures, stale_pictures
from lab.tests.helpers import ROOT

pytestmark = pytest.mark.slow  # builds a frontier world per seed until every kind is drawn


def test_the_kept_pictures_are_todays() -> None:
    stale = stale_pictures(pictures(), ROOT, "frontier_")
    assert not stale, f"redraw with `uv run python -m lab.pictures.frontier_pictures`: {', '.join(stale)}"


def test_a_picture_names_versions_in_three_parts_as_the_data_does() -> None:
    shown = {
        version
        for path in (ROOT / OUTPUT).glob("frontier_*.svg")
        for version in re.findall(r"app_version=([\d.]+)", path.read_text())
    }
    assert shown and all(re.fullmatch(r"\d+\.\d+\.\d+", version) for version in shown), shown
