"""Analysis tools: one registry, schemas that validate their examples, clear errors, no labels."""

from __future__ import annotations

import ast
import dataclasses
import json
import re

import pytest
from core_helpers import REFERENCE_TOOL_NAMES, ROOT, episode, reset_episode

from metric_tracker_rl import MetricSubmissionRow, MetricTrackerRlAction, PayloadGeneratorMethod
from metric_tracker_rl.analysis_tools import TOOL_REGISTRY, available_analysis_methods, generate_rows, run_tool
from metric_tracker_rl.analysis_tools.registry import DEFAULT_PAGE_ROWS, MAX_PAGE_ROWS
from metric_tracker_rl.catalog.published import CONVERSION_METRIC_NAMES
from metric_tracker_rl.checks import check_plain_json
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.world.context import CONTEXT_TABLES
from metric_tracker_rl.world.public_episode import PublicEpisode

TOOL_MODULES = sorted((ROOT / "metric_tracker_rl" / "analysis_tools").rglob("*.py"))


def test_every_reference_tool_exists() -> None:
    missing = set(REFERENCE_TOOL_NAMES) - set(TOOL_REGISTRY)
    assert not missing
    assert [spec.name for spec in available_analysis_methods()] == list(TOOL_REGISTRY)
    assert all(spec.description for spec in available_analysis_methods())


def test_every_tool_no_model_is_offered_says_what_keeps_it_and_the_docs_say_the_same() -> None:
    """A tool hidden from models is kept only for something named in its registration (most for the reference
    API, whose names must stay); docs/tools.md's table of them is exactly those texts."""
    hidden = {name: spec.kept_for for name, spec in TOOL_REGISTRY.items() if not spec.offered}
    assert hidden and all(hidden.values())
    assert all(spec.offered == (spec.kept_for == "") for spec in TOOL_REGISTRY.values())
    text = (ROOT / "docs" / "tools.md").read_text(encoding="utf-8")
    table = text.split("| tool | kept for |\n| --- | --- |\n", 1)[1].split("\n\n", 1)[0]
    documented = dict(re.findall(r"^\| `(\w+)` \| (.+) \|$", table, re.M))
    assert documented == hidden


def test_unknown_tool_is_an_error_naming_the_valid_tools() -> None:
    outcome = run_tool("solve_the_task", episode(1).public, {})
    assert not outcome.ok and outcome.result is None
    assert "solve_the_task" in outcome.error and "compare_rate_to_median" in outcome.error


def test_unknown_metric_is_an_error_naming_the_valid_metrics() -> None:
    outcome = run_tool(
        "get_rate_drop_from_median_rows", episode(1).public, {"metric_name": "revenue", "threshold_multiplier": 3.0}
    )
    assert not outcome.ok
    assert "revenue" in outcome.error
    assert all(name in outcome.error for name in CONVERSION_METRIC_NAMES)


def test_unknown_date_is_an_error_naming_the_valid_dates() -> None:
    outcome = run_tool("rows_for_date", episode(1).public, {"date": "2025-12-25"})
    assert not outcome.ok
    assert "2025-12-25" in outcome.error and "2026-03-02" in outcome.error and "2026-03-29" in outcome.error


def test_wrong_types_are_an_error_naming_the_valid_arguments() -> None:
    outcome = run_tool("list_suspicious_dates", episode(1).public, {"limit": "many"})
    assert not outcome.ok
    assert "limit" in outcome.error and "integer" in outcome.error
    not_an_object = run_tool("rows_for_date", episode(1).public, ["2026-03-10"])
    assert not not_an_object.ok and "JSON object" in not_an_object.error
    extra = run_tool("rows_for_date", episode(1).public, {"date": "2026-03-10", "day": 3})
    assert not extra.ok and "'day'" in extra.error and "Valid arguments: date" in extra.error


@pytest.mark.parametrize("threshold", [0.0, -2.0, 1000.0, float("nan")])
def test_out_of_range_threshold_is_an_error_naming_the_bound(threshold: float) -> None:
    outcome = run_tool("get_funnel_break_rows", episode(1).public, {"threshold_multiplier": threshold})
    assert not outcome.ok
    assert "threshold_multiplier" in outcome.error


