"""The image starts the way a Hugging Face Space starts it, proved without a Docker engine: the Dockerfile's
COPY and `uv sync` steps are reproduced in order in a directory owned by root, as root, and its CMD then runs
as UID 1000 (its USER) with an unwritable HOME (a Space's user has neither write access to /app nor a uv cache).

Needs root (to own the files and switch user) and a Python of the image's version that UID 1000 may run;
skipped otherwise. uv runs offline from the cache the project's own `uv sync` filled."""

from __future__ import annotations

import glob
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import ROOT, serving
from deploy_helpers import copy_sources, image_env
from websockets.sync.client import connect

from lab.speed.image_context import dockerfile_instructions
from metric_tracker_rl.server_process import free_port

pytestmark = pytest.mark.slow

SPACE_UID = 1000
SYNC_TIMEOUT_S = 900


def image_python_version() -> str:
    base = next(args for kind, args in dockerfile_instructions() if kind == "FROM")
    match = re.match(r"python:(\d+\.\d+)", base)
    assert match, f"unexpected base image {base}"
    return match.group(1)


def python_for_uid(version: str, uid: int) -> str | None:
    """An interpreter of `version` that `uid` can execute (the project's own may sit under root's home)."""
    for candidate in (f"/usr/local/bin/python{version}", f"/usr/bin/python{version}"):
        if os.path.exists(candidate):
            check = subprocess.run(
                [candidate, "-c", "import sys; print(sys.version)"],
                user=uid,
                capture_output=True,
                text=True,
                check=False,
            )
            if check.returncode == 0:
                return candidate
    return None


def reproduce_copy(arguments: str, app_dir: Path) -> None:
    """What one COPY instruction puts in the image's WORKDIR (compiled files and build leftovers aside)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    *_, destination = shlex.split(arguments)
    target = app_dir / destination
    for source in copy_sources(arguments):
        for match in glob.glob(source, root_dir=ROOT):
            origin = ROOT / match
            if origin.is_dir():
                shutil.copytree(origin, target, ignore=ignore, dirs_exist_ok=True)
            else:
                assert destination.endswith("/"), f"COPY {arguments}: files are copied into a directory here"
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target / origin.name)


@pytest.fixture(scope="module")
def built_image() -> Iterator[Path]:
    """The image's WORKDIR, reproduced under a root-owned temporary directory readable by everyone."""
    if os.geteuid() != 0:
        pytest.skip("needs root, to own the image's files and to start its command as another user")
    python = python_for_uid(image_python_version(), SPACE_UID)
    if python is None:
        pytest.skip(f"no Python {image_python_version()} that UID {SPACE_UID} may run")
    with tempfile.TemporaryDirectory() as root:
        os.chmod(root, 0o755)
        workdir = next(args for kind, args in dockerfile_instructions() if kind == "WORKDIR")
        app_dir = Path(root) / workdir.lstrip("/")
        app_dir.mkdir(parents=True)
        env = {
            **os.environ,
            **image_env(),
            "UV_PYTHON": python,
            "UV_OFFLINE": "1",
            "UV_PROJECT_ENVIRONMENT": str(app_dir / ".venv"),
        }
        env.pop("VIRTUAL_ENV", None)
        # In the Dockerfile's order: each sync sees only what was copied before it (the first, the lock file).
        for kind, args in dockerfile_instructions():
            if kind == "COPY":
                reproduce_copy(args, app_dir)
            elif kind == "RUN" and "uv sync" in args:
                subprocess.run(
                    shlex.split(args), cwd=app_dir, env=env, check=True, timeout=SYNC_TIMEOUT_S, capture_output=True
                )
        yield app_dir


def in_image(argument: str, app_dir: Path) -> str:
    """An argument of the image's CMD or HEALTHCHECK with its WORKDIR mapped to the reproduction."""
    workdir = next(args for kind, args in dockerfile_instructions() if kind == "WORKDIR")
    return argument.replace(workdir, str(app_dir)) if argument.startswith(workdir) else argument


def test_the_image_command_serves_as_uid_1000_with_an_unwritable_home(built_image: Path) -> None:
    app_dir = built_image
    assert app_dir.stat().st_uid == 0 and not app_dir.stat().st_mode & stat.S_IWOTH
    command = [in_image(a, app_dir) for a in json.loads(next(a for k, a in dockerfile_instructions() if k == "CMD"))]
    port = free_port()
    env = {**image_env(), "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/nonexistent", "PORT": str(port)}
    as_space_user = [
        "setpriv",
        f"--reuid={SPACE_UID}",
        f"--regid={SPACE_UID}",
        "--clear-groups",
        "env",
        f"--chdir={app_dir}",
    ]
    with serving([*as_space_user, *command], port, env, timeout_s=180.0) as url:
        assert httpx.get(f"{url}/health", timeout=30).status_code == 200
        page = httpx.get(f"{url}/web/", timeout=60)
        assert page.status_code == 200 and "gradio" in page.text.lower()
        with connect(url.replace("http", "ws", 1) + "/ws", open_timeout=30) as ws:
            ws.send(json.dumps({"type": "reset", "data": {"seed": 5}}))
            assert json.loads(ws.recv(timeout=120))["data"]["observation"]["status"] == "ready"
            ws.send(
                json.dumps(
                    {"type": "step", "data": {"analysis_method": "show_raw_data", "analysis_args": {"limit": 2}}}
                )
            )
            assert json.loads(ws.recv(timeout=60))["data"]["observation"]["status"] == "ok"
            ws.send(json.dumps({"type": "step", "data": {"classifications": []}}))
            graded = json.loads(ws.recv(timeout=60))
            assert graded["type"] == "observation" and graded["data"]["reward"] is not None, graded

        healthcheck = next(a for k, a in dockerfile_instructions() if k == "HEALTHCHECK")
        probe = [in_image(a, app_dir) for a in json.loads(healthcheck.split(" CMD ", 1)[1])]
        result = subprocess.run(probe, env=env, user=SPACE_UID, capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stderr
