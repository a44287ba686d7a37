"""The audit calibration's per-row credits (lab/calibration/audit_row_quality.py): the truth's own rows earn every
credit, a row with other values loses the values' credit and keeps the segment's, and the page shows the kept
run's."""

from __future__ import annotations

import json

import pytest

from lab import docs_blocks
from lab.calibration.audit_calibration import ARTIFACT, EXPERT, expected_keys
from lab.calibration.audit_row_quality import CREDITS, judged_rows, quality_by_mechanism, quality_table
from lab.tests.helpers import ROOT
from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.generation import build_episode

SEED = 85600  # an eval episode of the kept run's range, with defects and incidents


@pytest.mark.slow
def test_the_truths_rows_earn_every_credit_and_a_changed_row_loses_its_own() -> None:
    expected = list(build_episode(resolve_episode_config(seed=SEED, difficulty="audit")).truth.expected_rows)
    judged = judged_rows(SEED, expected)
    assert len(judged) == len(expected) and all(all(row[c] for c in CREDITS) for row in judged)
    first = expected[0]
    moved = first.model_copy(
        update={"observed_value": first.observed_value * 3 + 1, "delta_value": first.delta_value * 3 + 1}
    )
    (row,) = judged_rows(SEED, [moved])
    assert not row["values"] and not row["full"] and row["segment"]
    mechanisms = dict(expected_keys(SEED)[0])
    quality = quality_by_mechanism(
        [{"agent": EXPERT, "seed": SEED, "judged": judged}], {SEED: list(mechanisms.items())}, EXPERT
    )
    assert sum(stats["matched"] for stats in quality.values()) == len(expected)
    assert set(quality) == set(mechanisms.values())


def test_the_page_shows_the_kept_runs_credits() -> None:
    report = json.loads(ARTIFACT.read_text(encoding="utf-8"))
    shown = docs_blocks.shown((ROOT / "lab/docs/audit.md").read_text(encoding="utf-8"), "audit-row-quality")
    assert shown == quality_table(report)
    for split in report["splits"].values():
        for mechanism, stats in split.get("row_quality", {}).items():
            assert f"| {mechanism} |" in shown and 0.0 <= min(stats[c] for c in CREDITS) <= 1.0
