"""The import graph proves the wall: nothing the tools import can reach the injectors, the ground truth or the
scoring. And the tools' pandas road, as docs/tools.md shows it, works."""

from __future__ import annotations

import ast
import re
from collections import deque
from pathlib import Path

import numpy as np
import pytest

from metric_tracker_rl import MetricTrackerRlAction
from metric_tracker_rl.analysis_tools import TOOL_REGISTRY, run_tool
from metric_tracker_rl.catalog import COUNT_COLUMNS
from metric_tracker_rl.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.scenario import build_episode
from metric_tracker_rl.tasks import resolve_episode_config

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "metric_tracker_rl"
# What may not know the truth must not reach these.
TRUTH_MODULES = ("metric_tracker_rl.scenario", "metric_tracker_rl.anomalies", "metric_tracker_rl.grader",
                 "metric_tracker_rl.environment", "metric_tracker_rl.server", "server")


def module_path(module: str) -> Path | None:
    """The source file of one of our own modules (a package's __init__.py), or None for any other module."""
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def imported_modules(module: str) -> set[str]:
    """Every module an import statement of `module` names, `from package import submodule` resolved too."""
    path = module_path(module)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                package = module if path.name == "__init__.py" else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}".rstrip(".")
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names if module_path(f"{base}.{alias.name}")}
    return found


def import_paths(start: str) -> dict[str, list[str]]:
    """Every module of ours reachable from `start`, with one import path that reaches it (breadth first).
    Importing a.b.c runs a/__init__.py and a/b/__init__.py first, so parents count as reached too."""
    paths = {start: [start]}
    queue = deque([start])
    while queue:
        current = queue.popleft()
        if module_path(current) is None:
            continue
        for target in sorted(imported_modules(current)):
            parts = target.split(".")
            for i in range(1, len(parts) + 1):
                name = ".".join(parts[:i])
                if (name.startswith(PACKAGE) or name.startswith("server")) and name not in paths \
                        and module_path(name):
                    paths[name] = [*paths[current], name]
                    queue.append(name)
    return paths


def truth_reached(start: str) -> list[list[str]]:
    return [path for name, path in import_paths(start).items() if name.startswith(TRUTH_MODULES)]


TOOL_MODULES = sorted(f"{PACKAGE}.analysis_tools.{p.stem}" if p.stem != "__init__" else f"{PACKAGE}.analysis_tools"
                      for p in (ROOT / PACKAGE / "analysis_tools").glob("*.py"))


@pytest.mark.parametrize("start", [*TOOL_MODULES, f"{PACKAGE}.public", f"{PACKAGE}.validation",
                                   f"{PACKAGE}.sql_sandbox", f"{PACKAGE}.families", f"{PACKAGE}.catalog"])
def test_no_import_path_from_the_tools_reaches_the_truth(start: str) -> None:
    assert truth_reached(start) == []


def test_the_walker_finds_the_paths_that_do_exist() -> None:
    """The environment must reach the grader and the injectors: if the walker missed them, the test above
    would pass for nothing."""
    reached = {path[-1] for path in truth_reached("metric_tracker_rl.environment")}
    assert {"metric_tracker_rl.grader", "metric_tracker_rl.scenario", "metric_tracker_rl.anomalies"} <= reached
    assert any(name.startswith("metric_tracker_rl.anomalies.") for name in reached)
    # a package import reaches its submodules' __init__ and the names imported from it
    assert "metric_tracker_rl.analysis_tools.registry" in import_paths(f"{PACKAGE}.analysis_tools")
    # the SQL tool's sandbox is walked from the tools, and on its own above
    assert f"{PACKAGE}.sql_sandbox" in import_paths(f"{PACKAGE}.analysis_tools")


