"""Every framework adapter lives in `metric_tracker_rl.adapters`, under one import path: the package keeps no alias
of a moved module (a shim that swaps `sys.modules` entries, or a facade that re-exports another module's names)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
from conftest import INSPECT_GROUP

ADAPTERS = ("trl", "openenv_harness", "session", "transcript", "baseline_log", "scripted_chat", "chat_loop")
# Paths the package once had for names that now live elsewhere: none of them imports.
GONE = (
    "metric_tracker_rl.tool_env",
    "metric_tracker_rl.harness",
    "metric_tracker_rl.inspect_eval",
    "metric_tracker_rl.tool_calls",
    "metric_tracker_rl.server",
    "metric_tracker_rl.sql_worker",
    "metric_tracker_rl.environment",
    "metric_tracker_rl.model_tools",
    "metric_tracker_rl.adapters.openenv_internals",
)


@pytest.mark.parametrize("module", ADAPTERS)
def test_each_adapter_is_a_module_of_the_adapters_package(module: str) -> None:
    assert importlib.util.find_spec(f"metric_tracker_rl.adapters.{module}") is not None


@pytest.mark.parametrize("path", GONE)
def test_a_moved_name_has_no_second_path(path: str) -> None:
    assert importlib.util.find_spec(path) is None


def test_the_inspect_entry_point_names_the_adapter() -> None:
    pytest.importorskip("inspect_ai", reason=INSPECT_GROUP)
    from importlib.metadata import entry_points

    (entry,) = [e for e in entry_points(group="inspect_ai") if e.name == "metric_tracker_rl"]
    assert entry.value == "metric_tracker_rl.adapters.inspect_eval"
    assert hasattr(entry.load(), "metric_tracker")


def test_importing_the_adapters_package_loads_no_framework() -> None:
    """`metric_tracker_rl.adapters` itself is only a listing: each adapter is imported by name, with its framework."""
    probe = (
        "import sys, metric_tracker_rl.adapters; print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'openenv', 'trl', 'inspect_ai', 'gradio', 'verifiers'}))"
    )
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "[]"
