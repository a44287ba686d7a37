"""The edit loop's kept cost (lab/artifacts/edit_loop.json, written by lab/speed/edit_loop.py) is within its budget
and was measured on today's tests: a test added or removed since makes the kept figure stale, and this fails naming
the command that measures it again. Nothing here is timed: the figure is the kept run's."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from lab.speed.edit_loop import ARTIFACT, COMMAND, EDIT_LOOP_CPU_S, counted_tests, needs_a_group

AGAIN = "measure it again: nice -n 5 uv run python -m lab.speed.edit_loop --keep"


def kept() -> dict:
    return json.loads(ARTIFACT.read_text(encoding="utf-8"))


def test_the_kept_edit_loop_is_within_its_cpu_budget() -> None:
    record = kept()
    assert shlex.split(record["measured"]) == COMMAND
    assert record["exit_code"] == 0, (record["summary"], record.get("failures"))
    assert record["cpu_s"] <= EDIT_LOOP_CPU_S, (
        f"the edit loop took {record['cpu_s']} s of CPU, past its budget of {EDIT_LOOP_CPU_S:.0f} s: make it cheaper "
        f"(`--durations=40`, a quick twin beside a slow sweep), then {AGAIN}"
    )


def test_the_kept_figure_counts_todays_tests() -> None:
    current = counted_tests()
    assert kept()["tests"] == current, (
        f"the kept figure ran {kept()['tests']} tests, the edit loop now {current}: {AGAIN}"
    )


def test_a_module_that_needs_a_group_is_told_apart(tmp_path: Path) -> None:
    needs = tmp_path / "test_a.py"
    needs.write_text('import pytest\n\npytest.importorskip("inspect_ai", reason="x")\n')
    inside = tmp_path / "test_b.py"
    inside.write_text('import pytest\n\n\ndef test_x():\n    pytest.importorskip("inspect_ai", reason="x")\n')
    named = tmp_path / "test_c.py"
    named.write_text('import pytest\n\nsync_api = pytest.importorskip("playwright.sync_api", reason="x")\n')
    assert [needs_a_group(p) for p in (needs, inside, named)] == [True, False, True]
