"""The MCP latency benchmark and its cached-text diagnostic run: every transport without errors, both kinds of
message timed in process, each tool's first text reused."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from lab.speed.mcp import TRANSPORTS, _in_process_cpu, bench_mcp, table, verdicts
from lab.speed.mcp_cached_text import first_text_per_tool
from metric_tracker_rl.models import MetricTrackerRlAction
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.view.observation import render_observation


@pytest.mark.slow
def test_the_mcp_latency_benchmark_calls_every_transport_without_errors() -> None:
    report = bench_mcp([2], duration_s=0.8, rounds=2, warmup_s=0.1)
    (row,) = report["rows"]
    for transport in TRANSPORTS:
        assert row[transport]["errors"] == 0, row[transport]["first_errors"]
        assert row[transport]["steps"] > 0 and row[transport]["server_cpu_ms_per_step"] >= 0
    assert table(report).count("\n") == 1 + len(TRANSPORTS)
    ratio = row["ws_mcp_p50_ratio"]
    assert 0 < ratio < 100
    assert verdicts(report).startswith("2 session(s): ")
    assert (": met)" in verdicts(report)) == (ratio <= 1.2)


def test_the_in_process_measurement_times_both_kinds_of_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENABLE_WEB_INTERFACE", "false")
    cpu = asyncio.run(_in_process_cpu(40))
    assert set(cpu) == {"ws_step_cpu_us", "ws_mcp_cpu_us"}
    assert all(value > 0 for value in cpu.values())


def test_the_cached_text_diagnostic_reuses_each_tools_first_text_and_renders_nothing_more() -> None:
    rendered: list[str] = []

    def counting_render(observation: Any) -> str:
        rendered.append(render_observation(observation))
        return rendered[-1]

    cached = first_text_per_tool(counting_render)
    env = MetricTrackerRlEnvironment()
    env.reset(seed=3, difficulty="easy")
    calls = [
        ("rows_for_date", {"date": "2026-03-10"}),
        ("rows_for_date", {"date": "2026-03-11"}),
        ("get_annotations", {}),
        ("no_such_tool", {}),
        ("rows_for_date", {"date": "2026-03-12"}),
    ]
    texts = [
        cached(env.step(MetricTrackerRlAction(analysis_method=name, analysis_args=arguments)))
        for name, arguments in calls
    ]
    assert len(rendered) == 3  # rows_for_date, get_annotations, and the error of the unknown tool
    assert texts[0] == texts[1] == texts[4] == rendered[0] and "2026-03-10" in texts[0]
    assert texts[2] == rendered[1] and texts[3] == rendered[2] and texts[3].startswith("error:")
