"""Shared fixtures: a real server process on a free loopback port."""

from __future__ import annotations

import ast
import contextlib
import itertools
import os
import re
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from _pytest.mark.expression import Expression
from hypothesis import settings

from metric_tracker_rl import server_process
from metric_tracker_rl.serving import local_server

ROOT = Path(__file__).resolve().parents[1]

# Property tests check behaviour, never time: a per-example deadline would fail them on a busy machine.
settings.register_profile("behaviour", deadline=None)
settings.load_profile("behaviour")


def time_scale() -> float:
    """How much longer than on an idle machine a test may wait for a server or a command: TEST_TIME_SCALE when set,
    else the load per core (at least 1). A wait ends as soon as what it waits for happens, so a longer limit costs
    nothing where it is met; it only keeps a loaded machine (other work, other test runs) from failing the test."""
    if os.environ.get("TEST_TIME_SCALE"):
        return max(1.0, float(os.environ["TEST_TIME_SCALE"]))
    return max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))


def scaled(seconds: float) -> float:
    """A time limit of a test, `seconds` on an idle machine, stretched by `time_scale`."""
    return seconds * time_scale()


@contextlib.contextmanager
def serving(command: list[str], port: int, env: dict[str, str], timeout_s: float = 90.0) -> Iterator[str]:
    """Run a server command that should listen on `port`; yield its base URL once /health answers (within
    `timeout_s`, `scaled`); stop it."""
    with (
        tempfile.TemporaryFile() as log,
        server_process.serving(command, port, env, log, cwd=ROOT, timeout_s=scaled(timeout_s)),
    ):
        yield f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def running_server(extra_env: dict[str, str] | None = None, workers: int = 1, timeout_s: float = 90.0) -> Iterator[str]:
    """Start `python -m server.app` (the repository's layout entry point) on a free loopback port; yield its base
    URL once healthy (within `timeout_s`, `scaled`); stop it."""
    with local_server.local_server(
        env=extra_env, workers=workers, module="server.app", cwd=ROOT, timeout_s=scaled(timeout_s)
    ) as url:
        yield url


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """A standard-mode server (debug off, web interface off) shared by the session."""
    with running_server() as url:
        yield url


# Why a test that needs an optional dependency group skips without it (`pytest.importorskip(..., reason=...)`).
INSPECT_GROUP = "needs the inspect group: uv sync --group inspect"
TRAIN_GROUP = "needs the train group: uv sync --group train"
BROWSER_GROUP = "needs the browser group: uv sync --group browser (and apt-get install chromium)"
FUZZ_GROUP = "needs the fuzz group: uv sync --group fuzz"
HF_GROUP = "needs the hf group: uv sync --group hf"

# A fixture that makes any test using it slow: the shared server process.
SLOW_FIXTURES = frozenset({"server_url"})


def slow_as_a_whole(path: Path) -> bool:
    """Whether a test module marks itself slow as a whole (`pytestmark = pytest.mark.slow`, or a list that holds
    it), as its source reads."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(target, "id", None) == "pytestmark" for target in node.targets):
            marks = node.value.elts if isinstance(node.value, (ast.List, ast.Tuple)) else [node.value]
            return any(ast.unparse(mark) == "pytest.mark.slow" for mark in marks)
    return False


def deselects_every_slow_test(markexpr: str) -> bool:
    """Whether `-m markexpr` deselects every test marked slow, whatever other marks it has."""
    others = sorted(set(re.findall(r"[A-Za-z_]\w*", markexpr)) - {"and", "or", "not", "slow"})
    if not markexpr or "(" in markexpr or len(others) > 8:  # a mark's arguments: left to pytest
        return False
    expression = Expression.compile(markexpr)
    marked = (
        frozenset({"slow", *chosen})
        for size in range(len(others) + 1)
        for chosen in itertools.combinations(others, size)
    )
    return not any(expression.evaluate(marks.__contains__) for marks in marked)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """A run that deselects the slow tests (`-m "not slow"`) does not import a module that is slow as a whole: its
    imports (a browser driver, Inspect, a fuzzer) and its module-level work would cost each process for nothing."""
    if (
        collection_path.suffix == ".py"
        and collection_path.name.startswith("test_")
        and deselects_every_slow_test(config.getoption("markexpr") or "")
        and slow_as_a_whole(collection_path)
    ):
        return True
    return None


def _module(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0].rsplit("/", 1)[-1].removesuffix(".py")


# The edit loop (`-m "not slow"`) runs each property test on this share of its examples, split among its parameter
# sets (at least EDIT_LOOP_MIN_EXAMPLES each, never more than it asks for, its explicit @example cases always); a run
# with the slow tests runs every example.
EDIT_LOOP_EXAMPLES_SHARE = 0.1
EDIT_LOOP_MIN_EXAMPLES = 5


def fewer_examples(test: object, parameter_sets: int = 1) -> None:
    """Give a Hypothesis test the edit loop's share of its examples, split among its `parameter_sets` (its items
    share the function). Hypothesis reads a test's settings from this attribute when it runs
    (tests/test_suite_settings.py checks that it still does)."""
    current = getattr(test, "_hypothesis_internal_use_settings", None)
    if isinstance(current, settings) and not getattr(test, "_edit_loop_examples", False):  # once per test function
        test._edit_loop_examples = True  # type: ignore[attr-defined]
        asked = current.max_examples
        share = round(asked * EDIT_LOOP_EXAMPLES_SHARE / max(parameter_sets, 1))
        edit_loop = min(asked, max(EDIT_LOOP_MIN_EXAMPLES, share))
        test._hypothesis_internal_use_settings = settings(current, max_examples=edit_loop)  # type: ignore[attr-defined]


@pytest.hookimpl(tryfirst=True)  # before the deselection by marker and before xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test that needs a slow fixture is slow by the marker's definition, wherever it is. (A module that is slow
    as a whole says so with `pytestmark = pytest.mark.slow`, which `pytest_ignore_collect` reads.)

    The suite runs in two processes (pytest-xdist, `--dist loadgroup`). A module's fast tests stay in one of them, so
    its module fixtures are built once there; the slow tests share one group, run by one process in turn, so no two
    of them (servers, a browser, time limits) run at the same time. The edit loop runs a share of each property
    test's examples (`fewer_examples`)."""
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    for item in items:
        item.add_marker(pytest.mark.xdist_group("serial" if item.get_closest_marker("slow") else _module(item)))
    if deselects_every_slow_test(config.getoption("markexpr") or ""):
        property_tests = Counter(
            item.obj for item in items if getattr(getattr(item, "obj", None), "is_hypothesis_test", False)
        )
        for test, parameter_sets in property_tests.items():
            fewer_examples(test, parameter_sets)
