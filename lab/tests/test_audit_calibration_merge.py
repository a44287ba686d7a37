"""A run of some of the audit's agents replaces their figures in the kept artifact and keeps every other agent's,
and refuses to mix runs over different seeds; the kept run's seeds are untuned ones of their splits; an
interaction's rows are both findings' on their shared dates."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from lab.calibration.audit_calibration import (
    ARTIFACT,
    TRAIN_UNTUNED_FIRST,
    base_for_seeds,
    expected_keys,
    interaction_table,
    merged,
)
from metric_tracker_rl.catalog.task_splits import TRAIN_SEED_BASE, TRAIN_TASK_COUNT, mechanism_split, task_range
from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.catalog.tiers import AUDIT
from metric_tracker_rl.generation.audit.world import build_audit_world
from metric_tracker_rl.world.funnel import window_calendar
from metric_tracker_rl.world.segments import segments_meet


def _report(seeds: dict[str, list[int]], agents: dict[str, float]) -> dict[str, Any]:
    split = {
        "agents": {a: {"mean": m} for a, m in agents.items()},
        "calls_and_chars_p50": {a: [10.0, 1000.0 * m] for a, m in agents.items()},
        "calls_max": {a: 12 for a in agents},
        "chars_p95": {a: 2000.0 * m for a, m in agents.items()},
        "mechanisms": {"bot_farm": {"episode_share": 0.2, "rows": 5, **dict(agents.items())}},
        "interactions": {"defect_on_incident": {"episode_share": 0.4, "rows": 6, **dict(agents.items())}},
    }
    return {"seeds": seeds, "splits": {"eval": split, "train": copy.deepcopy(split)}, "failed_resets": []}


SEEDS = {"eval": [1, 40], "train": [100, 139]}


def test_a_partial_run_replaces_its_agents_and_keeps_the_others() -> None:
    kept = _report(SEEDS, {"audit_expert": 0.5, "generic_auditor": 0.3})
    played = _report(SEEDS, {"audit_expert": 0.9})
    out = merged(copy.deepcopy(kept), played, ("audit_expert",))
    for split in ("eval", "train"):
        data = out["splits"][split]
        assert data["agents"] == {"audit_expert": {"mean": 0.9}, "generic_auditor": {"mean": 0.3}}
        assert data["calls_and_chars_p50"]["audit_expert"] == [10.0, 900.0]
        assert data["chars_p95"]["generic_auditor"] == 600.0
        assert data["mechanisms"]["bot_farm"] == {
            "episode_share": 0.2,
            "rows": 5,
            "audit_expert": 0.9,
            "generic_auditor": 0.3,
        }
        assert data["interactions"]["defect_on_incident"] == {
            "episode_share": 0.4,
            "rows": 6,
            "audit_expert": 0.9,
            "generic_auditor": 0.3,
        }
    assert "a data defect on an incident's date" in interaction_table(out)


def test_an_interactions_rows_are_those_of_both_findings_on_their_shared_dates() -> None:
    """Seed 0 of the audit holds a defect on an incident's date: its rows there, the defect's and the incident's,
    are listed under the interaction, and no row off the overlap's dates is."""
    world = build_audit_world(AUDIT, resolve_episode_config(seed=0, difficulty="audit"))
    dates = window_calendar(world.log.num_days).iso_dates
    shared = {
        dates[day]
        for d in world.defects
        for i in world.incidents
        for day in d.days
        if day == i.record.day and segments_meet(d.segment, i.segment)
    }
    listed = [key for key, interaction in expected_keys(0)[1] if interaction == "defect_on_incident"]
    assert listed and {key.split("|")[0] for key in listed} == shared
    assert {key.split("|")[1] == "data_quality" for key in listed} == {True, False}


def test_a_partial_run_over_other_seeds_is_refused() -> None:
    kept = _report(SEEDS, {"audit_expert": 0.5, "generic_auditor": 0.3})
    played = _report({"eval": [2, 41], "train": [100, 139]}, {"audit_expert": 0.9})
    with pytest.raises(SystemExit, match="play every agent"):
        merged(kept, played, ("audit_expert",))


def test_the_kept_runs_seeds_are_in_neither_split_and_each_in_its_own() -> None:
    """The kept calibration played seeds that no listed task names (listing a tier appends train tasks, which must
    stay short of the train split's untuned seeds), each seed of the split it is reported under."""
    kept = json.loads(ARTIFACT.read_text(encoding="utf-8"))
    listed = {task["seed"] for split in ("train", "eval") for task in task_range(split) if "seed" in task}
    for split, (first, last) in kept["seeds"].items():
        assert not listed & set(range(first, last + 1)) and {mechanism_split(first), mechanism_split(last)} == {split}
    assert kept["seeds"]["train"][0] >= TRAIN_UNTUNED_FIRST >= TRAIN_SEED_BASE + TRAIN_TASK_COUNT  # (--skip: further)


def test_a_run_of_one_agent_on_other_seeds_writes_a_fresh_output_alone_and_never_mixes_them_into_a_file(
    tmp_path: Path,
) -> None:
    kept = _report(SEEDS, {"audit_expert": 0.9})
    other = {"eval": list(range(700, 712)), "train": list(range(800, 812))}
    assert base_for_seeds(kept, tmp_path / "fresh.json", True, other) is None
    assert (
        base_for_seeds(
            kept, tmp_path / "fresh.json", True, {"eval": list(range(1, 41)), "train": list(range(100, 140))}
        )
        is kept
    )
    with pytest.raises(ValueError, match="not this run's"):  # the default output, not named: it merges into the kept
        base_for_seeds(kept, tmp_path / "fresh.json", False, other)
    existing = tmp_path / "existing.json"
    existing.write_text("{}")
    with pytest.raises(ValueError, match="--seeds 40 --skip"):
        base_for_seeds(kept, existing, True, other)
    with pytest.raises(ValueError, match="not this run's"):
        base_for_seeds(kept, ARTIFACT, True, other)


def test_a_run_of_some_agents_at_another_version_is_refused_before_it_plays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run merges only into results of the version it plays: figures of two versions in one file would read as
    one version's."""
    from lab.calibration import audit_calibration

    out = tmp_path / "calibration.json"
    first = audit_calibration.EVAL_UNTUNED_FIRST
    kept = _report({"eval": [first, first], "train": [TRAIN_UNTUNED_FIRST, TRAIN_UNTUNED_FIRST]}, {"null": 0.0})
    kept["tiers"] = {"audit": {"version": AUDIT.version, "mechanisms": []}}
    out.write_text(json.dumps(kept))
    played: list[object] = []
    monkeypatch.setattr(audit_calibration, "calibrate", lambda *args: played.append(args))
    argv = ["audit_calibration", "--agents", "null", "--seeds", "1", "--out", str(out), "--version", "1"]
    monkeypatch.setattr("sys.argv", argv)
    with pytest.raises(SystemExit) as refused:
        audit_calibration.main()
    assert refused.value.code == 2 and "another version's results" in capsys.readouterr().err and not played
    monkeypatch.setattr("sys.argv", [*argv[:-1], "7"])
    with pytest.raises(SystemExit):
        audit_calibration.main()
    assert "has no version 7" in capsys.readouterr().err and not played
