"""The serving figures on the lab's pages are the kept serving runs' (the warehouse's on the performance page, the
audit's on its calibration page), and each run held the rung's memory budgets."""

from __future__ import annotations

import json

import pytest

from lab.tests.helpers import ROOT


@pytest.mark.parametrize(
    ("artifact", "page"), [("warehouse_serving.json", "performance.md"), ("audit_serving.json", "audit.md")]
)
def test_the_doc_shows_the_kept_serving_run_which_holds_the_memory_budgets(artifact: str, page: str) -> None:
    """The page's serving figures are the kept run's (lab/speed/warehouse_serving.py), and that run held 64 sessions
    within the rung's memory budgets."""
    run = json.loads((ROOT / "lab" / "artifacts" / artifact).read_text(encoding="utf-8"))
    doc = " ".join((ROOT / "lab" / "docs" / page).read_text(encoding="utf-8").split())
    assert run["sessions"] == 64 and run["mb_per_session"] <= run["budgets"]["mb_per_session"]
    assert run["held_mb"] <= run["budgets"]["held_mb_64"]
    shown = [
        f"{run['mb_per_session']:.1f} MB a session",
        f"{run['held_mb'] / 1024:.1f} GB",
        f"{run['server_process_mb_per_session']:.1f} MB a session in the server process",
        f"{run['reset_p50_s']:.2f} s at the median",
        f"{run['reset_p95_s']:.1f} s at p95",
        f"{run['reset_cpu_p50_s']:.2f} s (p95 {run['reset_cpu_p95_s']:.2f} s) of CPU time",
    ]
    assert all(text in doc for text in shown), [text for text in shown if text not in doc]
