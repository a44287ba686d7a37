"""lab.speed.ws_throughput's split of a step's CPU: the four parts add up to the served step, the engine is the
SQL workers' share, and the ratios are the targets' (a cheap tool has no floor)."""

from __future__ import annotations

import pytest

from lab.speed import ws_throughput


def served(process_ms: float, tree_ms: float, null_ms: float) -> dict:
    return {
        "workload": "deep_sql",
        "ours": {"process_cpu_ms_per_step": process_ms, "server_cpu_ms_per_step": tree_ms},
        "null": {"server_cpu_ms_per_step": null_ms},
    }


def test_the_parts_add_up_to_the_served_step() -> None:
    cost = ws_throughput.step_costs(served(1.5, 7.5, 0.1), {"tool_ms": 0.5, "floor_ms": 4.0})
    assert cost["engine_ms"] == pytest.approx(6.0) and cost["plumbing_ms"] == pytest.approx(0.9)
    parts = cost["openenv_ms"] + cost["plumbing_ms"] + cost["tool_ms"] + cost["engine_ms"]
    assert parts == pytest.approx(cost["total_ms"]) == pytest.approx(7.5)
    assert cost["loop_ratio"] == pytest.approx(10.0) and cost["floor_ratio"] == pytest.approx(7.5 / 4.0)


def test_a_cheap_tool_has_no_floor_and_its_table_row_says_so() -> None:
    cost = ws_throughput.step_costs(served(0.3, 0.3, 0.1), {"tool_ms": 0.05, "floor_ms": None})
    assert cost["engine_ms"] == 0.0 and cost["floor_ratio"] is None
    row = ws_throughput.cost_table([cost]).splitlines()[-1]
    assert row.endswith("| – | 2.50 | – |")
