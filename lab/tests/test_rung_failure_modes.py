"""The failure-mode shares of a tier's incidents (lab/calibration/rung_failure_modes.py) are read from the truth: each
mode is what its definition says, on segments and on built episodes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab.calibration.rung_failure_modes import MODES, dates_between, depth, incident_modes, render, shares_traffic
from lab.tests.helpers import reset_episode
from metric_tracker_rl.generation.dilution import cuboid_incidents
from metric_tracker_rl.world.segments import Segment

segments = st.builds(
    Segment,
    platform=st.sampled_from([None, "ios", "android", "web"]),
    country=st.sampled_from([None, "US", "DE"]),
    app_version=st.sampled_from([None, "6.1.0"]),
    channel=st.sampled_from([None, "organic", "paid_search"]),
    user_type=st.sampled_from([None, "new", "returning"]),
)


@given(segments, segments)
def test_sharing_traffic_is_symmetric_and_a_field_named_twice_with_two_values_separates(a: Segment, b: Segment) -> None:
    assert shares_traffic(a, b) == shares_traffic(b, a)
    conflict = any(x is not None and y is not None and x != y for x, y in zip(a.values(), b.values(), strict=True))
    if a.normalised() == a and b.normalised() == b:
        assert shares_traffic(a, b) == (not conflict)


@given(segments)
def test_every_cuboid_shares_traffic_with_itself_and_with_all_traffic(a: Segment) -> None:
    assert shares_traffic(a, a) and shares_traffic(a, Segment())


def test_depth_counts_a_version_with_its_platform_once() -> None:
    assert depth(Segment()) == 0
    assert depth(Segment(platform="ios", app_version="6.1.0")) == 1
    assert depth(Segment(platform="ios", app_version="6.1.0", channel="organic")) == 2
    assert depth(Segment(country="US", channel="organic", user_type="new")) == 3


def test_dates_between_holds_both_ends() -> None:
    assert dates_between("2026-02-27", "2026-03-02") == ["2026-02-27", "2026-02-28", "2026-03-01", "2026-03-02"]
    assert dates_between("2026-03-01", "2026-03-01") == ["2026-03-01"]


@pytest.mark.parametrize("seed", [50_000, 50_001, 50_002])
def test_each_incident_is_counted_once_with_the_modes_its_truth_carries(seed: int) -> None:
    episode = reset_episode(seed=seed, difficulty="deep")
    found = incident_modes(seed, episode)
    incidents = cuboid_incidents(episode)
    assert len(found) == len(incidents) == episode.truth.incident_count
    for incident, modes in zip(incidents, found, strict=True):
        assert modes.modes <= set(MODES)
        assert ("deeper_than_one_level" in modes.modes) == (depth(incident.segment) >= 2)
        assert ("weeks_long" in modes.modes) == (len(incident.rows) >= 7)
        assert "diluted" not in modes.modes or "deeper_than_one_level" in modes.modes
        others = [
            other
            for other in incidents
            if other is not incident and {r.date for r in other.rows} & {r.date for r in incident.rows}
        ]
        assert ("same_cuboid_concurrency" in modes.modes) == any(
            shares_traffic(incident.segment, other.segment) for other in others
        )


def test_a_deep_episode_pairs_two_incidents_on_one_date_in_cuboids_that_share_traffic() -> None:
    """Deep's tier puts one concurrent pair on a date (its concurrency of 1), so its episodes carry the mode."""
    carried = [
        m
        for seed in (50_000, 50_001, 50_002)
        for m in incident_modes(seed, reset_episode(seed=seed, difficulty="deep"))
        if "same_cuboid_concurrency" in m.modes
    ]
    assert len(carried) >= 2


def test_the_table_shows_each_mode_as_a_share_of_each_tiers_incidents() -> None:
    shares = dict.fromkeys(MODES, 0.25)
    table = render(
        {
            "deep": {"episodes": 4, "incidents": 16, "shares": shares, "any": 0.5},
            "abyss": {"episodes": 4, "incidents": 12, "shares": {**shares, "weeks_long": 1.0}, "any": 1.0},
        }
    )
    lines = table.splitlines()
    assert lines[0] == "| failure mode | deep | abyss |" and "16 (4)" in lines[2] and "12 (4)" in lines[2]
    assert len(lines) == 3 + len(MODES) + 1 and lines[-1].endswith("| 50% | 100% |")
    assert any(line.endswith("| 25% | 100% |") for line in lines)
