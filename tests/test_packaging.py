"""Packaging: Space front matter, openenv.yaml, the Dockerfile's build steps, the `server` entry point and
its port settings, `openenv validate`, and the client/server split."""

from __future__ import annotations

import ast
import glob
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import ROOT, serving
from deploy_helpers import copy_sources, pyproject

from lab.speed.image_context import dockerfile_instructions
from metric_tracker_rl.server_process import free_port

VENV_BIN = Path(sys.executable).parent


def readme_front_matter() -> dict[str, Any]:
    text = (ROOT / "README.md").read_text()
    assert text.startswith("---\n"), "README must open with the Space front matter"
    return yaml.safe_load(text.split("---\n", 2)[1])


# --- Space metadata and docs ---------------------------------------------------------------------------


def test_readme_front_matter_describes_a_docker_space() -> None:
    front = readme_front_matter()
    assert front["sdk"] == "docker"
    assert front["app_port"] == 8000
    assert "openenv" in front["tags"]
    assert front["base_path"] == "/web"


def test_the_readmes_opening_names_every_listed_difficulty() -> None:
    from metric_tracker_rl.catalog.published import DIFFICULTIES

    opening = (ROOT / "README.md").read_text(encoding="utf-8").split("## Quick start")[0]
    missing = [name for name in DIFFICULTIES if name not in opening]
    assert missing == [], f"the README's first paragraph leaves out {missing}"


def test_openenv_manifest_points_at_the_app() -> None:
    manifest = yaml.safe_load((ROOT / "openenv.yaml").read_text())
    assert manifest["name"] == "metric_tracker_rl"
    assert manifest["app"] == "server.app:app"
    assert manifest["port"] == 8000


