"""The import graph proves the wall (import-linter's contracts in pyproject.toml): nothing the tools import can
reach the injectors, the ground truth or the scoring. And the frames of the tools' pandas road are the public
counts."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from core_helpers import reset_episode

from metric_tracker_rl.catalog.published import COUNT_COLUMNS

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def lint_imports(*arguments: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """import-linter's `lint-imports`: the contracts in pyproject.toml, or those of the `--config` file named."""
    command = [str(Path(sys.executable).parent / "lint-imports"), "--no-cache", *arguments]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_the_import_wall_contracts_are_kept() -> None:
    """The packages import one way (the leaves, world and the wire types, the tools, generation / grading / view /
    client, serving, the adapters, the agents); nothing the tools read, the tools or the view import reaches the
    generator, the grader or the server; the client side and the agents never import the server side or the truth;
    the core never imports OpenEnv, gradio or the wire types built on them; only the episode builder reaches the
    audit and the data defects, and a defect mechanism imports only its seam; the package never imports server/ or
    the lab, the lab's folders import one way, the lab's findability check imports no reference agent, and the lab
    never imports server/."""
    result = lint_imports()
    assert result.returncode == 0 and "13 kept, 0 broken" in result.stdout, result.stdout + result.stderr


def test_every_subpackage_and_root_module_is_a_layer_of_the_one_way_contract() -> None:
    """A subpackage or root module added later is on some wall: the layers contract names every one of them, so
    no import between two of them goes unchecked."""
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    (layers,) = [
        contract
        for contract in contracts
        if contract["type"] == "layers" and contract["containers"] == ["metric_tracker_rl"]
    ]
    named = {name.strip() for layer in layers["layers"] for name in re.split(r"[|:]", layer)}
    package = ROOT / "metric_tracker_rl"
    subpackages = {path.parent.name for path in package.glob("*/__init__.py")}
    root_modules = {path.stem for path in package.glob("*.py") if path.name != "__init__.py"}
    assert named == subpackages | root_modules


def test_the_client_side_wall_names_whole_packages_and_root_modules() -> None:
    """The client side is named by top-level units of the package (every adapter by `adapters`), so a module added
    to one of them is behind the wall without anyone listing it."""
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    client_side = next(contract for contract in contracts if contract["name"].startswith("The client side"))
    units = {
        path.stem if path.suffix else path.name
        for path in (ROOT / "metric_tracker_rl").iterdir()
        if path.suffix == ".py" or (path / "__init__.py").exists()
    }
    named = [source.removeprefix("metric_tracker_rl.") for source in client_side["source_modules"]]
    assert set(named) <= units and "adapters" in named, named


def test_a_contract_breaks_on_an_indirect_import_inside_a_function(tmp_path: Path) -> None:
    """The linter follows imports through other modules and inside function bodies (where the package imports
    lazily): the contracts above would pass for nothing if it missed either."""
    package = tmp_path / "walled"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "tools.py").write_text("def use():\n    from walled import middle\n")
    (package / "middle.py").write_text("import walled.truth\n")
    (package / "truth.py").write_text("")
    (tmp_path / "wall.ini").write_text(
        "[importlinter]\nroot_package = walled\n\n[importlinter:contract:wall]\n"
        "name = wall\ntype = forbidden\nsource_modules = walled.tools\n"
        "forbidden_modules = walled.truth\n"
    )
    result = lint_imports("--config", "wall.ini", cwd=tmp_path)
    assert result.returncode == 1 and "walled.tools -> walled.middle" in result.stdout, result.stdout + result.stderr


