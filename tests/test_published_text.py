"""What a model reads matches what the environment does, at every difficulty: the query tool's tables and limits,
the hourly-mix definition, the data-quality entities, the suspicious-date ranking, reset errors and table cells.
Each test reads the text and checks it against the real tables, data or behaviour."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from metric_tracker_rl.analysis_tools import run_tool
from metric_tracker_rl.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.scenario import build_episode
from metric_tracker_rl.tasks import resolve_episode_config
from metric_tracker_rl.tool_calls import first_prompt, model_tools, read_observation

MODEL_TOOLS = {tool.name: tool for tool in model_tools()}


@lru_cache(maxsize=8)
def _episode(seed: int, difficulty: str, family: str = "mixed") -> Any:
    return build_episode(resolve_episode_config(seed=seed, difficulty=difficulty, scenario_family=family))


def _brief(difficulty: str, seed: int = 3) -> dict[str, Any]:
    observation = MetricTrackerRlEnvironment().reset(seed=seed, difficulty=difficulty)
    return read_observation(first_prompt(observation)).brief


# --- the query tool's description ----------------------------------------------------------------------

def _described_tables(description: str, brief: dict[str, Any]) -> tuple[dict[str, list[str]], set[str]]:
    """The tables the description names with their columns (groups expanded as it defines them), and which of
    them it says exist at frontier only."""
    counts = re.search(r"<counts> = ([a-z_, ]+?)(?:;|$)", description)
    assert counts is not None and "<rates> = the brief's conversion_metrics by name" in description
    groups = {"<counts>": counts.group(1).split(", "),
              "<rates>": [metric["metric"] for metric in brief["conversion_metrics"]]}
    tables_text = description.split("Tables: ", 1)[1]
    everywhere_text, frontier_text = tables_text.split("frontier only: ", 1)
    tables: dict[str, list[str]] = {}
    frontier_only: set[str] = set()
    for text, at_frontier in ((everywhere_text, False), (frontier_text, True)):
        for name, columns in re.findall(r"([a-z_]+)\(([^)]*)\)", text):
            tables[name] = [column for item in columns.split(", ") for column in groups.get(item, [item])]
            if at_frontier:
                frontier_only.add(name)
    return tables, frontier_only


def _columns_of(public: Any, table: str) -> list[str] | None:
    """The columns the query tool answers for a table (None: the tool has no such table)."""
    outcome = run_tool("query", public, {"sql": f"SELECT * FROM {table} LIMIT 0"})
    return outcome.result["columns"] if outcome.ok else None


def test_the_query_description_names_every_table_and_column_and_no_other() -> None:
    """Compared with the tables an easy and a frontier episode's SQL tool really holds: every table and column
    is named, in order, nothing else is, and the frontier-only tables are exactly those easy lacks."""
    description = MODEL_TOOLS["query"].parameters["properties"]["sql"]["description"]
    easy, frontier = _episode(3, "easy").public, _episode(3, "frontier").public
    try:
        tables, frontier_only = _described_tables(description, _brief("frontier"))
        assert set(tables) == set(frontier.sql_tables())
        assert set(tables) - frontier_only == set(easy.sql_tables())
        for name, columns in tables.items():
            assert _columns_of(frontier, name) == columns, name
            assert _columns_of(easy, name) == (None if name in frontier_only else columns), name
    finally:
        easy.close()
        frontier.close()


def test_the_query_description_states_the_limits_the_tool_enforces() -> None:
    description = MODEL_TOOLS["query"].parameters["properties"]["sql"]["description"]
    limits = re.search(r"limits: (\d+) characters, ([\d.]+) s, (\d+) result rows", description)
    assert limits is not None
    characters, rows = int(limits.group(1)), int(limits.group(3))
    public = _episode(3, "easy").public
    try:
        padded = "SELECT 1" + " " * (characters - len("SELECT 1"))
        assert run_tool("query", public, {"sql": padded}).ok
        assert not run_tool("query", public, {"sql": padded + " "}).ok
        assert run_tool("query", public, {"sql": f"SELECT * FROM range({rows})"}).result["row_count"] == rows
        too_many = run_tool("query", public, {"sql": f"SELECT * FROM range({rows + 1})"})
        assert not too_many.ok and str(rows) in (too_many.error or "")
    finally:
        public.close()
