"""The query-speed benchmark times the statements it is given in process and through the profiler, and says when
a statement's result differs from the one saved with it (a speed-up must leave every result as it was)."""

from __future__ import annotations

import json

import lab.speed.query_speed as query_speed
from lab.speed.query_speed import by_kind, table, time_engine
from metric_tracker_rl.catalog.task_splits import calibration_reset_kwargs

STATEMENTS = (
    "SELECT platform, count(*) n FROM daily_by_segment GROUP BY platform ORDER BY platform",
    "SELECT hour, sum(app_opens) a FROM hourly_by_segment GROUP BY hour ORDER BY hour",
)


def queries() -> list[dict]:
    reset = calibration_reset_kwargs("deep", 120)
    return [
        {"agent": "test", "kind": kind, "reset": reset, "arguments": {"sql": sql}}
        for kind, sql in zip(("cuboid scan", "hourly scan"), STATEMENTS, strict=True)
    ]


def test_each_statement_gets_every_phase_and_a_digest_of_its_result() -> None:
    first, second = time_engine(queries(), repeats=1), time_engine(queries(), repeats=1)
    for timing in first:
        assert {"engine_wall", "engine_cpu", "bind", "optimize", "operators_cpu", "digest"} <= set(timing)
        assert timing["engine_cpu"] > 0 and timing["operators_cpu"] >= 0
    assert [t["digest"] for t in first] == [t["digest"] for t in second]
    assert first[0]["digest"] != first[1]["digest"]


def test_the_table_puts_two_runs_side_by_side_by_kind() -> None:
    statements = [{"kind": "cuboid scan", "engine_cpu": 10.0}, {"kind": "hourly scan", "engine_cpu": 30.0}]
    report = {
        "tiers": {"deep": {"by_kind": by_kind(statements), "results_changed": []}},
        "load_average_at_start": [1.0, 1.0, 1.0],
        "load_average_at_end": [2.0, 2.0, 2.0],
    }
    assert report["tiers"]["deep"]["by_kind"]["all"]["engine_cpu"]["p50_ms"] == 20.0
    text = table([report, report])
    assert "| deep | cuboid scan | 1 | - -> - | 10.0 (10.0) -> 10.0 (10.0) |" in text
    assert "results changed against the saved statements: {'deep': [0, 0]}" in text


def test_the_model_flag_times_a_capable_models_statements_instead_of_the_agents(monkeypatch, tmp_path) -> None:
    """`--model` takes the statements from the model's transcripts (rung_budgets.model_queries), never records the
    agents' episodes."""
    model = [{**query, "agent": "model"} for query in queries()]
    monkeypatch.setattr(query_speed, "measured_tiers", lambda: ("deep",))
    monkeypatch.setattr(query_speed, "model_queries", lambda tier: model if tier == "deep" else [])
    monkeypatch.setattr(query_speed, "recorded_queries", lambda *args: (_ for _ in ()).throw(AssertionError))
    output = tmp_path / "speed.json"
    query_speed.main(["--model", "--repeats", "1", "--step-repeats", "0", "--output", str(output)])
    report = json.loads(output.read_text(encoding="utf-8"))
    assert [s["agent"] for s in report["tiers"]["deep"]["statements"]] == ["model", "model"]
