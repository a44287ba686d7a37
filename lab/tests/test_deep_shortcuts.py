"""The deep tier's shortcuts (one-dimension expert, short segment rule, aggregate-only expert) run at deep, score
below the expert, and the short segment rule reads one group-by per dimension within the query tool's limit."""

from __future__ import annotations

import statistics

import pytest

from lab.agents.short_segment_rule import rule_sql
from lab.calibration.interface import record_episode
from metric_tracker_rl.adapters.transcript import unseen_submitted_rows
from metric_tracker_rl.agents.expert_core.cuboid_queries import SEARCH_DIMENSIONS
from metric_tracker_rl.agents.expert_core.reports import SQL_CHARS
from metric_tracker_rl.catalog.task_splits import calibration_reset_kwargs

EPISODES = 3
SHORTCUTS = ("one_dimension_expert", "short_segment_rule", "aggregate_only_expert")


@pytest.fixture(scope="module")
def records() -> dict[str, list]:
    """The expert's and each shortcut's records of the first EPISODES episodes of the deep sweep."""
    return {
        agent: [record_episode(agent, calibration_reset_kwargs("deep", offset)) for offset in range(EPISODES)]
        for agent in ("deep_expert", *SHORTCUTS)
    }


@pytest.mark.slow
@pytest.mark.parametrize("agent", SHORTCUTS)
def test_shortcuts_score_below_the_expert(records: dict[str, list], agent: str) -> None:
    expert = statistics.mean(run.score for run in records["deep_expert"])
    assert statistics.mean(run.score for run in records[agent]) < expert, agent


@pytest.mark.slow  # plays reference agents' episodes
@pytest.mark.parametrize("agent", SHORTCUTS)
def test_shortcuts_run_at_deep(agent: str) -> None:
    run = record_episode(agent, calibration_reset_kwargs("deep", 1))
    calls = [call["function"] for message in run.messages for call in message.get("tool_calls") or []]
    assert calls[-1]["name"] == "submit_report"
    assert 0.0 <= run.score <= 1.0
    assert unseen_submitted_rows(run) == []


def test_short_rule_reads_one_group_by_per_dimension_and_no_hours() -> None:
    run = record_episode("short_segment_rule", calibration_reset_kwargs("deep", 1))
    queries = [
        call["function"]["arguments"]["sql"]
        for message in run.messages
        for call in message.get("tool_calls") or []
        if call["function"]["name"] == "query"
    ]
    assert len(queries) == len(SEARCH_DIMENSIONS)
    assert not any("hourly" in sql for sql in queries)


def test_the_short_rules_queries_fit_the_text_limit() -> None:
    assert all(len(rule_sql(dimension)) <= SQL_CHARS for dimension in SEARCH_DIMENSIONS)
