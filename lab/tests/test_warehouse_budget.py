"""The warehouse's budgets on its expert's episodes: the characters a model reads and writes (median within the
rungs' episode budget), the calls the expert needs (within the need the tier's step budget is set from), the brief's
shortened rules (each shortening finds its phrase in the shared text it shortens), the expert's statements as a reader
scans them (`readable`: the same tokens, literals untouched), and the model-like analyst playing within the budget."""

from __future__ import annotations

import re
import statistics
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab.calibration.interface import message_texts, record_episode
from lab.calibration.warehouse_calibration import UNTUNED_FIRST
from lab.speed import rung_budgets
from metric_tracker_rl.adapters.transcript import cut_results, unread_submitted_rows
from metric_tracker_rl.agents.expert_core.queries import compact, readable
from metric_tracker_rl.catalog.published import BASELINE_RULE, GRADING_RULE, SEVERITY_RULE
from metric_tracker_rl.catalog.tiers import DEFAULT_MAX_STEPS, WAREHOUSE, WAREHOUSE_EXPERT_CALLS
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.sql.sandbox import MAX_SQL_CHARS
from metric_tracker_rl.view.prompt import first_prompt
from metric_tracker_rl.world.metrics_layer import METRICS_LAYER
from metric_tracker_rl.world.warehouse_brief import (
    BASELINE_REPLACED,
    GRADING_REPLACED,
    LAYER_TABLES,
    SEVERITY_REPLACED,
    WAREHOUSE_BASELINE_RULE,
    WAREHOUSE_GRADING_RULE,
    WAREHOUSE_SEVERITY_RULE,
    WAREHOUSE_TABLES,
)

# The calibration's first untuned seeds (lab/calibration/warehouse_calibration.py: from UNTUNED_FIRST), which tuned
# neither the expert nor the brief: forty, as a median over twenty moves by two thousand characters from one twenty
# to the next.
SEEDS = range(UNTUNED_FIRST, UNTUNED_FIRST + 40)