# (importing module, what it is made to import, the wall that refuses it)
LEANING_IMPORTS = [
    (
        "metric_tracker_rl/client.py",
        "metric_tracker_rl.adapters.session",
        "metric_tracker_rl.client is not allowed to import metric_tracker_rl.adapters",
    ),
    (
        "metric_tracker_rl/serving/task_api.py",
        "metric_tracker_rl.adapters.scripted_chat",
        "metric_tracker_rl.serving is not allowed to import metric_tracker_rl.adapters",
    ),
    (
        "metric_tracker_rl/adapters/scripted_chat.py",
        "metric_tracker_rl.serving.environment",
        "metric_tracker_rl.adapters is not allowed to import metric_tracker_rl.serving",
    ),
    (
        "metric_tracker_rl/compat/openenv.py",
        "metric_tracker_rl.models",
        "metric_tracker_rl.compat is not allowed to import metric_tracker_rl.models",
    ),
    (
        "metric_tracker_rl/analysis_tools/tools/show_raw_data.py",
        "metric_tracker_rl.world.warehouse_brief",
        "metric_tracker_rl.analysis_tools.tools.show_raw_data is not allowed to import "
        "metric_tracker_rl.world.warehouse_brief",
    ),
    (
        "metric_tracker_rl/generation/defects/mechanisms/bot_farm.py",
        "metric_tracker_rl.generation.warehouse.world",
        "metric_tracker_rl.generation.defects.mechanisms.bot_farm -> metric_tracker_rl.generation.warehouse.world",
    ),
    (
        "metric_tracker_rl/grading/grader.py",
        "metric_tracker_rl.generation.audit.truth",
        "Illegal imports of protected package metric_tracker_rl.generation.audit.truth",
    ),
    (
        "metric_tracker_rl/generation/kinds/level_shift.py",
        "metric_tracker_rl.generation.defects.log_edits",
        "Illegal imports of protected package metric_tracker_rl.generation.defects.log_edits",
    ),
    (
        "lab/calibration/statement_lengths.py",
        "lab.speed.rung_budgets",
        "lab.calibration is not allowed to import lab.speed",
    ),
]


