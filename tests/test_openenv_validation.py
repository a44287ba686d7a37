"""`openenv validate .`: the manifest in openenv.yaml passes, and the runtime level's episode probe holds on a
live server. The runtime level builds the Dockerfile's image; without a Docker engine it runs with --skip-build,
so here its probe is replayed against a local server with OpenEnv's own collector and graders instead."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openenv.validation.graders import Subject
from openenv.validation.graders.runtime.basic import (
    ObservationSchemaGrader,
    RewardWellFormedGrader,
    StateContractGrader,
)
from openenv.validation.parsers.openenv_yaml import OpenEnvYamlParser
from openenv.validation.runner import run_validation
from openenv.validation.runtime.collector import collect_runtime_evidence
from openenv.validation.runtime.contracts import load_runtime_plan
from openenv.validation.types import CheckStatus, Level, Verdict

from metric_tracker_rl import __version__
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.serving.manifest import MANIFEST, main, manifest_text

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # runs OpenEnv's validator (the manifest's fields are checked in tests/test_packaging.py)
def test_the_manifest_passes_the_static_level() -> None:
    report = run_validation(ROOT, max_level=Level.STATIC)
    assert [(r.check_id, r.status) for r in report.results] == [("static.manifest", CheckStatus.PASS)]
    assert report.verdict is Verdict.PASS


@pytest.mark.slow  # runs OpenEnv's validator
def test_without_an_image_build_only_build_dependent_checks_are_skipped() -> None:
    report = run_validation(ROOT, skip_build=True)
    statuses = {r.check_id: r.status for r in report.results}
    assert statuses["static.manifest"] is CheckStatus.PASS
    startup = next(r for r in report.results if r.check_id == "runtime.startup")
    assert startup.status is CheckStatus.SKIP and "--skip-build" in startup.evidence[0]
    assert not {CheckStatus.FAIL, CheckStatus.ERROR} & set(statuses.values())
    assert report.verdict is not Verdict.FAIL  # `openenv validate` exits 1 only on FAIL


def test_declared_task_counts_are_the_served_splits() -> None:
    manifest = OpenEnvYamlParser().parse(ROOT)
    served = {split["name"]: split["num_tasks"] for split in MetricTrackerRlEnvironment().list_splits()}
    assert manifest.capabilities.task_api and manifest.capabilities.declared_task_count == served


def test_the_committed_manifest_is_the_generated_one() -> None:
    """openenv.yaml is written by `python -m metric_tracker_rl.serving.manifest`: run it after listing a tier."""
    assert (ROOT / MANIFEST).read_text(encoding="utf-8") == manifest_text()


def test_the_generator_writes_the_manifest_with_the_served_counts(tmp_path: Path) -> None:
    assert main([str(tmp_path)]) == 0
    manifest = OpenEnvYamlParser().parse(tmp_path)
    served = {split["name"]: split["num_tasks"] for split in MetricTrackerRlEnvironment().list_splits()}
    assert manifest.capabilities.declared_task_count == served and manifest.version == __version__


@pytest.mark.parametrize(
    "grader", [RewardWellFormedGrader(), ObservationSchemaGrader(), StateContractGrader()], ids=lambda g: g.check_id
)
def test_the_runtime_probe_passes_openenvs_runtime_graders(server_url: str, grader: object) -> None:
    manifest = OpenEnvYamlParser().parse(ROOT)
    plan = load_runtime_plan(ROOT, manifest.execution)
    evidence = collect_runtime_evidence(server_url, plan, episode_timeout_s=manifest.resources.episode_timeout_s)
    assert evidence.failure_reason is None
    final = json.loads(evidence.exchanges[-2].response_json)["data"]  # the last step (a state query follows)
    assert final["observation"]["status"] == "graded" and final["done"] is True
    assert final["observation"]["reward_breakdown"]["score"] == 1.0  # the probe's submission solves the task
    subject = Subject(
        root=ROOT,
        manifest=manifest,
        image_ref=None,
        running=None,
        outputs_dir=ROOT / "outputs",
        runtime_evidence=evidence,
    )
    result = grader.run(subject)
    assert result.status is CheckStatus.PASS, result.evidence