def test_bad_calls_through_the_environment_are_error_observations_and_the_episode_goes_on() -> None:
    env = MetricTrackerRlEnvironment()
    env.reset(task_id="medium_mixed_three")
    # Each mistake, and the words its error must hold: what was wrong and what is valid.
    bad_calls = [
        ("solve_the_task", {}, ("unknown analysis method 'solve_the_task'", "valid methods: task_overview")),
        (
            "get_rate_drop_from_median_rows",
            {"metric_name": "revenue"},
            ("unknown metric 'revenue'", "valid: app_open_to_menu_open"),
        ),
        (
            "rows_for_date",
            {"date": "2025-12-25"},
            ("date '2025-12-25' is not in the episode window", "valid dates are 2026-03-02"),
        ),
        ("show_raw_data", {"limit": "seven"}, ("limit:", "Valid arguments: limit, offset")),
        ("get_median_filter_rows", {"threshold_multiplier": -1}, ("threshold_multiplier:", "greater than 0")),
    ]
    for method, args, phrases in bad_calls:
        obs = env.step(MetricTrackerRlAction(analysis_method=method, analysis_args=args))
        assert obs.status == "error" and obs.reward == 0.0 and not obs.done
        assert all(phrase in obs.message for phrase in phrases), (method, obs.message)
        assert obs.submissions_remaining == 1
    obs = env.step(MetricTrackerRlAction(analysis_method="rows_for_date", analysis_args={"date": "2026-03-10"}))
    assert obs.status == "ok" and obs.analysis_result["row"]["date"] == "2026-03-10"


def _reachable(value: object, seen: set[int] | None = None) -> list[object]:
    """Every object reachable from `value` through dataclass fields, dicts, lists, tuples and sets."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return []
    seen.add(id(value))
    found = [value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        children = [getattr(value, f.name) for f in dataclasses.fields(value)]
    elif isinstance(value, dict):
        children = [*value.keys(), *value.values()]
    elif isinstance(value, (list, tuple, set, frozenset)):
        children = list(value)
    else:
        children = []
    for child in children:
        found += _reachable(child, seen)
    return found


@pytest.mark.parametrize(
    "config",
    [
        {"task_id": "hard_mixed_multi"},
        {"seed": 2, "difficulty": "hard"},
        {"seed": 3, "difficulty": "medium", "scenario_family": "funnel_break"},
    ],
)
def test_public_episode_holds_no_truth(config: dict) -> None:
    """Nothing the tools can reach holds a truth object, and the task the agent reads names no incident."""
    assert [f.name for f in dataclasses.fields(PublicEpisode)] == ["source", "task", "memo"]
    assert [f.name for f in dataclasses.fields(type(reset_episode(**config).public.source))] == [
        "funnel",
        "panel",
        "annotations",
        "segments",
    ]
    built = reset_episode(**config)
    truth_types = (type(built.truth), MetricSubmissionRow, *(type(r) for r in built.truth.injections))
    leaked = [item for item in _reachable(built.public) if isinstance(item, truth_types)]
    assert not leaked, leaked[:3]
    text = json.dumps(built.public.task, default=str)
    assert built.truth.expected_rows, "the episode has incidents to hide"
    for record in built.truth.injections:
        assert record.description not in text
    named_family = built.public.task.get("config", {}).get("scenario_family")  # a family scenario names its family
    for row in built.truth.expected_rows:
        if row.anomaly_type != named_family:
            assert row.anomaly_type not in text
        assert f"{row.date}|{row.entity_type}|{row.entity_name}" not in text


def _imports(path) -> list[tuple[str, tuple[str, ...]]]:
    """(module, imported names) for every import statement of a source file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.module or "", tuple(alias.name for alias in node.names)))
    return found


@pytest.mark.parametrize("path", TOOL_MODULES, ids=lambda p: p.name)
def test_tool_modules_cannot_reach_the_labels(path) -> None:
    for module, names in _imports(path):
        assert "anomalies" not in module and "anomalies" not in names, (module, names)
        assert "grader" not in module and "grader" not in names, (module, names)
        assert not module.startswith("metric_tracker_rl.generation"), (module, names)
        assert "GroundTruth" not in names and "Episode" not in names and "server" not in module
    attributes = {node.attr for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Attribute)}
    assert not attributes & {"truth", "expected_rows", "neutral_keys", "injections", "distractors"}


