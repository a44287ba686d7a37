"""Every framework adapter lives in `metric_tracker_rl.adapters`, and the import paths the docs and users have used
still give the same module objects (so a patch through either name reaches the one module)."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

OLD_TO_NEW = {
    "metric_tracker_rl.tool_env": "metric_tracker_rl.adapters.trl",
    "metric_tracker_rl.harness": "metric_tracker_rl.adapters.openenv_harness",
}
INSPECT_MODULES = ("dataset", "episode", "metric_tracker", "scorer", "server", "smoke", "solver", "tools")


@pytest.mark.parametrize(("old", "new"), OLD_TO_NEW.items())
def test_an_old_path_is_the_moved_module(old: str, new: str) -> None:
    assert importlib.import_module(old) is importlib.import_module(new)


def test_the_trl_class_keeps_its_documented_import() -> None:
    from metric_tracker_rl.adapters.trl import MetricTrackerToolEnv as moved
    from metric_tracker_rl.tool_env import MetricTrackerToolEnv

    assert MetricTrackerToolEnv is moved


@pytest.mark.parametrize("module", INSPECT_MODULES)
def test_the_inspect_task_keeps_its_import_paths(module: str) -> None:
    pytest.importorskip("inspect_ai")
    old = importlib.import_module(f"metric_tracker_rl.inspect_eval.{module}")
    assert old is importlib.import_module(f"metric_tracker_rl.adapters.inspect_eval.{module}")
    from metric_tracker_rl.adapters.inspect_eval import metric_tracker as moved
    from metric_tracker_rl.inspect_eval import metric_tracker

    assert metric_tracker is moved


def test_importing_the_adapters_package_loads_no_framework() -> None:
    """`metric_tracker_rl.adapters` itself is only a listing: each adapter is imported by name, with its framework."""
    probe = ("import sys, metric_tracker_rl.adapters; print(sorted({m.split('.')[0] for m in sys.modules} & "
             "{'openenv', 'trl', 'inspect_ai', 'gradio', 'verifiers'}))")
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "[]"
