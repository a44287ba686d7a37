"""Every code block a reader is meant to copy runs as shown: each Python block compiles, defines or imports every
name it uses, and imports what exists; each install command adds a group without removing another; the README's
snippet, run against a live server, scores what the README says it scores."""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.util
import io
import re
import subprocess
import sys

import pytest
from conftest import ROOT
from deploy_helpers import pyproject

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.M | re.S)


def blocks(language: str) -> list[tuple[str, str]]:
    """(where, code) of every fenced block in that language."""
    found = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for match in BLOCK.finditer(text):
            if match.group(1) == language:
                line = text.count("\n", 0, match.start()) + 1
                found.append((f"{path.relative_to(ROOT)}:{line}", match.group(2)))
    return found


def optional_modules() -> set[str]:
    """Import names of the optional dependency groups' packages (absent from a default install)."""
    project = pyproject()
    names = set()
    for group, requirements in project["dependency-groups"].items():
        if group != "dev":
            names |= {re.split(r"[<>=;\[ ]", r, maxsplit=1)[0].replace("-", "_") for r in requirements}
    return names


PYTHON_BLOCKS = blocks("python")


def test_the_docs_hold_the_snippets_this_file_checks() -> None:
    where = [w.split(":")[0] for w, _ in PYTHON_BLOCKS]
    assert {"README.md", "docs/training.md", "docs/tools.md"} <= set(where)


@pytest.mark.parametrize(("where", "code"), PYTHON_BLOCKS, ids=[w for w, _ in PYTHON_BLOCKS])
def test_a_python_snippet_defines_or_imports_every_name_it_uses(where: str, code: str) -> None:
    ast.parse(code)  # compiles
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--isolated",
            "--select",
            "F821,F822,F823",
            "--output-format",
            "concise",
            "--stdin-filename",
            "snippet.py",
            "-",
        ],
        input=code,
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, f"{where}: {result.stdout}"


@pytest.mark.parametrize(("where", "code"), PYTHON_BLOCKS, ids=[w for w, _ in PYTHON_BLOCKS])
def test_a_python_snippet_imports_what_exists(where: str, code: str) -> None:
    optional = optional_modules()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            imports = [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module != "__future__":
            imports = [(node.module, alias.name) for alias in node.names]
        else:
            continue
        for module, name in imports:
            top = module.split(".")[0]
            if importlib.util.find_spec(top) is None:
                assert top in optional, f"{where}: {module} is neither installed nor in an optional group"
                continue
            if top in optional:
                continue  # an optional group that happens to be installed: its API is its own
            imported = importlib.import_module(module)
            assert name is None or hasattr(imported, name) or importlib.util.find_spec(f"{module}.{name}"), (
                f"{where}: {module} has no {name}"
            )


def test_every_install_command_adds_a_group_without_removing_another() -> None:
    groups = set(pyproject()["dependency-groups"]) - {"dev"}
    commands = [
        (where, line)
        for where, code in blocks("bash")
        for line in code.splitlines()
        if line.startswith("uv sync") and "--group" in line
    ]
    assert commands
    for where, line in commands:
        named = set(re.findall(r"--group (\w+)", line))
        assert "--inexact" in line or named == groups, f"{where}: `{line}` uninstalls the groups it does not name"


@pytest.mark.slow
def test_the_readme_snippet_scores_what_the_readme_says(server_url: str) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (code,) = [code for where, code in PYTHON_BLOCKS if where.startswith("README.md")]
    (claimed,) = re.findall(r"so it scores (\d\.\d+)", readme)
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        exec(compile(code.replace("http://localhost:8000", server_url), "README.md", "exec"), {})  # noqa: S102
    reward = float(output.getvalue().splitlines()[1].split()[0])
    assert round(reward, 2) == float(claimed), output.getvalue()
    submitted, matched, false_positives = (
        int(n)
        for n in re.search(
            r"the median filter's (\d+) strongest rows unread.*?\((\d+) incident of \d found, (\d+) false", readme, re.S
        ).groups()
    )
    breakdown = output.getvalue()
    assert f"submitted_row_count={submitted}" in breakdown and f"matched_row_count={matched}" in breakdown
    assert f"false_positive_count={false_positives}" in breakdown
    (neutral,) = re.findall(r"`neutral_row_count=(\d+)` counts the false positives", readme)
    assert f"neutral_row_count={neutral}" in breakdown and int(neutral) <= false_positives


def test_what_a_documented_command_writes_into_the_checkout_is_ignored_by_git() -> None:
    """A reader who runs a command as written must not be left with untracked files: every folder or file a bash
    block's `--trajectories`, `--transcripts` or `--output` names is one .gitignore covers."""
    written = {
        (where, path)
        for where, code in blocks("bash")
        for path in re.findall(r"--(?:trajectories|transcripts|output) (?!DIR|FILE)([^\s`)]+)", code)
        if not path.startswith(("/", "lab/artifacts/"))
    }
    assert {path for _, path in written} >= {"runs/sft/", "results.json"}
    for where, path in written:
        probe = path.rstrip("/") + ("/probe" if path.endswith("/") else "")
        ignored = subprocess.run(["git", "check-ignore", "-q", probe], cwd=ROOT).returncode == 0
        assert ignored, f"{where}: `{path}` is not ignored by git"
