"""The deep pictures in docs/images are what lab/pictures/deep_pictures.py draws from today's generator and grader, and
each shows what its rule chose: a cuboid incident clear in its own data and buried in the coarser views, an
experiment's intended effect beside an incident in its arm, and the overlap credit of a near miss."""

from __future__ import annotations

import pytest

from lab.pictures.deep_pictures import (
    BURIED,
    CLEAR_IN_ITS_OWN,
    DilutedIncident,
    diluted_incident,
    experiment_beside_incident,
    holding_views,
    near_misses,
    pictures,
    segments_of,
    z_in,
)
from lab.pictures.frontier_pictures import stale_pictures
from lab.tests.helpers import ROOT
from metric_tracker_rl.generation.dilution import stands_out
from metric_tracker_rl.grading.grader import row_segment, segment_match

pytestmark = pytest.mark.slow  # builds deep episodes seed after seed until each picture's rule is met


@pytest.fixture(scope="module")
def chosen() -> DilutedIncident:
    return diluted_incident()


def test_the_kept_pictures_are_todays() -> None:
    stale = stale_pictures(pictures(), ROOT, "deep_")
    assert not stale, f"redraw with `uv run python -m lab.pictures.deep_pictures`: {', '.join(stale)}"


def test_the_cuboid_incident_is_clear_in_its_own_data_and_buried_in_every_view(chosen: DilutedIncident) -> None:
    data, incident = segments_of(chosen.episode), chosen.incident
    assert incident.depth == 3 and z_in(data, chosen.row, incident.segment) >= CLEAR_IN_ITS_OWN
    views = holding_views(data, incident.segment)
    assert len(views) == 3 and all(z_in(data, chosen.row, view) < BURIED for view in views)
    assert not stands_out(data, incident)


def test_the_experiments_incident_is_in_its_arm_on_another_step() -> None:
    _, episode, experiment, incident = experiment_beside_incident()
    assert experiment.target_step != incident.rows[0].entity_name
    assert all(experiment.start_date <= row.date <= experiment.end_date for row in incident.rows)
    # The intended effect is no incident: no row reports the target step in the arm while the experiment runs.
    assert not [
        row
        for row in episode.truth.expected_rows
        if row.entity_name == experiment.target_step
        and row_segment(row).normalised() == incident.segment.normalised()
        and experiment.start_date <= row.date <= experiment.end_date
    ]


def test_the_near_misses_are_one_level_off_and_credited_by_their_overlap(chosen: DilutedIncident) -> None:
    exact, coarser, finer = near_misses(chosen)
    truth = chosen.incident.segment
    assert (segment_match(coarser.reported, truth), segment_match(finer.reported, truth)) == ("parent", "over_specific")
    assert exact.assessment.segment == 1.0
    assert coarser.assessment.overlap is not None and coarser.assessment.overlap.coverage == 1.0
    assert finer.assessment.overlap is not None and finer.assessment.overlap.purity == 1.0
    assert 0.0 < coarser.assessment.segment < 1.0 and 0.0 < finer.assessment.segment < 1.0
    assert coarser.traffic > exact.traffic > finer.traffic
