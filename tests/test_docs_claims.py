"""The docs' concrete claims, checked mechanically: the commands they give run the modules and flags that exist,
the settings they name are read by the code, the tools, tasks and splits they name exist, and every table of
measured numbers says which command produced it."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest
from code_names import CodeNames, code_names
from openenv.core.env_server.types import WSErrorCode

from metric_tracker_rl.analysis_tools import TOOL_REGISTRY
from metric_tracker_rl.spec.task_splits import SPLITS
from metric_tracker_rl.spec.tasks import TASK_ALIASES, TASKS
from metric_tracker_rl.view.tool_schemas import SUBMISSION_TOOLS

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CODE = [*ROOT.glob("metric_tracker_rl/**/*.py"), *ROOT.glob("server/*.py"), *ROOT.glob("benchmarks/*.py"),
        *ROOT.glob("training/*.py"), ROOT / "inference.py", ROOT / "Dockerfile", ROOT / ".ci" / "run"]
# Settings the docs name that belong to other programs, not to this project's code.
OTHER_PROGRAMS_SETTINGS = {
    "PYTHONHASHSEED",  # Python's own: named where a measurement fixed it
    "CUDA_VISIBLE_DEVICES",  # PyTorch's device selection, for trainers
    "HF_HUB_OFFLINE",  # huggingface_hub's offline switch
    "TRL_EXPERIMENTAL_SILENCE",  # TRL's warning switch for its experimental environment support
    "UV_CACHE_DIR",  # uv's cache location, for install measurements
    "VLLM_BASE_URL",  # Inspect AI's vLLM provider: the vLLM server a model is served from
}
# Error codes the docs quote are OpenEnv's (its WebSocket error codes), not settings.
ERROR_CODES = {code.value for code in WSErrorCode}
COMMAND = re.compile(r"(?:uv run (?:python )?-m|python3? -m|uv run) ([\w./-]+)((?: +[^`\n|]*)?)")
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")
SETTING = re.compile(r"`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)(?:=[^`]*)?`")
TOOL_LIKE = re.compile(r"`((?:get|list|compare|check|detect|show|rows_for|hourly_rows_for|preview|submit|payload)_"
                       r"[a-z_]+|task_overview|payload_generator)(?:\([^`]*\))?`")
TASK_LIKE = re.compile(r"\b((?:easy|medium|hard)_(?:single|mixed|two)_[a-z]+|(?:frontier|deep)_(?:segments|cuboids))\b")
SPLIT_LIKE = re.compile(r"""split=["'](\w+)["']""")
DECIMAL = re.compile(r"\b\d+\.\d+\b")
# External programs run with `uv run`; their flags are theirs to check.
EXTERNAL = {"pytest", "inspect", "openenv", "ruff", "trl", "accelerate", "server.app", "lint-imports"}


def lines_of(path: Path) -> list[tuple[int, str]]:
    return list(enumerate(path.read_text(encoding="utf-8").splitlines(), start=1))


def where(path: Path, number: int) -> str:
    return f"{path.relative_to(ROOT)}:{number}"


def script_path(target: str) -> Path | None:
    """The source file that `uv run <target>` or `python -m <target>` runs."""
    if target.endswith(".py"):
        return ROOT / target
    if target == "server":
        return ROOT / "metric_tracker_rl" / "serving" / "app.py"  # what the `server` script runs
    candidate = ROOT / (target.replace(".", "/") + ".py")
    return candidate if candidate.exists() else ROOT / target.replace(".", "/") / "__main__.py"


def accepted_flags(path: Path) -> set[str]:
    """The option strings a script's argparse parser declares (string literals passed to add_argument), its own
    or those of a project module it imports (a reference server's parser lives in benchmarks/reference_server.py)."""
    tree = ast.parse(path.read_text())
    flags = {"--help"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument":
            flags |= {arg.value for arg in node.args if isinstance(arg, ast.Constant) and str(arg.value)[:2] == "--"}
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("benchmarks."):
            flags |= accepted_flags(ROOT / (node.module.replace(".", "/") + ".py"))
    return flags


@cache
def used_names() -> CodeNames:
    return code_names(CODE)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_command_names_a_script_and_flags_it_accepts(doc: Path) -> None:
    problems = []
    for number, line in lines_of(doc):
        for target, rest in COMMAND.findall(line):
            target = target.rstrip(".,:;)")
            if target in EXTERNAL or target.startswith(("inspect", "openenv")) or target in ("python", "python3"):
                continue  # another program, or a command wrapped onto the next line (read there)
            path = script_path(target)
            if path is None or not path.exists():
                problems.append(f"{where(doc, number)}: `{target}` is no script here")
                continue
            unknown = set(FLAG.findall(rest)) - accepted_flags(path)
            if unknown:
                problems.append(f"{where(doc, number)}: {target} takes no {', '.join(sorted(unknown))}")
    assert not problems, "\n".join(problems)


def test_every_setting_the_docs_name_is_read_by_the_code() -> None:
    code = used_names()
    # An upper-case name in a doc is a setting the code reads, or a constant the code defines (RETRY_COST).
    problems = [f"{where(doc, number)}: `{name}` is read nowhere in the code, nor defined there"
                for doc in DOCS for number, line in lines_of(doc) for name in SETTING.findall(line)
                if not (code.reads_setting(name) or name in code.defined)
                and name not in OTHER_PROGRAMS_SETTINGS and name not in ERROR_CODES]
    assert not problems, "\n".join(problems)


def test_every_tool_task_and_split_the_docs_name_exists() -> None:
    tools = set(TOOL_REGISTRY) | set(SUBMISSION_TOOLS)
    code = used_names()  # a method, function, field or string of the code's (get_reward, list_tasks, ...)
    problems = []
    for doc in DOCS:
        for number, line in lines_of(doc):
            problems += [f"{where(doc, number)}: no tool (or other name of the code) `{name}`"
                         for name in TOOL_LIKE.findall(line) if name not in tools and not code.has(name)]
            problems += [f"{where(doc, number)}: no task `{name}`" for name in TASK_LIKE.findall(line)
                         if name not in TASKS and name not in TASK_ALIASES]
            problems += [f"{where(doc, number)}: no split `{name}`" for name in SPLIT_LIKE.findall(line)
                         if name not in SPLITS]
    assert not problems, "\n".join(problems)


def tables(doc: Path) -> list[tuple[int, list[str]]]:
    """(first line number, rows) of each Markdown table."""
    found, current, start = [], [], 0
    for number, line in lines_of(doc):
        if line.startswith("|"):
            if not current:
                start = number
            current.append(line)
        elif current:
            found.append((start, current))
            current = []
    if current:
        found.append((start, current))
    return found


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_table_of_measured_numbers_says_which_command_made_it(doc: Path) -> None:
    """A table of measurements (a decimal in a data row, and prose before it that says it was measured or run)
    has the command that regenerates it in that prose (the 15 lines above, up to the previous table)."""
    text = [line for _, line in lines_of(doc)]
    problems = []
    previous_end = 0
    for start, rows in tables(doc):
        data = rows[2:]
        before = "\n".join(text[max(previous_end, start - 16):start - 1])
        measured = re.search(r"measured|median of|one run|\bruns?\b.*\bseeds?\b", before, re.IGNORECASE)
        numbers = any(DECIMAL.search(cell) for row in data for cell in row.split("|")[2:])
        if measured and numbers and not re.search(r"uv run |uv sync |python3? -m |inference\.py", before):
            problems.append(f"{where(doc, start)}: a table of measured numbers with no command before it")
        previous_end = start + len(rows) - 1
    assert not problems, "\n".join(problems)


# A run's date or hour, or the branch it ran on: history, which belongs in CHANGELOG.md (data dates such as
# 2026-03-10 are the dataset's and pass).
DATED = re.compile(r"\b\d{1,2}:\d{2} UTC\b|\b\d{1,2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\b"
                   r"|\b(?:run|measured) on (?:\d{4}-\d{2}-\d{2}|the \w+ branch|the integrated main)", re.IGNORECASE)


def test_the_docs_state_the_present() -> None:
    """No doc dates its runs: the docs keep the current figures with their command, the history is in the
    changelog."""
    dated = [f"{where(doc, number)}: {match.group()!r}" for doc in DOCS for number, line in lines_of(doc)
             for match in DATED.finditer(line)]
    assert not dated, "\n".join(dated)


def test_the_checks_catch_what_they_are_for(tmp_path: Path) -> None:
    """Each rule fails on a doc line made wrong on purpose."""
    assert "--no-such-flag" not in accepted_flags(script_path("benchmarks.calibrate"))
    assert not script_path("benchmarks.no_such_module").exists()
    assert not used_names().reads_setting("NO_SUCH_SETTING_ANYWHERE")
    mentioned = tmp_path / "mentioned.py"  # named in a comment, a docstring and a bare string only: not read
    mentioned.write_text('"""Reads ONLY_MENTIONED."""\n# ONLY_MENTIONED\n"ONLY_MENTIONED is documented here"\n'
                         'def reads() -> str:\n    """ONLY_MENTIONED"""\n    return os.environ["REALLY_READ"]\n')
    shell = tmp_path / "run"
    shell.write_text("# SHELL_MENTIONED is documented\nexport SHELL_READ=1 # SHELL_TRAILING\n")
    names = code_names([mentioned, shell])
    assert not any(names.reads_setting(name) or names.has(name)
                   for name in ("ONLY_MENTIONED", "SHELL_MENTIONED", "SHELL_TRAILING"))
    assert names.reads_setting("REALLY_READ") and names.reads_setting("SHELL_READ") and names.has("reads")
    assert TOOL_LIKE.findall("call `get_no_such_rows(limit=5)`") == ["get_no_such_rows"]
    bad = tmp_path / "bad.md"
    bad.write_text("Measured.\n\n| a | b |\n| --- | --- |\n| x | 1.25 |\n")
    assert tables(bad) == [(3, ["| a | b |", "| --- | --- |", "| x | 1.25 |"])]
    assert [m.group() for m in DATED.finditer("One run on 2026-11-23 (05:30 UTC, 22 Nov), on 2026-03-10")] == [
        "run on 2026-11-23", "05:30 UTC", "22 Nov"]


CONSTANT_CLAIM = re.compile(r"`([A-Z][A-Z0-9_]*) = ([^`]+)`")


def module_constants() -> dict[str, set[str]]:
    """Every module-level `NAME = literal` of the project's Python code: name -> the literals' reprs."""
    found: dict[str, set[str]] = {}
    for path in CODE:
        if path.suffix != ".py":
            continue
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            targets = node.targets if isinstance(node, ast.Assign) else \
                [node.target] if isinstance(node, ast.AnnAssign) and node.value is not None else []
            for target in targets:
                if isinstance(target, ast.Name):
                    try:
                        found.setdefault(target.id, set()).add(repr(ast.literal_eval(node.value)))
                    except ValueError:
                        found.setdefault(target.id, set()).add(ast.unparse(node.value))
    return found


def test_constants_the_docs_quote_exist_with_that_value() -> None:
    """A doc that writes `NAME = value` claims the code has that constant with that value."""
    constants = module_constants()
    wrong = []
    for path in DOCS:
        for number, line in lines_of(path):
            for name, value in CONSTANT_CLAIM.findall(line):
                try:
                    claimed = repr(ast.literal_eval(value.strip()))
                except (ValueError, SyntaxError):
                    claimed = value.strip()
                if claimed not in constants.get(name, set()):
                    wrong.append(f"{where(path, number)}: `{name} = {value}` (code: {sorted(constants.get(name, []))})")
    assert not wrong, "\n".join(wrong)


def test_the_constant_claim_check_catches_a_wrong_claim() -> None:
    constants = module_constants()
    assert "0.25" in constants["RETRY_COST"]
    assert "SIDE_EFFECT_ROW_COST" not in constants
    assert CONSTANT_CLAIM.findall("(`SIDE_EFFECT_ROW_COST = 1.0`)") == [("SIDE_EFFECT_ROW_COST", "1.0")]


# A duration in prose: a number with a time unit, or the vague kind ("under a minute", "several minutes").
DURATION = re.compile(r"\b\d+(?:[.,]\d+)?(?:\s|-)?(?:ms|µs|us|s|seconds?|minutes?|min)\b"
                      r"|\b(?:under|about|over|several|a few) (?:a |one )?(?:minutes?|seconds?)\b", re.IGNORECASE)
# Docs that still state durations, and why; every other doc states none (a measurement goes to CHANGELOG.md under
# its date, or into a table generated from an artifact). Shrink this as those docs are cleaned.
DOCS_WITH_DURATIONS = {
    "performance.md": "the benchmarks' targets, and the table rendered from docs/artifacts/performance.json",
    "frameworks.md": "the MCP benchmark's round length, and a verifiers run's output as it prints it",
    "deployment.md": "the retry and drain settings' defaults, a sample retry log, an orchestrator's kill delay",
    "reliability.md": "the session and SQL limits' defaults, each with its setting",
    "tools.md": "the SQL sandbox's limits (time per statement, the watchdog's delay), which are settings, not runs",
}


def test_only_the_listed_docs_state_durations() -> None:
    found = [f"{where(doc, number)}: {match.group()!r}" for doc in DOCS if doc.name not in DOCS_WITH_DURATIONS
             for number, line in lines_of(doc) for match in DURATION.finditer(line)]
    assert not found, "a duration in a doc that states none; move it to CHANGELOG.md under today's date, or give " \
                      "the command that measures it:\n" + "\n".join(found)
    assert all((ROOT / "docs" / name).exists() for name in DOCS_WITH_DURATIONS)


def test_the_duration_check_catches_timings() -> None:
    caught = [m.group() for m in DURATION.finditer("took 12.1 s, 50 ms, 3 minutes; under a minute; several minutes")]
    assert caught == ["12.1 s", "50 ms", "3 minutes", "under a minute", "several minutes"]
    assert not list(DURATION.finditer("seeds 0-89, 2026-03-10, 32 sessions, 4 weeks, 3 submissions"))
