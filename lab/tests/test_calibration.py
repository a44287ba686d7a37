"""Benchmark calibration on a small sweep: the expert proves every task solvable from public tools, and no
baseline or single-tool shortcut gets near it. A regression in the generator, the tools or the grader that
breaks one of these bounds fails here."""

from __future__ import annotations

import ast
import itertools
import json
import secrets
from pathlib import Path

import numpy as np
import pytest

from lab.agents.registry import known_agents, make_agent
from lab.calibration.audit_calibration import AUDIT_AGENTS
from lab.calibration.calibrate import (
    AGENT_RESET_OVERRIDES,
    CALIBRATED_DIFFICULTIES,
    DEEP_ONLY_AGENTS,
    EVALUATION_AGENTS,
    LISTED_TIER_AGENTS,
    NULL_GROUP,
    PUBLISHED_RESULTS,
    REPLAYING_AGENTS,
    UNTUNED,
    calibrate,
    difficulty_table,
    episode_plan,
    kept_with,
    main,
    mean_interval,
    means_table,
    merge_problem,
    merged,
    named_task_groups,
    null_group,
    null_table,
    table,
    untuned_table,
)
from lab.calibration.warehouse_calibration import WAREHOUSE_AGENTS
from lab.tests.helpers import ROOT, markdown_table_with_header
from metric_tracker_rl import MetricTrackerRlAction
from metric_tracker_rl.agents import run_episode
from metric_tracker_rl.analysis_tools import GENERATOR_NAMES
from metric_tracker_rl.analysis_tools.registry import MAX_PAGE_ROWS
from metric_tracker_rl.catalog.published import (
    AGGREGATE_DIFFICULTIES as DIFFICULTIES,  # frontier: test_frontier_calibration
)
from metric_tracker_rl.catalog.task_splits import UNTUNED_FIRST_OFFSET
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment

SEEDS = 20
# The calibration targets (lab/docs/calibration.md) are stated on 200 seeds; 40 is the smallest sweep on which each
# of them holds with the same seeds every run (the sweep is deterministic), so a regression in any of them fails here.
TARGET_SEEDS = 40
GAMING_AGENTS = ("top_k_dates", "top_k_dates_shift_aware", "side_effect_padder", "weekday_rule", "feedback_decoder")
# Annotations, four generators at their defaults and the published magnitude ranges as a filter: the threshold
# shortcut that hard's overlapping swings and count incidents take away.
FIXED_RULE = "fixed_rule"
NEXT_DATE_PADDER = "next_date_padder"  # the expert plus guessed second dates: near the expert, never above it
# Partial investigations, not exploits: they read each date's evidence from the tools without the expert's care.
SHALLOW_AGENTS = ("top_k_dates_shift_checked", "shallow_reader")
REPLAYER = "seed_replayer"
# The one agent that may rebuild the episode from its seed: replaying the public generator is its exploit.
REPLAY_MODULES = ("metric_tracker_rl.generation", "metric_tracker_rl.catalog.tasks")
# The package's reference agents and the calibration's exploits (lab/agents/).
AGENT_DIRS = (
    Path(__file__).resolve().parents[2] / "metric_tracker_rl" / "agents",
    Path(__file__).resolve().parents[2] / "lab" / "agents",
)
FORBIDDEN_MODULES = (
    "server",
    "metric_tracker_rl.generation",
    "metric_tracker_rl.grading",
    "metric_tracker_rl.catalog.tasks",
    "metric_tracker_rl.analysis_tools",
    "metric_tracker_rl.world.daily_panel",
    "metric_tracker_rl.world.funnel",
)


@pytest.fixture(scope="module")
def results() -> dict:
    return calibrate(
        [
            name
            for name in LISTED_TIER_AGENTS
            if name not in (*GAMING_AGENTS, *SHALLOW_AGENTS, FIXED_RULE, NEXT_DATE_PADDER, REPLAYER)
        ],
        SEEDS,
        progress=False,
        difficulties=DIFFICULTIES,
    )["agents"]


