"""The top rungs' budgets table in lab/docs/performance.md is what the kept run lab/artifacts/rung_budgets.json
renders (`python -m lab.speed.rung_budgets --render lab/artifacts/rung_budgets.json --write-doc`), the run
measured deep beside every tier being built, and the benchmark times the statements the agents actually send."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import pytest

from lab.speed import rung_budgets
from lab.speed.run import PERFORMANCE_DOC, shown_block
from lab.speed.rung_budgets import (
    BLOCK_MARKER,
    PUBLISHED_RESULTS,
    cut_context_tables,
    measured_tiers,
    model_queries,
    query_kind,
    record,
    rendered_block,
    sent_queries,
    time_queries,
)
from lab.speed.rung_budgets_memory import tree_rss_mb
from lab.tests.helpers import ROOT
from metric_tracker_rl.catalog.task_splits import calibration_reset_kwargs
from metric_tracker_rl.catalog.tiers import TIERS
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment


@pytest.fixture(scope="module")
def kept_run() -> dict:
    return json.loads(PUBLISHED_RESULTS.read_text(encoding="utf-8"))


def test_the_doc_shows_what_the_kept_run_renders(kept_run: dict) -> None:
    """A new run written there, or a figure edited by hand in the doc, fails here until the doc is re-rendered."""
    assert shown_block(PERFORMANCE_DOC.read_text(encoding="utf-8"), BLOCK_MARKER) == rendered_block(kept_run)


def test_the_kept_run_measured_deep_beside_every_rung_above_it(kept_run: dict) -> None:
    """A tier added to the registry after deep is missing from the kept run until the benchmark runs again."""
    tiers = measured_tiers()
    assert tiers[:2] == ("deep", "abyss") and all(TIERS[name].dimensions for name in tiers)
    assert kept_run["tiers"] == list(tiers) and set(kept_run["results"]) == set(tiers)
    for figures in kept_run["results"].values():
        assert figures["memory"]["sessions"] == kept_run["settings"]["sessions"]
        assert figures["episode"]["episodes"] == kept_run["settings"]["sessions"]


def test_the_kept_run_says_how_and_under_what_load_it_was_measured(kept_run: dict) -> None:
    for key in ("date", "commit", "command", "settings", "machine", "load_average_at_start", "load_average_at_end"):
        assert kept_run.get(key), key
    assert kept_run["command"].startswith("python -m ")
    assert kept_run["command"].split()[2].endswith(".rung_budgets")  # the module, under its name when the run was kept
    rendered = rendered_block(kept_run)
    assert rung_budgets.shareable(kept_run["command"]) in rendered and "load average" in rendered
    assert not re.search(r"\s/\S", rendered.split("\n")[0]), "a machine's own path in the doc"
    assert rung_budgets.shareable(f"python -m x --output /elsewhere/a.json --n 3 {ROOT}/docs/b.json") == (
        "python -m x --output a.json --n 3 docs/b.json"
    )


def test_the_timed_queries_are_the_statements_the_scan_analyst_sent() -> None:
    reset_kwargs = calibration_reset_kwargs("deep", 120)
    env = MetricTrackerRlEnvironment()
    run, actions = record(rung_budgets.SCAN, reset_kwargs, env)
    queries = sent_queries(reset_kwargs, actions, rung_budgets.SCAN)
    sent = [
        call["function"]["arguments"]["sql"]
        for message in run.messages
        for call in message.get("tool_calls") or []
        if call["function"]["name"] == "query"
    ]
    assert [query["arguments"]["sql"] for query in queries] == sent
    assert {"cuboid scan", "hourly scan"} <= {query["kind"] for query in queries}
    assert len(time_queries(queries)) == len(queries)  # each replayed on its episode, and answered
    env.close()


def test_query_kinds() -> None:
    assert query_kind("SELECT hour FROM hourly_by_segment") == "hourly scan"
    assert (
        query_kind("SELECT 1 FROM daily_by_segment GROUP BY grouping sets ((date), (date, platform))") == "cuboid scan"
    )
    assert query_kind("WITH f(k) AS (VALUES (0)) SELECT * FROM f") == "candidate read"
    assert query_kind("SELECT * FROM experiments") == "other read"


def test_only_a_context_table_shown_in_part_is_a_cut_result() -> None:
    """A get_context result's `showing: k of n` below n is a table shown in part; another tool's pages (the
    metrics layer's sections, `a-b of n sections`) say their own range and are read whole by asking for them."""

    def run(*results: dict[str, Any] | None) -> Any:
        return SimpleNamespace(
            results={i: SimpleNamespace(seen=SimpleNamespace(analysis_result=r)) for i, r in enumerate(results)}
        )

    part = {"table": "experiments", "showing": "3 of 5 (the query tool reads the rest)", "rows": []}
    whole = {"table": "holidays", "showing": "2 of 2", "rows": []}
    sections = {"showing": "1-5 of 6 sections", "definitions": {}}
    one_section = {"showing": "1 of 6 sections", "definitions": {}}
    assert cut_context_tables(run(part, whole)) == 1
    assert cut_context_tables(run(sections, one_section, whole, None)) == 0


def test_tree_rss_counts_the_processes_under_a_process() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; held = b'x' * (64 << 20); print('ready', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        assert tree_rss_mb(child.pid) > 64
        assert tree_rss_mb(os.getpid()) > tree_rss_mb(child.pid) + 10  # this process and its child
    finally:
        child.communicate("")


def test_the_models_statements_are_its_transcripts_queries_that_the_episode_answers(tmp_path) -> None:
    """A transcript's query calls, replayed on an episode of the tier with its seed: those answered are timed, a
    statement the model got wrong is left out, and other tools' calls are not statements."""
    transcript = json.loads((rung_budgets.MODEL_TRANSCRIPTS / "deep-111316.json").read_text(encoding="utf-8"))
    sent = [call["arguments"]["sql"] for call in transcript["calls"] if call["tool"] == "query"]
    wrong = {"tool": "query", "arguments": {"sql": "SELECT no_such_column FROM daily_by_segment"}, "text": ""}
    transcript["calls"].append(wrong)
    (tmp_path / "deep-111316.json").write_text(json.dumps(transcript), encoding="utf-8")
    queries = model_queries("abyss", tmp_path)
    kept = [query["arguments"]["sql"] for query in queries]
    assert kept and set(kept) <= set(sent) and kept == [sql for sql in sent if sql in set(kept)]  # in the model's order
    assert wrong["arguments"]["sql"] not in kept
    assert all(query["reset"] == {"seed": transcript["seed"], "difficulty": "abyss"} for query in queries)
    assert len(time_queries(queries)) == len(queries)


def test_the_query_budget_holds_a_models_statements_and_the_agents_are_reported_beside_them(kept_run: dict) -> None:
    """The typical-query verdict follows the model's statements only: the agents' batched scans carry no verdict."""
    report = json.loads(json.dumps(kept_run))
    for figures in report["results"].values():
        figures["model_query"].update(p50_ms=12.0)
        figures["query"].update(p50_ms=90.0)
    lines = {line.split(" | ")[0].lstrip("| "): line for line in rung_budgets.table(report).splitlines()}
    typical = lines["typical query p50 (p95): a capable model's statements"]
    agents = lines["the reference agents' statements p50 (p95): their scans, batched"]
    assert typical.count(" ok") == len(report["tiers"]) and "over" not in typical
    assert "12.0 ms" in typical and "90.0 ms" in agents
    assert " ok" not in agents and "over" not in agents and "none (reported)" in agents
    for figures in report["results"].values():
        figures["model_query"].update(p50_ms=25.0)
    over = [line for line in rung_budgets.table(report).splitlines() if line.startswith("| typical query")]
    assert over[0].count("**over**") == len(report["tiers"])
