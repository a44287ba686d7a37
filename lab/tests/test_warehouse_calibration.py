"""The warehouse calibration artifact holds: the first untuned seeds, played again, score exactly what the artifact
says for the expert and the dashboard-only analyst; a run without ablation seeds reports the expert alone."""

from __future__ import annotations

import json

import pytest

from lab.calibration.warehouse_calibration import ARTIFACT, EXPERT, UNTUNED_FIRST, calibrate, play_one

SLICE = 2  # seeds replayed


def _artifact() -> dict:  # type: ignore[type-arg]
    return json.loads(ARTIFACT.read_text())


def _seed_scores(report: dict, agent: str) -> list[tuple[int, float]]:  # type: ignore[type-arg]
    """(seed, score) of an agent's untuned episodes: the seeds in order, less the resets the environment refused."""
    first, last = report["seeds"]["untuned"]
    failed = {entry["seed"] for entry in report["failed_resets"]}
    seeds = [seed for seed in range(first, last + 1) if seed not in failed]
    return list(zip(seeds, report["scores"][agent], strict=True))


def test_the_artifact_names_its_seed_sets_and_every_rule() -> None:
    report = _artifact()
    tuned, untuned = report["seeds"]["tuning"], report["seeds"]["untuned"]
    assert tuned[1] < untuned[0], "the untuned seeds are not the tuning seeds"
    assert set(report["ablations"]) == {"time_zone", "session", "deduplication", "internal_traffic", "debug_events",
                                        "bots", "late_events", "currency", "consent"}
    assert report["agents"]["warehouse_expert"]["n"] == len(report["scores"]["warehouse_expert"])


@pytest.mark.slow
@pytest.mark.parametrize("agent", ["warehouse_expert", "warehouse_dashboard_analyst"])
def test_a_slice_of_the_calibration_replays_exactly(agent: str) -> None:
    for seed, score in _seed_scores(_artifact(), agent)[:SLICE]:
        replayed = play_one((agent, "", seed))
        assert round(replayed["score"], 6) == score, (agent, seed)


@pytest.mark.slow
def test_a_run_without_ablation_seeds_reports_the_expert_alone() -> None:
    """A run of the expert's score alone (no ablation seeds) leaves the ablation table out instead of failing."""
    report = calibrate([UNTUNED_FIRST], [], (EXPERT,), workers=1)
    assert report["seeds"]["ablation"] == [] and "ablations" not in report
    assert report["agents"][EXPERT]["n"] == 1 and report["expert_calls"]["max"] > 0