@pytest.fixture(scope="module")
def target_sweep() -> dict:
    """The expert (one submission) and the gaming agents on the larger sweep the targets are read on (a
    test that uses it is slow: see conftest)."""
    return calibrate(
        ["expert", *GAMING_AGENTS, *SHALLOW_AGENTS, FIXED_RULE, NEXT_DATE_PADDER, REPLAYER],
        TARGET_SEEDS,
        progress=False,
        difficulties=DIFFICULTIES,
    )["agents"]


def test_every_reference_agent_is_registered() -> None:
    assert {
        "null",
        "random",
        "mass_generators",
        "mass_grid",
        "readme_baseline",
        "expert",
        *GAMING_AGENTS,
        *SHALLOW_AGENTS,
        FIXED_RULE,
        NEXT_DATE_PADDER,
        REPLAYER,
    } <= set(known_agents())


def test_a_default_run_plays_every_registered_agent_but_deeps_own() -> None:
    assert sorted(known_agents()) == sorted(
        [*LISTED_TIER_AGENTS, *DEEP_ONLY_AGENTS, *REPLAYING_AGENTS, *WAREHOUSE_AGENTS, *AUDIT_AGENTS]
    )


def test_agents_read_only_public_modules() -> None:
    for path in (path for directory in AGENT_DIRS for path in directory.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                if path.name == "seed_replay.py" and name.startswith(REPLAY_MODULES):
                    continue
                assert not name.startswith(FORBIDDEN_MODULES), f"{path.name} imports {name}"


@pytest.mark.parametrize("task_id", ["easy_two_spikes", "medium_mixed_three", "hard_mixed_multi"])
@pytest.mark.slow
def test_expert_solves_named_tasks(results: dict, task_id: str) -> None:
    assert results["expert"][task_id]["mean"] >= 0.95, task_id


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_expert_solves_the_sweep(target_sweep: dict, difficulty: str) -> None:
    stats = target_sweep["expert"][difficulty]
    assert stats["mean"] >= 0.95
    assert stats["share_ge_0_9"] >= 0.95


@pytest.mark.slow
def test_empty_report_is_right_only_on_null_episodes(results: dict) -> None:
    for difficulty in DIFFICULTIES:
        assert results["null"][difficulty]["mean"] <= 0.05
    assert results["null"][NULL_GROUP]["min"] == 1.0


@pytest.mark.slow
def test_expert_reports_nothing_on_null_episodes(results: dict) -> None:
    """A rate move under half the smallest published rate effect is noise to the expert, whatever its z."""
    assert results["expert"][NULL_GROUP]["min"] == 1.0


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
@pytest.mark.slow
def test_gaming_agents_stay_at_the_floor(results: dict, difficulty: str) -> None:
    assert results["random"][difficulty]["mean"] <= 0.05
    for agent in ("mass_generators", "mass_grid"):
        assert results[agent][difficulty]["mean"] <= 0.15, agent
        assert results[agent][NULL_GROUP]["mean"] <= 0.15, agent


@pytest.mark.parametrize("difficulty", ["medium", "hard"])
@pytest.mark.slow
def test_readme_baseline_is_clearly_below_the_expert(results: dict, difficulty: str) -> None:
    assert results["readme_baseline"][difficulty]["mean"] <= 0.70
    assert results["readme_baseline"][difficulty]["mean"] <= results["expert"][difficulty]["mean"] - 0.25


@pytest.mark.parametrize("difficulty", ["medium", "hard"])
@pytest.mark.slow
def test_the_offline_baseline_is_a_floor_not_a_solution(results: dict, difficulty: str) -> None:
    # inference.py's fixed four-step procedure (its figures: lab/docs/calibration.md).
    assert results["scripted"][difficulty]["mean"] <= 0.6
    assert results["scripted"][difficulty]["mean"] <= results["expert"][difficulty]["mean"] - 0.25


def _single_tool_best(task_id: str, method: str) -> float:
    """Best score of one generator called once, over a sweep of thresholds."""
    env = MetricTrackerRlEnvironment()
    best = 0.0
    if method == "get_rows_with_abs_diff_from_median_gt":  # metric units, so it cannot be a payload generator
        for threshold in np.geomspace(1e-4, 1e5, 28):
            env.reset(task_id=task_id)
            rows = env.step(
                MetricTrackerRlAction(
                    analysis_method=method, analysis_args={"threshold": float(threshold), "limit": MAX_PAGE_ROWS}
                )
            ).analysis_result
            if rows["row_count"] and rows["next_offset"] is None:  # every row on one page
                best = max(best, env.step(MetricTrackerRlAction(classifications=rows["rows"])).reward)
        return best
    for threshold in np.geomspace(0.1, 40, 24):
        env.reset(task_id=task_id)
        observation = env.step(
            MetricTrackerRlAction(
                payload_generators=[{"method_name": method, "threshold_multiplier": float(threshold)}]
            )
        )
        if observation.status == "graded":
            best = max(best, observation.reward)
    return best


@pytest.mark.slow
@pytest.mark.parametrize("task_id", ["medium_mixed_three", "hard_mixed_multi"])
def test_no_single_generator_solves_a_mixed_task(task_id: str) -> None:
    scores = {method: _single_tool_best(task_id, method) for method in GENERATOR_NAMES}
    assert max(scores.values()) < 0.9, scores
    assert max(scores.values()) > 0.0  # the sweep reached graded submissions at all


def test_agents_are_deterministic_given_the_episode() -> None:
    def submitted(agent_name: str, seed: int) -> list[dict]:
        env = MetricTrackerRlEnvironment()
        results = run_episode(make_agent(agent_name), env.reset, env.step, seed=seed, difficulty="hard")
        return [row.model_dump() for obs in results for row in obs.submitted_rows]

    for agent_name in ("random", "expert"):
        assert submitted(agent_name, 7) == submitted(agent_name, 7)
    assert submitted("random", 7) != submitted("random", 8)


def test_calibrate_command_writes_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "calibration.json"
    main(["--seeds", "10", "--agents", "null", "--output", str(output), "--quiet"])
    printed = capsys.readouterr().out
    assert "| null |" in printed
    data = json.loads(output.read_text())
    groups = {spec.group for spec in episode_plan(10)} | {null_group(d) for d in data["difficulties"]}
    assert set(data["agents"]["null"]) == groups
    assert data["agents"]["null"][NULL_GROUP]["n"] == len(data["difficulties"])  # one per difficulty in 10 seeds
    assert all(data["agents"]["null"][null_group(d)]["n"] == 1 for d in data["difficulties"])


def test_an_untuned_run_is_kept_beside_the_eval_figures(tmp_path: Path) -> None:
    """`--untuned --merge` sweeps each tier from UNTUNED_FIRST_OFFSET and keeps the run under the file's untuned
    entry; the eval figures stay as they were, and a later untuned run of one tier replaces that tier only."""
    output = tmp_path / "calibration.json"
    main(
        [
            "--seeds",
            "10",
            "--agents",
            "null,random",
            "--difficulties",
            "easy,medium",
            "--no-named-tasks",
            "--output",
            str(output),
            "--quiet",
        ]
    )
    kept = json.loads(output.read_text())
    main(
        [
            "--seeds",
            "10",
            "--agents",
            "null,random",
            "--difficulties",
            "easy,medium",
            "--untuned",
            "--merge",
            "--output",
            str(output),
            "--quiet",
        ]
    )
    data = json.loads(output.read_text())
    assert {key: value for key, value in data.items() if key != UNTUNED} == kept
    untuned = data[UNTUNED]
    assert untuned["first_offset"] == UNTUNED_FIRST_OFFSET and untuned["tasks"] == []
    assert [spec.reset_kwargs["seed"] for spec in episode_plan(10, (), ("easy",), UNTUNED_FIRST_OFFSET)] == list(
        range(10_000 + UNTUNED_FIRST_OFFSET, 10_010 + UNTUNED_FIRST_OFFSET)
    )  # easy's base is 10,000
    assert untuned["agents"]["null"]["easy null"]["mean"] == 1.0
    redone = {
        **untuned,
        "difficulties": ["medium"],
        "agents": {name: {"medium": {**groups["medium"], "mean": 0.5}} for name, groups in untuned["agents"].items()},
    }
    both = kept_with(data, redone, untuned=True)
    assert both[UNTUNED]["agents"]["random"]["medium"]["mean"] == 0.5
    assert both[UNTUNED]["agents"]["random"]["easy"] == untuned["agents"]["random"]["easy"]
    assert "| random | 0.0" in untuned_table(data) and "easy null eval → untuned" in untuned_table(data, nulls=True)


def test_the_mean_interval_is_a_fixed_bootstrap_around_the_mean() -> None:
    scores = np.array([0.0, 0.5, 1.0, 1.0, 1.0, 0.25, 1.0, 0.75])
    low, high = mean_interval(scores)
    assert [low, high] == mean_interval(scores.copy())  # the same scores, the same interval
    assert scores.min() <= low < scores.mean() < high <= scores.max()
    assert mean_interval(np.ones(30)) == [1.0, 1.0]


def test_seed_replay_rebuilds_open_episodes_only(target_sweep: dict) -> None:
    for group, stats in target_sweep[REPLAYER].items():
        assert stats["min"] == 1.0, group
    held_out = calibrate([REPLAYER], SEEDS, progress=False, held_out=True, difficulties=DIFFICULTIES)["agents"][
        REPLAYER
    ]
    for difficulty in DIFFICULTIES:
        assert held_out[difficulty]["mean"] <= 0.05, difficulty


# Episodes per difficulty the replay oracle plays (each replays its episode once per candidate row, up to 48 times).
ORACLE_SEEDS = 6


@pytest.mark.slow
def test_the_replay_oracle_reads_open_episodes_and_nothing_in_held_out_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """Graded feedback on replays of an episode's settings labels each candidate row; a report of the hits scores
    well where a reset gives the same episode again, and nothing where every reset draws a fresh one. The fresh
    draws' nonces come from a counter here, not from the system's randomness: each reset still draws an episode of
    its own, and the test sees the same ones every run."""
    nonces = itertools.count()
    monkeypatch.setattr(secrets, "token_hex", lambda nbytes=16: f"{next(nonces):0{2 * nbytes}x}")
    [oracle] = REPLAYING_AGENTS
    open_run = calibrate([oracle], ORACLE_SEEDS, progress=False, difficulties=DIFFICULTIES, task_ids=())
    held_out = calibrate([oracle], ORACLE_SEEDS, progress=False, held_out=True, difficulties=DIFFICULTIES, task_ids=())
    assert max(open_run["agents"][oracle][difficulty]["mean"] for difficulty in DIFFICULTIES) >= 0.5
    for difficulty in DIFFICULTIES:
        assert held_out["agents"][oracle][difficulty]["mean"] <= 0.05, difficulty


def test_feedback_decoder_plays_a_curriculum_budget() -> None:
    env = MetricTrackerRlEnvironment()
    full_budget_runs = 0
    for seed in range(30_001, 30_006):  # a perfect probe ends its episode early: look at those that do not
        spec = {"seed": seed, "difficulty": "hard", **AGENT_RESET_OVERRIDES["feedback_decoder"]}
        results = run_episode(make_agent("feedback_decoder"), env.reset, env.step, **spec)
        graded = [obs for obs in results if obs.status == "graded"]
        assert len(graded) == 3 or graded[-1].reward_breakdown.score == 1.0
        if len(graded) == 3:
            full_budget_runs += 1
            assert graded[0].reward_breakdown.anomaly_type_accuracy is None  # probes see coarse feedback only
            assert graded[-1].reward_breakdown.anomaly_type_accuracy is not None
        assert env.reset(**spec).config["standard"] is False
    assert full_budget_runs > 0
    single = run_episode(make_agent("feedback_decoder"), env.reset, env.step, seed=20_001, difficulty="medium")
    assert sum(obs.status == "graded" for obs in single) == 1


@pytest.mark.parametrize("difficulty", ["medium", "hard"])
def test_gaming_agents_stay_below_the_expert(target_sweep: dict, difficulty: str) -> None:
    for agent in GAMING_AGENTS:
        expert = target_sweep["expert"][difficulty]["mean"]
        assert target_sweep[agent][difficulty]["mean"] <= expert - 0.5, agent


def test_the_fixed_magnitude_rule_fails_hard(target_sweep: dict) -> None:
    """On hard, demand swings as large as count incidents fall inside the published count ranges, so a filter on the
    published magnitudes reports them, and audience swings move the first steps as far as rate incidents. The rule
    is the shortcut at full strength, not a weakened one: on medium, where the ranges still sit clear of every benign
    fluctuation, it solves most episodes (lab/docs/calibration.md has the figures)."""
    assert target_sweep[FIXED_RULE]["hard"]["mean"] <= 0.6
    assert target_sweep[FIXED_RULE]["hard"]["mean"] <= target_sweep["expert"]["hard"]["mean"] - 0.4
    assert target_sweep[FIXED_RULE]["medium"]["mean"] >= 0.85


def test_weekday_rule_fails_hard(target_sweep: dict) -> None:
    assert target_sweep["weekday_rule"]["hard"]["mean"] <= 0.6


@pytest.mark.parametrize("difficulty", ["medium", "hard"])
def test_other_gaming_agents_stay_low(target_sweep: dict, difficulty: str) -> None:
    for agent in ("top_k_dates", "side_effect_padder", "feedback_decoder"):
        assert target_sweep[agent][difficulty]["mean"] <= 0.3, agent


@pytest.mark.parametrize("difficulty", ["medium", "hard"])
def test_guessing_that_an_incident_lasts_two_dates_does_not_pay(target_sweep: dict, difficulty: str) -> None:
    stats = target_sweep[NEXT_DATE_PADDER][difficulty]["mean"]
    assert stats <= target_sweep["expert"][difficulty]["mean"] - 0.05


def test_a_top_k_agent_that_knows_the_timing_shift_rule_stays_low(target_sweep: dict) -> None:
    # Timing shifts also land on incident dates, so dropping every date
    # whose app-open and menu-open mixes both moved drops incidents with the decoys.
    for difficulty in ("medium", "hard"):
        assert target_sweep["top_k_dates_shift_aware"][difficulty]["mean"] <= 0.3, difficulty


@pytest.mark.parametrize("difficulty", ["medium", "hard"])
def test_shallow_reading_earns_partial_credit_well_below_the_expert(target_sweep: dict, difficulty: str) -> None:
    """Reading each flagged date's strongest key and its generator's family guess is an investigation, only a
    shallow one: it earns partial credit, far from the careful reading, and no more with the visible count than
    without it."""
    expert = target_sweep["expert"][difficulty]["mean"]
    for agent in SHALLOW_AGENTS:
        assert 0.3 <= target_sweep[agent][difficulty]["mean"] <= expert - 0.25, agent
    assert (
        target_sweep["top_k_dates_shift_checked"][difficulty]["mean"]
        <= target_sweep["shallow_reader"][difficulty]["mean"] + 0.05
    )


def published_tables() -> list[tuple[str, str]]:
    """(doc, rendered table) of every calibration table the docs show, rendered from the kept results file."""
    results = json.loads(PUBLISHED_RESULTS.read_text())
    return [
        ("lab/docs/calibration.md", table(results)),
        ("lab/docs/calibration.md", null_table(results)),
        ("lab/docs/calibration.md", untuned_table(results)),
        ("lab/docs/calibration.md", untuned_table(results, nulls=True)),
        ("lab/docs/calibration.md", difficulty_table(results, "frontier")),
        ("lab/docs/calibration.md", difficulty_table(results, "deep")),
        ("README.md", means_table(results)),
        ("docs/evaluation.md", table(results, EVALUATION_AGENTS)),
        ("docs/evaluation.md", null_table(results, EVALUATION_AGENTS)),
    ]


@pytest.mark.parametrize(("doc", "rendered"), published_tables(), ids=lambda v: v if v.endswith(".md") else "")
def test_the_docs_calibration_tables_are_the_kept_results_rendered(doc: str, rendered: str) -> None:
    """Each table is what lab/calibration/calibrate.py renders from lab/artifacts/calibration.json: a new run written
    there, or an edit by hand to a table, fails here until the docs show the file's numbers."""
    shown = markdown_table_with_header((ROOT / doc).read_text(encoding="utf-8"), rendered.splitlines()[0])
    assert shown is not None, f"{doc} has no table headed {rendered.splitlines()[0]!r}"
    assert shown == rendered


def test_the_kept_results_cover_every_agent_and_difficulty() -> None:
    results = json.loads(PUBLISHED_RESULTS.read_text())
    assert tuple(results["agents"]) == LISTED_TIER_AGENTS and results["seeds_per_difficulty"] == 200
    assert results["difficulties"] == list(CALIBRATED_DIFFICULTIES)
    tier_nulls = {null_group(difficulty) for difficulty in CALIBRATED_DIFFICULTIES}
    assert all(
        set(stats) == {*named_task_groups(results), *CALIBRATED_DIFFICULTIES, NULL_GROUP, *tier_nulls}
        for stats in results["agents"].values()
    )
    untuned = results[UNTUNED]
    assert (untuned["first_offset"], untuned["seeds_per_difficulty"]) == (UNTUNED_FIRST_OFFSET, 200)
    assert tuple(untuned["agents"]) == LISTED_TIER_AGENTS
    assert untuned["difficulties"] == list(CALIBRATED_DIFFICULTIES)
    assert all(
        set(stats) == {*CALIBRATED_DIFFICULTIES, NULL_GROUP, *tier_nulls} for stats in untuned["agents"].values()
    )


def test_the_table_check_catches_an_edited_number() -> None:
    results = json.loads(PUBLISHED_RESULTS.read_text())
    rendered = table(results)
    edited = rendered.replace("| expert | 1.000 |", "| expert | 0.999 |")
    assert edited != rendered
    assert markdown_table_with_header(f"text\n\n{edited}\n\nmore", rendered.splitlines()[0]) == edited != rendered


def test_a_new_named_tasks_figures_merge_into_the_kept_results() -> None:
    """`--tasks X --no-sweep --merge` adds task X's column to every agent and keeps every other figure."""
    kept = json.loads(PUBLISHED_RESULTS.read_text())
    without = {
        **kept,
        "tasks": kept["tasks"][:-1],
        "agents": {
            name: {group: stats for group, stats in groups.items() if group != kept["tasks"][-1]}
            for name, groups in kept["agents"].items()
        },
    }
    run = {
        "tasks": kept["tasks"][-1:],
        "difficulties": [],
        "agents": {name: {kept["tasks"][-1]: groups[kept["tasks"][-1]]} for name, groups in kept["agents"].items()},
    }
    assert merged(without, run) == kept
    assert table(merged(without, run)) == table(kept)
    assert merge_problem(without, list(kept["agents"]), False, None) is None
    assert "--agents" in merge_problem(without, ["expert"], False, None)
    assert "--held-out" in merge_problem(without, list(kept["agents"]), True, None)
    assert "--seeds 200" in merge_problem(without, list(kept["agents"]), False, 40)
    assert "names none" in merge_problem(None, ["expert"], False, None)
