"""The audit's findability check (lab/calibration/audit_findability.py): its kept result covers every eval task of
the audit, is what the page shows, and is what the check finds today; its measure of a departure reads a moved date
as moved and a quiet one as quiet."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lab import docs_blocks
from lab.calibration import audit_findability as findability
from lab.calibration import audit_findability_traces as traces
from lab.tests.helpers import ROOT
from metric_tracker_rl.catalog.task_splits import EVAL_SEEDS_PER_DIFFICULTY, task_range
from metric_tracker_rl.catalog.tiers import AUDIT, AUDIT_DEFECTS, AUDIT_HELD_OUT_DEFECTS
from metric_tracker_rl.generation.audit import standing

KEPT = json.loads(findability.ARTIFACT.read_text(encoding="utf-8"))


def test_the_kept_result_covers_every_audit_task_of_the_eval_split() -> None:
    audit = [task for task in task_range("eval") if task.get("difficulty") == "audit"]
    expected = [task for task in audit if task["version"] == findability.KEPT_VERSION]
    assert expected == findability.eval_tasks(EVAL_SEEDS_PER_DIFFICULTY)
    later = findability.eval_tasks(EVAL_SEEDS_PER_DIFFICULTY, version=2)  # the same seeds, at version 2
    assert later == [{**task, "version": 2} for task in expected] and expected + later == audit
    assert KEPT["tasks"]["count"] == len(expected) == EVAL_SEEDS_PER_DIFFICULTY
    assert KEPT["tasks"]["first_seed"] == AUDIT.calibration_seed_base == expected[0]["seed"]
    assert sorted(map(int, KEPT["by_seed"])) == [t["seed"] for t in expected]
    assert KEPT["rows_checked"] == sum(rows for rows, _ in KEPT["by_seed"].values())
    assert KEPT["unconfirmed_rows"] == sum(lost for _, lost in KEPT["by_seed"].values()) == len(KEPT["unconfirmed"])


def test_the_page_shows_the_kept_result() -> None:
    page = (ROOT / "lab/docs/audit.md").read_text(encoding="utf-8")
    shown = docs_blocks.shown(page, "audit-findability")
    assert shown == findability.table(KEPT)
    assert f"Rows checked: {KEPT['rows_checked']} " in shown and f"unconfirmed: {KEPT['unconfirmed_rows']}." in shown
    for mechanism, rows in KEPT["rows_by_mechanism"].items():
        lost = sum(row["mechanism"] == mechanism for row in KEPT["unconfirmed"])
        assert f"| {mechanism} | {rows} | {lost} |" in shown
    if len(KEPT["unconfirmed"]) <= findability.LISTED_ROWS:
        for row in KEPT["unconfirmed"]:
            assert f"| {row['seed']} | {row['mechanism']} | {row['date']} |" in shown


@pytest.mark.slow
def test_the_kept_result_is_what_the_check_finds_today() -> None:
    """Two tasks checked again, the first and one with the most unconfirmed rows: the same rows, the same verdicts."""
    worst = max(KEPT["by_seed"], key=lambda seed: (KEPT["by_seed"][seed][1], -int(seed)))
    for task in (
        findability.eval_tasks(1)[0],
        findability.eval_tasks(int(worst) - AUDIT.calibration_seed_base + 1)[-1],
    ):
        checks, _ = findability.check_task(task)
        assert [len(checks), sum(bool(c.why) for c in checks)] == KEPT["by_seed"][str(task["seed"])]
        kept = [(r["date"], r["metric"], r["why"]) for r in KEPT["unconfirmed"] if r["seed"] == task["seed"]]
        assert [(c.date, c.metric, c.why) for c in checks if c.why] == kept


def test_every_defect_the_audit_draws_has_its_trace_features_and_each_is_a_profile_feature() -> None:
    assert set(traces.TRACE_FEATURES) == {*AUDIT_DEFECTS, *AUDIT_HELD_OUT_DEFECTS}
    profile = {*findability.sql.PROFILE_FEATURES, *findability.sql.SIDE_FEATURES}
    assert {feature for features in traces.TRACE_FEATURES.values() for feature in features} <= profile


def test_the_control_is_kept_and_few_clean_dates_show_a_trace() -> None:
    """A trace confirms a defect's row only where noise rarely makes one: the kept control (the defects' segments'
    clean dates, read as a defect's date is) shows a trace on at most one clean date in twelve."""
    assert KEPT["clean_dates_checked"] > KEPT["rows_checked"]
    assert KEPT["clean_dates_with_trace"] <= KEPT["clean_dates_checked"] / 12


