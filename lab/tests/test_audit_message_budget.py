"""The audit's message budget is its expert's need, as its step budget is: the kept calibration's p95 of an eval
episode's characters, rounded up; the expert's episodes on both splits fit it, and every other rung keeps the
rungs' budget."""

from __future__ import annotations

import json
import math

from lab.calibration.audit_calibration import ARTIFACT
from lab.speed.rung_budgets import (
    AUDIT_EXPERT_CHARS,
    BUDGETS,
    EPISODE_CHARS_STEP,
    WAREHOUSE_RULES_CHARS,
    episode_chars_budget,
)
from metric_tracker_rl.catalog.tiers import TIERS

EXPERT = "audit_expert"


def test_the_audits_message_budget_is_set_from_its_experts_p95() -> None:
    splits = json.loads(ARTIFACT.read_text())["splits"]
    need = splits["eval"]["chars_p95"][EXPERT]
    assert 100 * math.ceil(need / 100) == AUDIT_EXPERT_CHARS, need
    budget = episode_chars_budget("audit")
    assert budget == EPISODE_CHARS_STEP * math.ceil(need / EPISODE_CHARS_STEP)
    assert all(split["chars_p95"][EXPERT] <= budget for split in splits.values())
    assert all(split["calls_and_chars_p50"][EXPERT][1] <= budget for split in splits.values())


def test_every_other_rung_keeps_the_rungs_budget() -> None:
    """The rungs below share one budget; the warehouse's adds the room its brief's exact rules take."""
    own = {"audit", "warehouse"}
    assert {name: episode_chars_budget(name) for name in TIERS if name not in own} == {
        name: BUDGETS["episode_chars"] for name in TIERS if name not in own
    }
    assert episode_chars_budget("warehouse") == BUDGETS["episode_chars"] + WAREHOUSE_RULES_CHARS