def calls_to_sweep(public: PublicEpisode) -> list[tuple[str, dict]]:
    """Every tool's example; date tools on every date (and every entity); generators at several thresholds."""
    difficulty = public.task["config"]["difficulty"]
    answering = {name: spec for name, spec in TOOL_REGISTRY.items() if difficulty in spec.answers_at}
    calls = [(name, spec.example) for name, spec in answering.items()]
    for name, spec in answering.items():
        fields = spec.args_model.model_fields
        if name == "get_context":  # every table
            calls += [(name, {"table": table}) for table in CONTEXT_TABLES]
            continue
        if name == "compare_segments":  # every date and dimension
            calls += [
                (name, spec.example | {"date": date, "dimension": dimension})
                for date in public.dates
                for dimension in ("platform", "country", "app_version")
            ]
            continue
        if "date" in fields:
            entities = getattr(spec.args_model, "entities", (None,))
            calls += [
                (name, {"date": date} | ({"entity_name": entity} if entity else {}))
                for date in public.dates
                for entity in entities
            ]
        if "threshold_multiplier" in fields:
            calls += [(name, {"threshold_multiplier": t}) for t in (0.5, 2.0, 6.0)]
        if "metric_name" in fields and "threshold_multiplier" not in fields and "threshold" not in fields:
            calls += [(name, {"metric_name": metric}) for metric in spec.args_model.metrics]
    calls += [
        ("list_suspicious_dates", {"limit": 28}),
        ("show_raw_data", {"limit": 28, "offset": 0}),
        ("get_rows_with_abs_diff_from_median_gt", {"threshold": 0.0}),
    ]
    return calls


SWEEP_SCENARIOS = {
    "medium": {"seed": 0},
    "hard": {"seed": 11, "difficulty": "hard"},
    "null": {"seed": 303, "scenario_family": "null"},
    "data-quality": {"seed": 4, "scenario_family": "instrumentation_data_quality_issue", "difficulty": "hard"},
    "funnel-break": {"seed": 9, "scenario_family": "funnel_break", "difficulty": "hard"},
    "frontier": {"seed": 5, "difficulty": "frontier"},
}


@pytest.mark.parametrize("scenario", SWEEP_SCENARIOS.values(), ids=SWEEP_SCENARIOS.keys())
def test_results_are_plain_json(scenario: dict) -> None:
    public = reset_episode(**scenario).public
    for name, arguments in calls_to_sweep(public):
        outcome = run_tool(name, public, arguments)
        assert outcome.ok, (name, arguments, outcome.error)
        check_plain_json(outcome.result, f"{name}({arguments})")
        json.dumps(outcome.result, allow_nan=False)


@pytest.mark.parametrize("family", ["instrumentation_data_quality_issue", "funnel_break"])
def test_results_do_not_share_the_episode_tables(family: str) -> None:
    """A caller that edits a result (an in-process agent, say) cannot change the next answer."""
    public = reset_episode(seed=4, scenario_family=family, difficulty="hard").public

    def scribble(value: object) -> None:
        if isinstance(value, dict):
            for item in value.values():
                scribble(item)
            value["scribbled"] = True
        elif isinstance(value, list):
            for item in value:
                scribble(item)
            value.append("scribbled")

    calls = [
        ("list_suspicious_dates", {"limit": 28}),
        ("get_funnel_break_rows", {"threshold_multiplier": 0.5}),
        ("get_instrumentation_data_quality_issue_rows", {"threshold_multiplier": 0.5}),
    ]
    calls += [
        (name, {"date": date}) for date in public.dates for name in ("check_impossible_counts", "detect_funnel_break")
    ]
    flagged_hours = 0
    for name, arguments in calls:
        first = run_tool(name, public, arguments).result
        snapshot = json.dumps(first)
        flagged_hours += snapshot.count('impossible_hours": [') - snapshot.count('impossible_hours": []')
        scribble(first)
        assert json.dumps(run_tool(name, public, arguments).result) == snapshot, (name, arguments)
    assert flagged_hours or family == "funnel_break"  # the hour lists under test are not all empty


def test_generator_results_come_a_page_at_a_time() -> None:
    public = episode(0).public
    outcome = run_tool("get_rows_with_abs_diff_from_median_gt", public, {"threshold": 0.0})
    assert outcome.ok
    assert outcome.result["row_count"] > MAX_PAGE_ROWS
    assert len(outcome.result["rows"]) == DEFAULT_PAGE_ROWS and outcome.result["next_offset"] == DEFAULT_PAGE_ROWS
    widest = run_tool("get_rows_with_abs_diff_from_median_gt", public, {"threshold": 0.0, "limit": MAX_PAGE_ROWS})
    assert len(widest.result["rows"]) == MAX_PAGE_ROWS
    refused = run_tool("get_rows_with_abs_diff_from_median_gt", public, {"threshold": 0.0, "limit": MAX_PAGE_ROWS + 1})
    assert not refused.ok and "limit" in refused.error
    # A generator submission merges every row, not a page.
    rows, errors = generate_rows(
        public, [PayloadGeneratorMethod(method_name="get_median_filter_rows", threshold_multiplier=0.5)]
    )
    assert (
        not errors
        and len(rows)
        == run_tool("get_median_filter_rows", public, {"threshold_multiplier": 0.5}).result["row_count"]
        > MAX_PAGE_ROWS
    )
