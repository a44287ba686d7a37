"""A calibration writes an untracked file unless told to keep its results, and a run of some of the audit's agents
plays the seeds of the results it merges into, or refuses other seeds before it plays a single episode."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lab.calibration import audit_calibration, warehouse_calibration
from lab.calibration.outputs import KEPT, ROOT, RUNS


class Played(Exception):
    """Raised in place of playing: the run got as far as its episodes."""


def run_audit(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> dict[str, list[int]]:
    """The seeds a run of audit_calibration with `argv` would play (SystemExit when it refuses first)."""
    asked: dict[str, list[int]] = {}

    def calibrate(
        seeds: dict[str, list[int]], agents: tuple[str, ...], workers: int, version: int | None = None
    ) -> dict[str, Any]:
        asked.update(seeds)
        raise Played

    monkeypatch.setattr(audit_calibration, "calibrate", calibrate)
    monkeypatch.setattr(sys, "argv", ["audit_calibration", *argv])
    with pytest.raises(Played):
        audit_calibration.main()
    return asked


def kept_seeds() -> dict[str, list[int]]:
    return json.loads(audit_calibration.ARTIFACT.read_text())["seeds"]


def test_a_run_writes_under_the_ignored_runs_folder_unless_told_to_keep(monkeypatch: pytest.MonkeyPatch) -> None:
    assert audit_calibration.ARTIFACT.parent == KEPT and warehouse_calibration.ARTIFACT.parent == KEPT
    ignored = subprocess.run(["git", "check-ignore", "-q", str(RUNS / "x.json")], cwd=ROOT, check=False)
    assert ignored.returncode == 0, "lab/runs/ is not ignored by git"
    written: list[Path] = []
    monkeypatch.setattr(Path, "write_text", lambda path, text, *a, **k: written.append(path))
    monkeypatch.setattr(Path, "mkdir", lambda *a, **k: None)
    for flags, expected in (([], RUNS), (["--keep"], KEPT)):
        monkeypatch.setattr(audit_calibration, "calibrate", lambda seeds, agents, workers, version=None: {"splits": {}})
        monkeypatch.setattr(sys, "argv", ["audit_calibration", "--seeds", "1", *flags])
        audit_calibration.main()
        assert written.pop() == expected / "audit_calibration.json"


def test_a_run_of_some_agents_plays_the_kept_runs_seeds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seeds = run_audit(["--agents", "audit_expert", "--out", str(tmp_path / "a.json")], monkeypatch)
    assert {split: [played[0], played[-1]] for split, played in seeds.items()} == kept_seeds()


def test_a_run_of_some_agents_on_other_seeds_refuses_before_playing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    kept = kept_seeds()
    count = kept["eval"][1] - kept["eval"][0] + 1
    monkeypatch.setattr(sys, "argv", ["x", "--agents", "audit_expert", "--seeds", str(count + 1)])
    monkeypatch.setattr(audit_calibration, "calibrate", lambda *a: pytest.fail("played before refusing"))
    with pytest.raises(SystemExit) as refused:
        audit_calibration.main()
    assert refused.value.code == 2
    assert f"run with --seeds {count} --skip {kept['eval'][0] - audit_calibration.EVAL_UNTUNED_FIRST}" in (
        capsys.readouterr().err
    )
    every = run_audit(["--seeds", "2", "--out", str(tmp_path / "b.json")], monkeypatch)  # every agent: any seeds
    assert len(every["eval"]) == 2
