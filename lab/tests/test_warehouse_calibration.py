"""The warehouse calibration artifact holds: the first untuned seeds, played again, score exactly what the artifact
says for the expert and the dashboard-only analyst; a run without ablation seeds reports the expert alone; two runs'
records are compared play by play, on the score and the submitted report."""

from __future__ import annotations

import json

import pytest

from lab.calibration.warehouse_calibration import (
    ARTIFACT,
    EXPERT,
    UNTUNED_FIRST,
    calibrate,
    compare_records,
    play_one,
    report_hash,
)
from metric_tracker_rl.models import MetricSubmissionRow, MetricTrackerRlAction

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
    assert set(report["ablations"]) == {
        "time_zone",
        "session",
        "deduplication",
        "internal_traffic",
        "debug_events",
        "bots",
        "late_events",
        "currency",
        "consent",
    }
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


def test_two_records_agree_only_where_every_play_scored_and_reported_the_same() -> None:
    first = [
        {"agent": EXPERT, "rule": "", "seed": seed, "score": 0.5 + seed / 100, "report_hash": f"h{seed}"}
        for seed in (1, 2, 3)
    ]
    assert compare_records(first, [dict(play) for play in reversed(first)]) == []
    second = [dict(play) for play in first]
    second[0]["report_hash"] = "other"  # the same score from another report still differs
    second[1]["score"] = 0.1
    differences = compare_records(first, second[:2] + [{**second[2], "rule": "currency"}])
    assert [line.split(":")[0] for line in differences] == [
        f"{EXPERT} seed 1",
        f"{EXPERT} seed 2",
        f"{EXPERT} seed 3",
        f"{EXPERT} without currency seed 3",
    ]


def test_a_play_keeps_a_digest_of_the_rows_it_submitted() -> None:
    row = {
        "date": "2026-01-05",
        "entity_type": "conversion_rate",
        "entity_name": "app_open_to_menu_open",
        "anomaly_type": "rate_drop_from_median",
        "detection_method": "query",
        "baseline_value": 0.5,
        "observed_value": 0.4,
        "delta_value": -0.1,
        "severity": "medium",
    }
    report = [MetricTrackerRlAction(classifications=[MetricSubmissionRow.model_validate(row)])]
    moved = {**row, "observed_value": 0.41, "delta_value": -0.09}
    changed = [MetricTrackerRlAction(classifications=[MetricSubmissionRow.model_validate(moved)])]
    assert report_hash(report) == report_hash(list(report)) != report_hash(changed)
    assert report_hash([]) != report_hash(report)


def test_the_kept_calibration_meets_the_rungs_bars() -> None:
    """The rung's published bars, read off the kept run: the expert at least 0.9 (its whole interval), each rule
    worth at least 0.1 to it, the dashboard-only analyst at most 0.4, the shortcuts at most 0.3 and the expert blind
    to segments at most 0.2, each over every untuned seed."""
    report = _artifact()
    agents = report["agents"]
    seeds = len(report["scores"][EXPERT])
    assert all(summary["n"] == seeds for summary in agents.values()), {a: s["n"] for a, s in agents.items()}
    assert agents[EXPERT]["mean_95"][0] >= 0.9
    assert min(rule["loss"] for rule in report["ablations"].values()) >= 0.1, report["ablations"]
    assert agents["warehouse_dashboard_analyst"]["mean"] <= 0.4
    assert max(agents[agent]["mean"] for agent in ("warehouse_every_dip", "warehouse_all_data_quality", "null")) <= 0.3
    assert agents["warehouse_aggregate_expert"]["mean"] <= 0.2
