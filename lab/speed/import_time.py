"""Import cost of the core modules and of the client, each in a fresh interpreter.

    uv run python -m lab.speed.import_time [--runs N] [--breakdown]

Each statement runs in its own `python -c` N times (median wall seconds of the import alone, interpreter start-up
left out), and the line says whether OpenEnv or gradio came with it: the core works on plain types, so only the
client and the server should pay for the framework. `--breakdown` adds `python -X importtime`'s heaviest
top-level packages for each statement. Measure on an idle machine: other processes inflate every figure.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# The grader, the generator, the tools and what they read: plain types only.
CORE_MODULES = (
    "metric_tracker_rl.catalog.plain_types",
    "metric_tracker_rl.grading.grader",
    "metric_tracker_rl.generation",
    "metric_tracker_rl.analysis_tools",
    "metric_tracker_rl.catalog.validation",
    "metric_tracker_rl.catalog.tasks",
)
# The edge: the client a trainer imports, and the wire types.
EDGE_STATEMENTS = (
    "from metric_tracker_rl import MetricTrackerRlEnv",
    "import metric_tracker_rl.models",
)
FRAMEWORK = ("openenv", "gradio")

_PROBE = """\
import sys, time
start = time.perf_counter()
{statement}
elapsed = time.perf_counter() - start
print(elapsed, *[name for name in {framework!r} if name in sys.modules])
"""


def import_once(statement: str) -> tuple[float, list[str]]:
    """Seconds `statement` takes in a fresh interpreter, and which framework packages it loaded."""
    probe = _PROBE.format(statement=statement, framework=FRAMEWORK)
    completed = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    seconds, *loaded = completed.stdout.split()
    return float(seconds), loaded


def cumulative_import_ms(statement: str) -> dict[str, float]:
    """`python -X importtime`'s cumulative milliseconds of every module `statement` loads in a fresh interpreter,
    counted where the module is first imported (so a package another one imports counts inside both)."""
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement], cwd=ROOT, capture_output=True, text=True, check=True
    )
    cumulative: dict[str, float] = {}
    for line in completed.stderr.splitlines():
        fields = line.removeprefix("import time:").split("|")
        if len(fields) == 3 and fields[1].strip().isdigit():
            cumulative.setdefault(fields[2].strip(), int(fields[1]) / 1000)
    return cumulative


def heaviest_packages(statement: str, count: int) -> list[tuple[str, float]]:
    """The third-party top-level packages that cost `statement` the most, in cumulative milliseconds."""
    packages = {
        name: milliseconds
        for name, milliseconds in cumulative_import_ms(statement).items()
        if "." not in name and not name.startswith("_") and name not in sys.stdlib_module_names
    }
    return sorted(packages.items(), key=lambda item: -item[1])[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="fresh interpreters per statement (the median is shown)")
    parser.add_argument("--breakdown", action="store_true", help="the heaviest packages of each statement")
    args = parser.parse_args()
    statements = [f"import {module}" for module in CORE_MODULES] + list(EDGE_STATEMENTS)
    width = max(map(len, statements))
    for statement in statements:
        path = ROOT.joinpath(*statement.split()[1].split("."))
        if not (path.with_suffix(".py").exists() or path.is_dir()):  # an older checkout, measured for comparison
            print(f"{statement:<{width}}  (not in this checkout)")
            continue
        runs = [import_once(statement) for _ in range(args.runs)]
        median = statistics.median(seconds for seconds, _ in runs)
        loaded = ", ".join(runs[0][1]) or "neither"
        print(
            f"{statement:<{width}}  {median:6.2f} s  (median of {args.runs}; openenv/gradio loaded: {loaded})",
            flush=True,
        )
        if args.breakdown:
            for name, milliseconds in heaviest_packages(statement, 6):
                print(f"{'':<{width}}    {name:<24} {milliseconds:8.0f} ms")


if __name__ == "__main__":
    main()