def test_one_version_and_a_declared_license() -> None:
    """pyproject.toml holds the version; the installed package, the environment's metadata and the OpenEnv manifest
    all say the same; the license the package declares is the LICENSE file's."""
    from metric_tracker_rl import __version__
    from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment

    project = pyproject()["project"]
    manifest = yaml.safe_load((ROOT / "openenv.yaml").read_text())
    assert __version__ == project["version"] == str(manifest["version"])
    assert MetricTrackerRlEnvironment().get_metadata().version == __version__
    assert project["license"] == "BSD-3-Clause" and project["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("BSD 3-Clause License")


def test_project_script_runs_the_server_main() -> None:
    assert pyproject()["project"]["scripts"]["server"] == "metric_tracker_rl.serving.app:main"


def repo_snapshot(destination: Path) -> Path:
    """Copy the repo's own files (tracked, and new files git does not ignore) to `destination`. `openenv validate`
    hashes the tree before and after it runs, and tests in the other worker write caches (Hypothesis's example
    database, pytest's cache) into the checkout meanwhile: a snapshot holds still."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for relative in filter(None, listed):
        source = ROOT / relative
        if source.is_file() and not source.is_symlink():
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    return destination


@pytest.mark.slow
def test_openenv_validate_passes_on_the_repo(tmp_path: Path) -> None:
    """Without the image build (tests build no image): its runtime checks are skipped, and the exit status is 0."""
    snapshot = repo_snapshot(tmp_path / "repo")
    result = subprocess.run(
        [str(VENV_BIN / "openenv"), "validate", ".", "--skip-build"],
        cwd=snapshot,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS  static.manifest" in result.stdout and "--skip-build" in result.stdout


# --- Dockerfile ------------------------------------------------------------------------------------------


def test_dockerfile_installs_the_locked_runtime_with_a_pinned_uv_and_checks_health_on_port() -> None:
    instructions = dockerfile_instructions()
    runs = [args for kind, args in instructions if kind == "RUN"]
    assert any("uv sync --frozen --no-dev" in args for args in runs)
    assert any(args.startswith("pip install") and "uv==" in args for args in runs), "uv must be pinned"
    assert ("EXPOSE", str(readme_front_matter()["app_port"])) in instructions
    healthchecks = [args for kind, args in instructions if kind == "HEALTHCHECK"]
    assert len(healthchecks) == 1 and "/health" in healthchecks[0] and "PORT" in healthchecks[0]
    env_settings = " ".join(args for kind, args in instructions if kind == "ENV").split()
    assert f"PORT={readme_front_matter()['app_port']}" in env_settings
    assert not any(setting.startswith("ENABLE_WEB_INTERFACE=") for setting in env_settings)  # on by default


def test_dockerfile_copies_what_the_frozen_sync_needs_from_the_repo() -> None:
    """Mirror the image build without Docker: every COPY source exists, and what `uv sync` builds (project
    metadata, lock file, readme, packages) is copied before it runs."""
    instructions = dockerfile_instructions()
    sync_at = next(
        i
        for i, (kind, args) in enumerate(instructions)  # the sync that installs the project
        if kind == "RUN" and "uv sync --frozen --no-dev" in args and "--no-install-project" not in args
    )
    copied_before_sync: set[str] = set()
    copied: set[str] = set()
    for position, (kind, args) in enumerate(instructions):
        if kind not in ("COPY", "ADD"):
            continue
        sources = copy_sources(args)
        # Docker accepts a wildcard that matches nothing as long as the instruction copies something.
        matches = [m for source in sources for m in glob.glob(source, root_dir=ROOT)]
        assert matches, f"{kind} {args}: nothing to copy"
        for source in sources:
            if not any(char in source for char in "*?["):
                assert (ROOT / source).exists(), f"{kind} {args}: {source} is not in the repository"
        copied |= {Path(m).parts[0] for m in matches}
        if position < sync_at:
            copied_before_sync |= {Path(m).parts[0] for m in matches}
    project = pyproject()
    packages = {name.rstrip("*") for name in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    needed = {"pyproject.toml", "uv.lock", project["project"]["readme"], *packages}
    assert needed <= copied_before_sync
    assert "openenv.yaml" in copied


def test_dockerfile_command_runs_the_synced_entry_point_without_uv() -> None:
    """`uv run` would open /app/.venv/.lock for writing and need a uv cache; a Space runs as UID 1000."""
    commands = [args for kind, args in dockerfile_instructions() if kind == "CMD"]
    assert len(commands) == 1
    argv = json.loads(commands[0])
    workdir = next(args for kind, args in dockerfile_instructions() if kind == "WORKDIR")
    assert Path(argv[0]).parent == Path(workdir) / ".venv" / "bin"
    assert Path(argv[0]).name in pyproject()["project"]["scripts"]
    assert "--port" not in argv  # PORT decides


# --- entry point and ports -------------------------------------------------------------------------------


@pytest.mark.slow
def test_server_script_takes_its_port_from_the_port_variable() -> None:
    """`--port` is what every live-server test uses; here the `server` script gets only PORT."""
    port = free_port()
    env = {**os.environ, "PORT": str(port)}
    with serving([str(VENV_BIN / "server"), "--host", "127.0.0.1", "--no-web"], port, env) as url:
        assert httpx.get(f"{url}/metadata", timeout=60.0).json()["name"] == "metric_tracker_rl"


# --- layout ---------------------------------------------------------------------------------------------


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    return modules


SERVER_SIDE = "metric_tracker_rl.serving"


def test_client_package_never_imports_the_server() -> None:
    """The rest of the package (everything but the serving subpackage) imports nothing of it, nor the repository's
    top-level `server` folder (a harness that starts a server as a child process spawns a command)."""
    package = ROOT / "metric_tracker_rl"
    files = sorted(set(package.rglob("*.py")) - set((package / "serving").rglob("*.py")))
    assert len(files) > 20 and package / "client.py" in files
    offenders = {
        str(f.relative_to(ROOT)): sorted(
            m for m in imported_modules(f) if m.split(".")[0] == "server" or m.startswith(SERVER_SIDE)
        )
        for f in files
    }
    assert {f: m for f, m in offenders.items() if m} == {}


def test_app_module_only_builds_the_app() -> None:
    for path in (ROOT / "server" / "app.py", ROOT / "metric_tracker_rl" / "serving" / "app.py"):
        tree = ast.parse(path.read_text())
        assert [node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)] == []
    app = ROOT / "metric_tracker_rl" / "serving" / "app.py"
    assert "metric_tracker_rl.serving.environment" in imported_modules(app)
    assert imported_modules(ROOT / "server" / "app.py") <= {
        "__future__",
        "typing",
        "metric_tracker_rl.serving",
        "metric_tracker_rl.serving.app",
    }


@pytest.mark.slow
def test_the_wheel_installs_the_package_and_no_top_level_server(tmp_path: Path) -> None:
    """A top-level `server` in site-packages would collide with anyone else's; the server ships inside the package,
    and the `server` script points there. The lab (lab/) stays in the repository: the wheel holds the package alone."""
    command = [os.environ.get("UV", "uv"), "build", "--wheel", "--out-dir", str(tmp_path)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = archive.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert {name.split("/")[0] for name in names} == {
        "metric_tracker_rl",
        f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info",
    }
    assert "metric_tracker_rl/serving/app.py" in names and "metric_tracker_rl/serving/environment.py" in names
    assert "server = metric_tracker_rl.serving.app:main" in entry_points