def docs_tool_example() -> str:
    text = (ROOT / "docs" / "tools.md").read_text()
    section = text.split("## Writing a tool", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_documented_pandas_tool_registers_and_answers_from_public_data() -> None:
    code = docs_tool_example()
    assert "import" in code and "register_tool" in code
    namespace: dict = {}
    exec(compile(code, "docs/tools.md", "exec"), namespace)  # noqa: S102 - our own documentation
    try:
        spec = TOOL_REGISTRY["get_weekday_means"]
        assert spec.parameters_schema()["properties"]["column"]["type"] == "string"
        episode = build_episode(resolve_episode_config(task_id="hard_mixed_multi"))
        data = episode.public.data
        outcome = run_tool("get_weekday_means", episode.public, {"column": "orders_placed"})
        assert outcome.ok, outcome.error
        column = data.daily[:, COUNT_COLUMNS.index("orders_placed")]
        for weekday, mean in outcome.result["means"].items():
            days = [i for i, name in enumerate(data.weekdays) if name == weekday]
            assert mean == pytest.approx(float(np.mean(column[days])))
        assert len(outcome.result["means"]) == 7
        bad = run_tool("get_weekday_means", episode.public, {"column": "revenue"})
        assert not bad.ok and "valid:" in bad.error and "app_opens" in bad.error
        # and through the environment, as an agent calls it
        env = MetricTrackerRlEnvironment()
        env.reset(task_id="hard_mixed_multi")
        observation = env.step(MetricTrackerRlAction(analysis_method="get_weekday_means",
                                                     analysis_args={"column": "app_open_to_order_placed"}))
        assert observation.status == "ok" and len(observation.analysis_result["means"]) == 7
    finally:
        TOOL_REGISTRY.pop("get_weekday_means", None)


def test_the_frames_are_the_public_counts() -> None:
    public = build_episode(resolve_episode_config(seed=3, difficulty="medium")).public
    daily, hourly = public.daily_frame(), public.hourly_frame()
    assert public.daily_frame() is daily  # built once per episode
    assert list(daily["date"]) == list(public.data.dates) and len(hourly) == 24 * len(public.data.dates)
    assert (daily[list(COUNT_COLUMNS)].to_numpy() == public.data.daily).all()
    assert (hourly.groupby("date", sort=False)[list(COUNT_COLUMNS)].sum().to_numpy() == public.data.daily).all()
    rate = daily["app_open_to_order_placed"].to_numpy()
    assert np.allclose(rate, public.data.daily[:, 3] / public.data.daily[:, 0])


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _project_imports(path: Path, modules: set[str]) -> set[str]:
    """The project modules a file imports anywhere in it (a function-local import counts as much as a top one)."""
    found = set()
    package = _module_name(path).rsplit(".", 0 if path.name == "__init__.py" else 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # a relative import: its package, node.level - 1 levels up
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {name for name in names if name in modules}
    return found


def test_the_import_graph_has_no_cycles() -> None:
    """Each layer imports only the layers below it: no module reaches itself through its imports. A package's
    __init__ importing its own submodules is how it registers them, so those edges are left out."""
    paths = [*ROOT.glob("metric_tracker_rl/**/*.py"), *ROOT.glob("server/*.py"), *ROOT.glob("benchmarks/*.py")]
    modules = {_module_name(path): path for path in paths}
    graph = {name: {target for target in _project_imports(path, set(modules))
                    if target != name and not (path.name == "__init__.py" and target.startswith(name + "."))}
             for name, path in modules.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycle = stack[stack.index(target):] + [target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


@pytest.mark.parametrize("module", ["metric_tracker_rl", "metric_tracker_rl.catalog", "metric_tracker_rl.view"])
def test_plain_modules_do_not_import_the_client_or_gradio(module: str) -> None:
    """The package's public names load on first use, so a data module costs no OpenEnv or gradio import."""
    import subprocess
    import sys

    probe = (f"import sys, {module}; "
             "print(sorted(m for m in ('gradio', 'openenv', 'metric_tracker_rl.client') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
