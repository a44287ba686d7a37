"""lab/docs/performance.md shows its measurements only as rendered from the kept runs lab/artifacts/performance.json
(`python -m lab.speed.run --render lab/artifacts/performance.json --write-doc`) and lab/artifacts/ws_throughput.json
(`python -m lab.speed.ws_throughput --render lab/artifacts/ws_throughput.json --write-doc`), like the calibration
tables."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from lab.speed import ws_throughput
from lab.speed.run import (
    BLOCK_BEGIN,
    BLOCK_END,
    PERFORMANCE_DOC,
    PUBLISHED_RESULTS,
    rendered_block,
    replace_block,
    shown_block,
)


@pytest.fixture(scope="module")
def kept_run() -> dict:
    return json.loads(PUBLISHED_RESULTS.read_text(encoding="utf-8"))


def test_the_doc_shows_what_the_kept_run_renders(kept_run: dict) -> None:
    """A new run written there, or a figure edited by hand in the doc, fails here until the doc is re-rendered."""
    assert shown_block(PERFORMANCE_DOC.read_text(encoding="utf-8")) == rendered_block(kept_run)


def test_the_kept_run_says_how_it_was_measured(kept_run: dict) -> None:
    """A reader must be able to repeat it: the date, the commit, the command, its settings and the load."""
    for key in ("date", "commit", "command", "sections", "settings", "load_average_at_start", "machine"):
        assert kept_run.get(key), key
    assert kept_run["command"].startswith("python -m lab.speed.run ")
    rendered = rendered_block(kept_run)
    assert kept_run["date"] in rendered and kept_run["command"] in rendered
    assert all(f"{name} {value}" in rendered for name, value in kept_run["settings"].items())


def test_rendering_replaces_only_the_marked_block(kept_run: dict) -> None:
    doc = f"before\n{BLOCK_BEGIN}\nstale table\n{BLOCK_END}\nafter\n"
    updated = replace_block(doc, rendered_block(kept_run))
    assert updated.startswith("before\n") and updated.endswith("after\n") and "stale table" not in updated
    assert shown_block(updated) == rendered_block(kept_run)
    with pytest.raises(ValueError, match="marker comments"):
        replace_block("no markers here", "table")


def test_the_doc_shows_what_the_kept_websocket_run_renders() -> None:
    kept = json.loads(ws_throughput.PUBLISHED_RESULTS.read_text(encoding="utf-8"))
    shown = shown_block(PERFORMANCE_DOC.read_text(encoding="utf-8"), ws_throughput.BLOCK_MARKER)
    assert shown == ws_throughput.rendered_block(kept)
    measured = {(row["workload"], row["sessions"]) for row in kept["rows"]}
    assert measured == {(name, 64) for name in ws_throughput.WORKLOADS}
    assert kept["command"].startswith("python -m ") and kept["baseline"]["commit"]
    assert kept["command"].split()[2].endswith(".ws_throughput")  # the module, under its name when the run was kept


def test_an_episodes_window_that_no_episode_finished_says_it_measured_nothing(kept_run: dict) -> None:
    from lab.speed.run import episodes_result

    episodes = {"duration_s": 1.5, "rounds": 3}
    row = {"sessions": 64, "env_episodes_per_s": 0.0, "null_episodes_per_s": 597.3, "ratio": 0.0, "errors": 0}
    assert episodes_result(row, episodes).startswith("not measured: no episode finished within a 0.5 s window")
    assert "| 0.0/s vs null" not in rendered_block(kept_run)


KEPT_RUNS = sorted(
    path
    for path in (Path(__file__).resolve().parents[1] / "artifacts").glob("*.json")
    if isinstance(json.loads(path.read_text(encoding="utf-8")).get("command"), str)
)


@pytest.mark.parametrize("artifact", KEPT_RUNS, ids=[path.stem for path in KEPT_RUNS])
def test_a_kept_runs_command_is_one_a_reader_can_run_today(artifact: Path) -> None:
    """The command runs a module the lab has, and writes the kept file itself where it names an output."""
    words = json.loads(artifact.read_text(encoding="utf-8"))["command"].split()
    module = words[words.index("-m") + 1]
    assert module.startswith("lab.") and importlib.util.find_spec(module) is not None, module
    if "--output" in words:
        assert words[words.index("--output") + 1] == f"lab/artifacts/{artifact.name}"
