"""The edit loop's cost: the CPU seconds of `uv run pytest -m "not slow" -q` as a contributor runs it, and the
number of tests it runs, written to lab/runs/edit_loop.json (untracked), or with `--keep` to the kept
lab/artifacts/edit_loop.json that lab/tests/test_edit_loop.py holds under EDIT_LOOP_CPU_S.

    nice -n 5 uv run python -m lab.speed.edit_loop --keep

A contributor runs it a second time with the bytecode the first one wrote: a collection (`--collect-only`, which
imports every module the run imports) writes it first, with PYTHONDONTWRITEBYTECODE left out. The figure is the
user and system time of the whole process tree (pytest, xdist's workers and what the tests start), as the kernel
accounts a waited-for child's own children to it (what `/usr/bin/time` reports). Other work on the machine inflates
it: the record keeps the load average before and after, and the figure to compare with is one measured idle.
"""

from __future__ import annotations

import argparse
import ast
import datetime
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from lab.calibration.outputs import KEPT, add_output_flags, output_path

ROOT = Path(__file__).resolve().parents[2]
ARTIFACT = KEPT / "edit_loop.json"
EDIT_LOOP_CPU_S = 150.0  # the edit loop's budget, in CPU seconds
COMMAND = ["uv", "run", "pytest", "-m", "not slow", "-q"]
COLLECT = ["uv", "run", "pytest", "--collect-only", "-q", "-m", "not slow", "-n", "0", "-p", "no:randomly"]


def needs_a_group(path: Path) -> bool:
    """Whether a test module skips as a whole without an optional dependency group (a `pytest.importorskip` at its
    top level): how many tests it holds depends on what is installed."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        value = node.value if isinstance(node, (ast.Expr, ast.Assign)) else None
        if isinstance(value, ast.Call) and ast.unparse(value.func) == "pytest.importorskip":
            return True
    return False


def counted_tests() -> int:
    """The edit loop's tests outside the modules that need an optional group: the same in every environment."""
    ignored = [f"--ignore={path}" for path in sorted((ROOT / "tests").glob("test_*.py")) if needs_a_group(path)]
    completed = subprocess.run(
        [*COLLECT, *ignored], cwd=ROOT, env=contributor_env(), capture_output=True, text=True, check=True
    )
    found = re.search(r"^(\d+)(?:/\d+)? tests? collected", completed.stdout, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no count in pytest's collection:\n{completed.stdout[-2000:]}")
    return int(found.group(1))


def contributor_env() -> dict[str, str]:
    """The environment of a contributor's shell: bytecode written, no CI settings."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "CI", "PYTEST_ADDOPTS")}


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure() -> dict[str, Any]:
    """Warm the bytecode, then run the edit loop once: its CPU seconds, wall seconds, tests and outcome."""
    tests = counted_tests()  # imports what the run imports: the bytecode is written
    load_before = os.getloadavg()
    cpu_before, started = children_cpu_s(), time.monotonic()
    completed = subprocess.run(COMMAND, cwd=ROOT, env=contributor_env(), capture_output=True, text=True, check=False)
    cpu_s, wall_s = children_cpu_s() - cpu_before, time.monotonic() - started
    summary = completed.stdout.strip().splitlines()[-1] if completed.stdout.strip() else ""
    return {
        "command": "python -m lab.speed.edit_loop --keep",  # what writes the kept file
        "measured": " ".join(f"'{part}'" if " " in part else part for part in COMMAND),
        "cpu_s": round(cpu_s, 1),
        "wall_s": round(wall_s, 1),
        "tests": tests,
        "summary": summary,
        "exit_code": completed.returncode,
        "failures": [line for line in completed.stdout.splitlines() if line.startswith(("FAILED ", "ERROR "))],
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_output_flags(parser, ARTIFACT.name)
    args = parser.parse_args(argv)
    record = measure()
    out = output_path(args, ARTIFACT.name)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(record, indent=1))
    print(f"wrote {out}")
    return 0 if record["exit_code"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