@pytest.mark.parametrize(
    ("importer", "imported", "refusal"),
    [pytest.param(*case, marks=[pytest.mark.slow] if index else []) for index, case in enumerate(LEANING_IMPORTS)],
)
def test_the_walls_refuse_an_import_that_leans(tmp_path: Path, importer: str, imported: str, refusal: str) -> None:
    """On a copy of the repository's packages, one import added against the flow breaks a contract: the client
    never imports an adapter, the server never imports an adapter (no two-way layer), every adapter is on the
    client side, and OpenEnv's internals import nothing of the package."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    for package in config["root_packages"]:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    assert lint_imports(cwd=tmp_path).returncode == 0  # the copy keeps every contract before the edit
    with (tmp_path / importer).open("a") as module:
        module.write(f"\nimport {imported}\n")
    result = lint_imports(cwd=tmp_path)
    assert result.returncode == 1 and refusal in " ".join(result.stdout.split()), result.stdout + result.stderr


def test_the_frames_are_the_public_counts() -> None:
    public = reset_episode(seed=3, difficulty="medium").public
    daily, hourly = public.daily_frame(), public.hourly_frame()
    assert public.daily_frame() is daily  # built once per episode
    assert list(daily["date"]) == list(public.dates) and len(hourly) == 24 * len(public.dates)
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
    paths = [*ROOT.glob("metric_tracker_rl/**/*.py"), *ROOT.glob("server/*.py"), *ROOT.glob("lab/**/*.py")]
    modules = {_module_name(path): path for path in paths}
    graph = {
        name: {
            target
            for target in _project_imports(path, set(modules))
            if target != name and not (path.name == "__init__.py" and target.startswith(name + "."))
        }
        for name, path in modules.items()
    }
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycle = stack[stack.index(target) :] + [target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


def test_no_module_imports_the_package_that_imports_it() -> None:
    """The cycle the graph above leaves out: a package's __init__ imports a submodule (to register it), and that
    submodule imports the package back (`from package import sibling` reads the package's namespace)."""
    paths = [*ROOT.glob("metric_tracker_rl/**/*.py"), *ROOT.glob("server/*.py"), *ROOT.glob("lab/**/*.py")]
    modules = {_module_name(path): path for path in paths}
    back = sorted(
        f"{name} <-> {package}"
        for package, path in modules.items()
        if path.name == "__init__.py"
        for name in _project_imports(path, set(modules))
        if name.startswith(package + ".") and package in _project_imports(modules[name], set(modules))
    )
    assert back == []


def _framework_loaded_by(statement: str) -> str:
    """The framework packages (and our client) that `statement` loads in a fresh interpreter, as a sorted list."""
    probe = (
        f"import sys; {statement}; "
        "print(sorted(m for m in ('gradio', 'openenv', 'metric_tracker_rl.client') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    return result.stdout.split("\n", 1)[0]


def _imports(modules: list[str]) -> str:
    """One statement that imports every module: what none of them loads together, none loads alone."""
    return "; ".join(f"import {module}" for module in modules)


def test_plain_modules_do_not_import_the_client_or_gradio() -> None:
    """The package's public names load on first use, so a data module costs no OpenEnv or gradio import."""
    plain = ["metric_tracker_rl", "metric_tracker_rl.catalog.published", "metric_tracker_rl.view.render"]
    assert _framework_loaded_by(_imports(plain)) == "[]"


@pytest.mark.slow
def test_the_package_exports_its_plain_types_without_the_framework() -> None:
    """`from metric_tracker_rl import MetricSubmissionRow` (a script that builds or scores a report) loads no
    framework, while the client's name still brings OpenEnv (the probe sees what it is asked to see)."""
    plain = "from metric_tracker_rl import MetricSubmissionRow, PayloadGeneratorMethod, RewardBreakdown, TASKS"
    assert _framework_loaded_by(plain) == "[]"
    client = _framework_loaded_by("from metric_tracker_rl import MetricTrackerRlEnv")
    assert "'openenv'" in client and "'metric_tracker_rl.client'" in client


CORE_MODULES = [
    "metric_tracker_rl.catalog.plain_types",
    "metric_tracker_rl.grading.grader",
    "metric_tracker_rl.generation",
    "metric_tracker_rl.analysis_tools",
    "metric_tracker_rl.catalog.validation",
    "metric_tracker_rl.catalog.tasks",
]


def test_the_core_imports_neither_openenv_nor_gradio() -> None:
    """The grader, the generator and the tools work on plain types: importing one, as a script that scores or
    builds episodes does, costs no framework (import-linter's third contract checks every core module statically;
    this checks what actually loads, function-level and third-party imports included)."""
    assert _framework_loaded_by(_imports(CORE_MODULES)) == "[]"


def test_the_wire_types_still_carry_the_framework_and_the_plain_types() -> None:
    """models stays the edge: its action and observation are OpenEnv's, and the plain types it re-exports are the
    very classes the core uses (clients import `from metric_tracker_rl.models import MetricSubmissionRow`)."""
    from openenv.core.env_server.types import Action, Observation

    from metric_tracker_rl import models
    from metric_tracker_rl.catalog import plain_types

    assert issubclass(models.MetricTrackerRlAction, Action)
    assert issubclass(models.MetricTrackerRlObservation, Observation)
    shared = [name for name in plain_types.__dict__ if not name.startswith("_") and name in models.__all__]
    assert {"MetricSubmissionRow", "PayloadGeneratorMethod", "RewardBreakdown", "SubmissionIssue"} <= set(shared)
    for name in shared:
        assert getattr(models, name) is getattr(plain_types, name), name


def test_the_core_contract_lists_the_modules_tested_in_a_fresh_interpreter() -> None:
    """The modules imported one by one above are among those the linter contract covers (one list cannot drift
    from the other)."""
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    core = next(contract for contract in contracts if "openenv" in contract.get("forbidden_modules", ()))
    assert all(
        any(module == source or module.startswith(source + ".") for source in core["source_modules"])
        for module in CORE_MODULES
    )
    assert {"openenv", "gradio", "metric_tracker_rl.models"} <= set(core["forbidden_modules"])
