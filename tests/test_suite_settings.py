"""The suite's own rules: the documented quiet run still ends with pytest's summary (pyproject.toml's settings), and
no test module imports another (what tests share lives in helper modules)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, deselects_every_slow_test, slow_as_a_whole


def test_a_quiet_run_ends_with_the_count_of_passed_tests(tmp_path: Path) -> None:
    """`uv run pytest -m "not slow" -q`, as the docs run it, under the project's settings: a `-q` in the settings'
    own options would add up with it and drop the "N passed" line."""
    (tmp_path / "test_two.py").write_text("def test_one():\n    pass\n\n\ndef test_two():\n    pass\n")
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-c",
            str(ROOT / "pyproject.toml"),
            "--rootdir",
            str(tmp_path),
            "-p",
            "no:cacheprovider",
            "-n",
            "0",
            "-m",
            "not slow",
            "-q",
            str(tmp_path),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert re.fullmatch(r"2 passed in [\d.]+s", completed.stdout.strip().splitlines()[-1]), completed.stdout


def imported_test_modules(path: Path) -> list[str]:
    """The test modules (`test_*`) a module imports, at its top or inside a function."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
        found += [name for name in names if name.rsplit(".", 1)[-1].startswith("test_")]
    return found


def test_no_test_module_imports_another() -> None:
    """Importing a test module runs its collection-time code again under a second name and ties two files' tests
    together: a helper two test modules share goes in a helper module (core_helpers.py, sql_helpers.py, ...)."""
    importing = {
        path.relative_to(ROOT).as_posix(): imported
        for folder in (ROOT / "tests", ROOT / "lab" / "tests")
        for path in sorted(folder.rglob("*.py"))
        if (imported := imported_test_modules(path))
    }
    assert importing == {}


def test_the_import_check_sees_imports_at_the_top_and_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "test_example.py"
    module.write_text(
        "from test_other import helper\nimport core_helpers\n\n\ndef test_x():\n    import tests.test_third\n"
    )
    assert imported_test_modules(module) == ["test_other", "tests.test_third"]


def skips_without_reason(path: Path) -> list[int]:
    """The lines of `pytest.importorskip(...)` calls that give no reason (pytest's own names no group to install)."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "importorskip"
        and not any(k.arg == "reason" for k in node.keywords)
    ]


def test_a_test_that_needs_an_optional_group_says_which() -> None:
    """After `uv sync` alone the suite skips what needs the inspect or train group, and each skip names it."""
    unexplained = {
        path.name: lines for path in sorted((ROOT / "tests").glob("*.py")) if (lines := skips_without_reason(path))
    }
    assert unexplained == {}


def test_a_run_without_slow_tests_skips_only_modules_slow_as_a_whole(tmp_path: Path) -> None:
    """`-m "not slow"` leaves out the modules marked slow as a whole before importing them; an expression that may
    still select a slow test leaves them in, and a module with a slow test among fast ones is imported."""
    assert deselects_every_slow_test("not slow") and deselects_every_slow_test("not slow and not browser")
    assert not any(
        deselects_every_slow_test(expression)
        for expression in (
            "",
            "slow",
            "not slow or browser",
            "browser",
            "not browser",
            "not slow or browser(name='chromium')",
        )
    )
    whole, mixed, skipped = (tmp_path / name for name in ("test_whole.py", "test_mixed.py", "test_skipped.py"))
    whole.write_text("import pytest\n\npytestmark = [pytest.mark.slow, pytest.mark.skipif(False, reason='')]\n")
    mixed.write_text("import pytest\n\n\n@pytest.mark.slow\ndef test_one():\n    pass\n")
    skipped.write_text("import pytest\n\npytestmark = pytest.mark.skipif(True, reason='not here')\n")
    assert [slow_as_a_whole(path) for path in (whole, mixed, skipped)] == [True, False, False]


def test_a_tests_time_limits_stretch_on_a_loaded_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """The waits for servers (and the other limits `scaled` wraps) stretch by TEST_TIME_SCALE, else by the load
    per core: a limit met on an idle machine is not missed on a busy one."""
    import conftest

    monkeypatch.setenv("TEST_TIME_SCALE", "3")
    assert conftest.scaled(90) == 270
    monkeypatch.setenv("TEST_TIME_SCALE", "")
    monkeypatch.setattr(conftest.os, "getloadavg", lambda: (14.0, 13.0, 10.0))
    monkeypatch.setattr(conftest.os, "cpu_count", lambda: 2)
    assert conftest.scaled(90) == 90 * 7
    monkeypatch.setattr(conftest.os, "getloadavg", lambda: (0.2, 0.1, 0.0))
    assert conftest.scaled(90) == 90  # never shorter than on an idle machine


def test_the_edit_loop_runs_a_share_of_a_property_tests_examples() -> None:
    """`-m "not slow"` gives each property test a tenth of its examples, split among its parameter sets (at least
    five each, never more than it asks for), and Hypothesis runs that many: the slow run keeps every example."""
    from conftest import fewer_examples
    from hypothesis import given, settings
    from hypothesis import strategies as st

    calls: list[int] = []

    @settings(max_examples=100, database=None)
    @given(st.integers())
    def asks_for_a_hundred(n: int) -> None:
        calls.append(n)

    @settings(max_examples=4, database=None)
    @given(st.integers())
    def asks_for_four(n: int) -> None:
        calls.append(n)

    fewer_examples(asks_for_a_hundred)
    fewer_examples(asks_for_a_hundred)  # a parametrized test's items share their function: its share is taken once
    fewer_examples(asks_for_four)

    @settings(max_examples=300, database=None)
    @given(st.integers())
    def asks_for_three_hundred_in_three_parameter_sets(n: int) -> None:
        calls.append(n)

    fewer_examples(asks_for_three_hundred_in_three_parameter_sets, 3)
    assert asks_for_three_hundred_in_three_parameter_sets._hypothesis_internal_use_settings.max_examples == 10
    assert asks_for_a_hundred._hypothesis_internal_use_settings.max_examples == 10
    assert asks_for_four._hypothesis_internal_use_settings.max_examples == 4
    asks_for_a_hundred()
    assert len(calls) <= 10  # Hypothesis reads the attribute when the test runs