def test_a_trace_stands_against_its_clean_dates_and_a_steady_feature_does_not() -> None:
    """A feature the mechanism moves, steady on the clean dates and far off on the date, is a trace; the same
    profile's untouched feature, and the moved feature read as another mechanism's, are not."""
    rng = np.random.default_rng(3)
    clean = np.ones(56, dtype=bool)
    clean[30] = False
    profile = {"multi_transaction_share": rng.normal(0.02, 0.004, 56), "flagged_share": rng.normal(0.01, 0.002, 56)}
    profile["multi_transaction_share"][30] = 0.9
    feature, sds = traces.strongest_trace(profile, traces.TRACE_FEATURES["purchase_double_fire"], clean, 30)
    assert feature == "multi_transaction_share" and sds > traces.TRACE_SDS
    assert traces.strongest_trace(profile, traces.TRACE_FEATURES["debug_build"], clean, 30)[1] < 4


def test_a_trace_is_read_against_the_clean_dates_that_hold_sessions_enough() -> None:
    """A version's last clean dates, a handful of sessions each, swing wildly; read against them, a clear move on the
    defect's date stands nowhere, read against the dates with sessions enough it is a trace."""
    rng = np.random.default_rng(5)
    clean = np.ones(56, dtype=bool)
    sessions = np.where(np.arange(56) < 27, 400.0, 5.0)  # the version's last four weeks: a few sessions a date
    feature = rng.normal(1.1, 0.05, 56)
    feature[27:] = rng.uniform(5, 50, 29)
    clean[26] = False
    feature[26] = 4.0
    profile = {"first_touch_per_new": feature, "skipped_sid_share": rng.normal(0.02, 0.01, 56)}
    features = traces.TRACE_FEATURES["client_sampling"]
    assert traces.strongest_trace(profile, features, clean, 26)[1] < traces.TRACE_SDS
    found = traces.strongest_trace(profile, features, traces.referable(clean, sessions), 26)
    assert found[0] == "first_touch_per_new" and found[1] > traces.TRACE_SDS


def test_the_generator_keeps_only_worlds_whose_incident_rows_stand_past_the_checks_bar() -> None:
    """The audit draws a world again while an incident row stands within STANDING_SDS (generation/audit/standing.py,
    which reads a row as this check does): past DEPARTURE_SDS, so a row the generator keeps is one the check confirms
    however the two read a date's few peers."""
    assert standing.STANDING_SDS > findability.DEPARTURE_SDS
    assert (standing.NEAR_DAYS, standing.ROBUST_SD) == (findability.NEAR_DAYS, 1.4826)


def test_the_check_imports_nothing_of_an_agent() -> None:
    for module in (findability, findability.sql):
        tree = ast.parse(Path(str(module.__file__)).read_text(encoding="utf-8"))
        imported = [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)] + [
            alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
        ]
        assert not [name for name in imported if ".agents" in name or name.startswith("lab.agents")]


@settings(max_examples=40, deadline=None)
@given(
    level=st.floats(50.0, 5000.0),
    seed=st.integers(0, 2**16),
    day=st.integers(14, 41),
    factor=st.sampled_from([0.3, 0.5, 1.8, 3.0]),
)
def test_a_moved_date_departs_and_a_quiet_one_does_not(level: float, seed: int, day: int, factor: float) -> None:
    """Counts with a few percent of day-to-day noise: the date scaled by `factor` moves past the margin and far
    beyond the spread; the same date unscaled stays within it."""
    noise = np.random.default_rng(seed).normal(1.0, 0.02, 56)
    quiet = level * noise
    moved = quiet.copy()
    moved[day] *= factor
    clean = np.ones(56, dtype=bool)
    clean[day] = False
    usual, move, sds = findability.departure(moved, clean, day, "log")
    assert move > 0.1 and sds > findability.DEPARTURE_SDS
    assert math.isclose(usual, findability.clean_peer_median(quiet, clean, day))
    _, still, quiet_sds = findability.departure(quiet, clean, day, "log")
    assert still < 0.1 and quiet_sds < findability.DEPARTURE_SDS * 2


@pytest.mark.slow
@pytest.mark.parametrize(("seed", "mechanism"), [(80146, "untagged_load_test"), (80159, "bot_farm")])
def test_version_2s_bot_farm_and_load_test_in_the_biggest_web_segment_leave_their_trace(
    seed: int, mechanism: str
) -> None:
    """Two eval tasks of version 2 whose bot farm or load test lands in web US, the country with the most web
    sessions: sized by the segment's own sessions, each of its rows leaves a trace past the bar."""
    task = next(task for task in findability.eval_tasks(EVAL_SEEDS_PER_DIFFICULTY, version=2) if task["seed"] == seed)
    checks, _ = findability.check_task(task)
    rows = [check for check in checks if check.mechanism == mechanism]
    assert rows and {check.segment for check in rows} == {"platform=web, country=US"}
    assert all(not check.why and check.trace_sds > traces.TRACE_SDS for check in rows), rows
