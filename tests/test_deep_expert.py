"""The deep tier's expert: it solves a few deep episodes from what a model reads and shows every number it submits
(lab/tests/test_deep_shortcuts.py plays the shortcuts beside it); the cuboid search covers every combination of one
to three dimensions and its ripple check generalises only a change that the rest of the parent shares."""

from __future__ import annotations

import statistics

import pytest
from core_helpers import reset_episode

from metric_tracker_rl.adapters.transcript import cut_results, unseen_submitted_rows
from metric_tracker_rl.agents import make_agent
from metric_tracker_rl.agents.expert_core.cuboid_queries import (
    SCAN_GROUPS,
    cell_stops_sql,
    cuboid_sets,
    scan_sql,
)
from metric_tracker_rl.agents.expert_core.localisation import localise
from metric_tracker_rl.agents.expert_core.reports import SQL_CHARS
from metric_tracker_rl.agents.recording import message_texts, record_episode
from metric_tracker_rl.catalog.task_splits import calibration_reset_kwargs
from metric_tracker_rl.models import MetricTrackerRlAction
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment

MESSAGE_CHARS = 48_000  # an expert episode's messages, median (the model view's budget)
EPISODES = 3
# The expert's mean over those episodes. Cuboid incidents drawn near the floor of clarity (OWN_Z_MIN in their own
# cuboid) can still fall below the scan's threshold on a date, so it misses some.
EXPERT_FLOOR = 0.6


@pytest.mark.slow
def test_deep_expert_finds_incidents_and_shows_what_it_submits() -> None:
    env = MetricTrackerRlEnvironment()
    runs = [
        record_episode(make_agent("deep_expert"), env, calibration_reset_kwargs("deep", offset))
        for offset in range(EPISODES)
    ]
    assert statistics.mean(run.score for run in runs) >= EXPERT_FLOOR, [run.score for run in runs]
    for run in runs:
        assert unseen_submitted_rows(run) == []
        assert cut_results(run) == 0
    assert statistics.median(sum(map(len, message_texts(run.messages))) for run in runs) <= MESSAGE_CHARS


def test_cuboids_cover_one_to_three_dimensions() -> None:
    sets = cuboid_sets(3)
    dimensions = [len(fields) - ("app_version" in fields) for fields in sets]  # a version names its platform
    assert len(set(sets)) == len(sets) == 21  # 5 + 9 + 7: platform and version never together
    assert all(1 <= size <= 3 for size in dimensions)
    assert all("platform" in fields for fields in sets if "app_version" in fields)
    assert cuboid_sets(1) == [("platform",), ("country",), ("channel",), ("user_type",), ("platform", "app_version")]


@pytest.mark.parametrize("max_dims", [1, 2, 3])
def test_queries_fit_the_text_limit(max_dims: int) -> None:
    assert all(len(scan_sql(steps, max_dims)) <= SQL_CHARS for steps in SCAN_GROUPS)
    assert len(cell_stops_sql()) <= SQL_CHARS


def _cell_pair_breaks(reset: dict) -> set[tuple]:
    truth = reset_episode(**reset).truth.expected_rows
    return {
        (row.date, row.entity_name, row.platform, row.country)
        for row in truth
        if row.anomaly_type == "funnel_break"
        and row.platform
        and row.country
        and not (row.app_version or row.channel or row.user_type)
    }


def test_the_cell_stops_show_a_break_of_a_platform_and_country_the_day_dilutes() -> None:
    """A break of a few hours on one platform in one country (the first of the deep sweep's episodes that holds
    one): the hours of that cell pair show the block (the truth is read by the test, the query by the tool)."""
    resets = (calibration_reset_kwargs("deep", offset) for offset in range(40))
    reset, breaks = next(((reset, found) for reset in resets if (found := _cell_pair_breaks(reset))), ({}, set()))
    assert breaks, "one of the deep sweep's first 40 episodes holds a break of a platform and country"
    env = MetricTrackerRlEnvironment()
    env.reset(**reset)
    observation = env.step(
        MetricTrackerRlAction(analysis_method="query", analysis_args={"sql": cell_stops_sql(), "limit": 100})
    )
    assert observation.status == "ok", observation.message
    found = {
        (str(row["date"]), row["entity_name"], row["platform"], row["country"])
        for row in observation.analysis_result["rows"]
    }
    assert breaks <= found


def _row(z: float, r: float, e: float, **fields: str) -> dict:
    return {"z": z, "r": r, "e": e, "change": r / e, **fields}


def test_ripple_generalises_a_change_the_rest_of_the_parent_shares() -> None:
    child = _row(-8.0, -100.0, 500.0, platform="android", country="IN")
    parent = _row(-12.0, -300.0, 1500.0, platform="android")  # the rest: -200 of 1000, z about -9
    assert localise([child, parent]) is parent


def test_ripple_keeps_a_change_confined_to_its_cuboid() -> None:
    child = _row(-8.0, -100.0, 500.0, platform="android", country="IN")
    parent = _row(-4.5, -110.0, 1500.0, platform="android")  # the rest barely moved
    other = _row(-5.0, -100.0, 900.0, country="IN")
    assert localise([child, parent, other]) is child