def test_the_step_budget_is_the_tiers_own_and_the_brief_states_it() -> None:
    """Two and a half times the expert's most calls, rounded up to five, in the config and steps_remaining."""
    assert WAREHOUSE.max_steps == 5 * -(-WAREHOUSE_EXPERT_CALLS * 5 // 10) != DEFAULT_MAX_STEPS
    text = first_prompt(MetricTrackerRlEnvironment().reset(difficulty="warehouse", seed=SEEDS[0]))
    assert f"max_steps: {WAREHOUSE.max_steps}" in text and f"steps_remaining: {WAREHOUSE.max_steps}" in text


@pytest.mark.parametrize(
    ("shared", "replacements", "warehouse"),
    [
        (BASELINE_RULE, BASELINE_REPLACED, WAREHOUSE_BASELINE_RULE),
        (SEVERITY_RULE, SEVERITY_REPLACED, WAREHOUSE_SEVERITY_RULE),
        (GRADING_RULE, GRADING_REPLACED, WAREHOUSE_GRADING_RULE),
    ],
)
def test_each_shortened_rule_finds_the_phrase_it_shortens(
    shared: str, replacements: dict[str, str], warehouse: str
) -> None:
    """A change of the shared text cannot leave the warehouse's rule silently unshortened (or stale)."""
    for old, new in replacements.items():
        assert old in shared, old
        assert old not in warehouse and new in warehouse
    assert not re.search(r"robust z|hourly_mix|get_releases|detection_methods", warehouse)


# Statement-like text: words, numbers, operators, parentheses, commas, whitespace runs and text literals (which may
# hold any of them, quotes doubled).
_TOKEN = st.sampled_from(
    [
        "SELECT",
        "a",
        "b1",
        "AS",
        "x",
        "(",
        ")",
        ",",
        "=",
        "-",
        "UNION ALL",
        "WITH",
        "FROM",
        "t",
        "2.5",
        "*",
        "  ",
        " ",
        "\n",
        "'it''s ( a, b )'",
        "'  '",
    ]
)


@given(st.lists(_TOKEN, max_size=60))
def test_readable_keeps_every_token_and_every_literal(tokens: list[str]) -> None:
    sql = " ".join(tokens)
    text = readable(sql, MAX_SQL_CHARS)
    literal = re.compile(r"'(?:[^']|'')*'")
    assert literal.findall(text) == literal.findall(sql)
    assert "".join(text.split()) == "".join(sql.split())
    assert readable(sql, len(text) - 1) == compact(sql)  # too long to read: the compact statement, the same query


@pytest.fixture(scope="module")
def expert_runs() -> list:
    env = MetricTrackerRlEnvironment()
    return [record_episode("warehouse_expert", {"difficulty": "warehouse", "seed": seed}, env) for seed in SEEDS]


@pytest.mark.slow  # plays forty expert episodes
def test_the_warehouse_experts_median_episode_fits_the_message_budget(expert_runs: list) -> None:
    chars = [sum(map(len, message_texts(run.messages))) for run in expert_runs]
    assert statistics.median(chars) <= rung_budgets.episode_chars_budget("warehouse"), chars


@pytest.mark.slow
def test_the_expert_needs_no_more_calls_than_the_step_budget_is_set_from(expert_runs: list) -> None:
    calls = [sum(1 for m in run.messages if m["role"] == "assistant") for run in expert_runs]
    assert max(calls) <= WAREHOUSE_EXPERT_CALLS, calls
    assert all(run.score > 0 for run in expert_runs)


@pytest.mark.slow
def test_the_expert_reads_every_page_and_every_number_it_submits(expert_runs: list) -> None:
    """No result cut short, and each row's baseline and observed values stand in an earlier result (every tool here is
    a query, so a row's key is the expert's own naming; its numbers are what it read)."""
    assert sum(map(cut_results, expert_runs)) == 0
    assert [row for run in expert_runs for row in unread_submitted_rows(run)] == []


@pytest.mark.parametrize(
    ("field", "change"), [("observed_value", 1.01), ("baseline_value", 0.99), ("delta_value", 1.5)]
)
def test_the_unread_row_check_can_fail(first_run: Any, field: str, change: float) -> None:
    """A number the results never showed, or a delta that is not the difference of the two read values."""
    submission = next(
        call
        for m in first_run.messages
        for call in m.get("tool_calls") or []
        if call["function"]["name"] == "submit_report"
    )
    row = next(row for row in submission["function"]["arguments"]["rows"] if row["delta_value"])
    assert unread_submitted_rows(first_run) == []
    read = row[field]
    row[field] = round(read * change, 4)
    try:
        assert unread_submitted_rows(first_run) == [row]
    finally:
        row[field] = read


@pytest.fixture(scope="module")
def first_run() -> Any:
    return record_episode("warehouse_expert", {"difficulty": "warehouse", "seed": SEEDS[0]})


@pytest.mark.slow
def test_the_model_like_analyst_reports_within_the_step_budget() -> None:
    """It plays through the tools to a graded report, every statement accepted, its calls within the budget."""
    run = record_episode("warehouse_model_like", {"difficulty": "warehouse", "seed": SEEDS[0]})
    calls = [m for m in run.messages if m["role"] == "assistant"]
    results = [m["content"] for m in run.messages if m["role"] == "tool"]
    assert calls[-1]["tool_calls"][0]["function"]["name"] == "submit_report"
    assert len(calls) <= WAREHOUSE.max_steps and not any(text.startswith("error") for text in results)
    assert 0 < run.score <= 1


def test_the_tables_the_brief_leaves_to_the_metrics_layer_are_the_ones_it_names() -> None:
    layer = " ".join(METRICS_LAYER.values())
    assert all(name in layer and name in WAREHOUSE_TABLES for name in LAYER_TABLES)
    text = first_prompt(MetricTrackerRlEnvironment().reset(difficulty="warehouse", seed=SEEDS[0]))
    assert all(f"    {name}:" in text for name in WAREHOUSE_TABLES if name not in LAYER_TABLES)
