"""The generic auditor (lab/agents/audit_generic.py): it plays an audit episode through the real environment within
the tier's step budget, every statement within the query tool's limits, and submits one report the grader accepts
row by row; and it imports nothing of the generator or the grader (it reads only what a model reads)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from lab.agents.audit_generic import first_departing
from lab.agents.registry import make_agent
from metric_tracker_rl.agents import run_episode
from metric_tracker_rl.catalog.task_splits import TRAIN_SEED_BASE, UNTUNED_FIRST_OFFSET
from metric_tracker_rl.catalog.tiers import AUDIT
from metric_tracker_rl.models import MetricTrackerRlAction, MetricTrackerRlObservation
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.sql.sandbox import WAREHOUSE_MAX_SQL_CHARS

AGENT_MODULES = ("audit_generic.py", "audit_generic_sql.py")
AGENTS_DIR = Path(__file__).resolve().parents[1] / "agents"
# What the auditor may not know: how episodes are drawn and how they are graded.
FORBIDDEN = (
    "metric_tracker_rl.generation",
    "metric_tracker_rl.grading",
    "metric_tracker_rl.agents.warehouse_traces",
    "metric_tracker_rl.agents.warehouse_expert",
    "metric_tracker_rl.agents.audit_finders",
)


def _play(seed: int) -> tuple[list[MetricTrackerRlAction], list[MetricTrackerRlObservation]]:
    env = MetricTrackerRlEnvironment()
    sent: list[MetricTrackerRlAction] = []

    def step(action: MetricTrackerRlAction) -> MetricTrackerRlObservation:
        sent.append(action)
        return env.step(action)

    seen = run_episode(make_agent("generic_auditor"), env.reset, step, seed=seed, difficulty="audit")
    return sent, seen


@pytest.mark.parametrize(
    "seed",
    [
        AUDIT.calibration_seed_base + UNTUNED_FIRST_OFFSET + 1,
        pytest.param(TRAIN_SEED_BASE + 20_001, marks=pytest.mark.slow),
    ],
)
def test_plays_an_audit_episode_within_its_budget(seed: int) -> None:
    sent, seen = _play(seed)
    assert len(sent) <= AUDIT.max_steps
    assert [o.status for o in seen[:-1]] == ["ok"] * (len(seen) - 1), [o.message for o in seen if o.status == "error"]
    statements = [str(a.analysis_args["sql"]) for a in sent if a.analysis_method == "query"]
    assert statements and all(len(sql) <= WAREHOUSE_MAX_SQL_CHARS for sql in statements)
    reports = [a for a in sent if a.classifications is not None]
    assert len(reports) == 1 and reports[0] is sent[-1] and reports[0].classifications
    final = seen[-1]
    assert final.status == "graded" and final.done and final.episode_score is not None
    assert not final.submission_issues, final.submission_issues
    breakdown = final.reward_breakdown
    assert breakdown is not None and breakdown.invalid_row_count == breakdown.duplicate_row_count == 0


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


@pytest.mark.parametrize("module", AGENT_MODULES)
def test_imports_nothing_of_the_generator_or_grader(module: str) -> None:
    imported = _imports(AGENTS_DIR / module)
    assert imported, "the module imports something"
    assert not [name for name in imported if name.startswith(FORBIDDEN)]
    # of the lab, only the registry and its own statements (no other lab agent's knowledge)
    lab_imports = {name for name in imported if name.startswith("lab.")}
    assert all(name.startswith(("lab.agents.registry", "lab.agents.audit_generic_sql")) for name in lab_imports)


def test_a_defect_row_is_on_the_first_metric_that_departs() -> None:
    # app_opens departs by 50% and a rate by 80%: the first in the brief's order (app_opens) holds the row
    assert first_departing({0: (150.0, 100.0), 2: (0.2, 1.0)}) == 0
    # app_opens within the margin: the rate
    assert first_departing({0: (105.0, 100.0), 2: (0.2, 1.0)}) == 2
    # nothing departs by more than the margin: no row
    assert first_departing({0: (105.0, 100.0), 5: (91.0, 100.0)}) is None
