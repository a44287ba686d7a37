"""Every file and every name of the code the docs cite exists: a path (relative to the repository, to the citing file
or to the package, or a file name found in the tree) and a dotted name (a module, or an attribute of a module or of a
class of the project). The docs are README.md, docs/, lab/README.md and lab/docs/ (their code spans and links), and
the package's docstrings and comments (their code spans, and any path or `metric_tracker_rl.` name). A link is held
to more: it resolves from the page that holds it, as a rendered page follows it."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import io
import re
import tokenize
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("metric_tracker_rl", "lab", "server")
# Paths that are not this checkout's: another project's file, and the module docs/tools.md has a reader write.
ELSEWHERE = frozenset(
    {"verifiers/v1/tasksets/openenv/taskset.py", "metric_tracker_rl/analysis_tools/tools/get_weekday_means.py"}
)
DOCS = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").rglob("*.md")),
    ROOT / "lab" / "README.md",
    *sorted((ROOT / "lab" / "docs").rglob("*.md")),
]
SOURCES = sorted((ROOT / "metric_tracker_rl").rglob("*.py"))
EXTENSIONS = ("py", "md", "json", "jsonl", "toml", "yaml", "yml", "txt", "html", "css", "sh", "cfg", "lock", "csv")
DOTTED = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+$")
SPAN = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"\]\(([^)\s]+)\)")
BARE = re.compile(r"(?<![\w/.`-])((?:[\w-]+/)+[\w*-]+\.(?:py|md|json|toml|yaml)|metric_tracker_rl(?:\.\w+)+)")


def project_files() -> list[str]:
    """Every file of the checkout, relative to it."""
    return [
        path.relative_to(ROOT).as_posix()
        for path in ROOT.rglob("*")
        if not {".venv", ".git", "__pycache__"} & set(path.relative_to(ROOT).parts)
    ]


@cache
def known_paths() -> tuple[frozenset[str], frozenset[str]]:
    """Every file and folder of the checkout, and the names of its folders (a path starting with one is ours)."""
    files = project_files()
    folders = {str(Path(file).parent) for file in files if "/" in file}
    return frozenset(files) | frozenset(folders), frozenset(Path(folder).name for folder in folders)


@cache
def outputs() -> tuple[str, ...]:
    """What the project's scripts write, as .gitignore anchors it at the root: a path there exists once written."""
    lines = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    return tuple(line.strip("/").replace("*", "") for line in lines if line.startswith("/"))


@cache
def modules() -> dict[str, Path]:
    """Every module of the project by dotted name."""
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


@cache
def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


@cache
def member_names() -> frozenset[str]:
    """Every name a class of the project defines (methods, fields): a name that may follow a variable."""
    return frozenset(
        target.id if isinstance(target, ast.Name) else target.name
        for path in modules().values()
        for node in ast.walk(parsed(path))
        if isinstance(node, ast.ClassDef)
        for member in node.body
        for target in (
            [member]
            if isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef))
            else [member.target]
            if isinstance(member, ast.AnnAssign)
            else member.targets
            if isinstance(member, ast.Assign)
            else []
        )
        if isinstance(target, (ast.Name, ast.FunctionDef, ast.AsyncFunctionDef))
    )


@cache
def top_level_names() -> dict[str, list[str]]:
    """The modules that define each top-level function or class."""
    defined: dict[str, list[str]] = {}
    for name, path in modules().items():
        for node in parsed(path).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                defined.setdefault(node.name, []).append(name)
    return defined


def has_attribute(owner: Any, name: str) -> bool:
    """An attribute, or a field a dataclass or a pydantic model declares without a class-level value."""
    return (
        hasattr(owner, name)
        or name in getattr(owner, "__dataclass_fields__", {})
        or name in getattr(owner, "model_fields", {})
        or name in getattr(owner, "__annotations__", {})
    )


def resolves(module: str, attributes: list[str]) -> bool:
    try:
        owner: Any = importlib.import_module(module)
    except ModuleNotFoundError as error:  # a library of an optional group (inspect, train) is not installed
        missing = (error.name or "").split(".")[0]
        return missing not in PACKAGES and module in modules() and defined_in_source(module, attributes)
    except ImportError:
        return False
    for attribute in attributes:
        if not has_attribute(owner, attribute):
            return False
        owner = getattr(owner, attribute, None)
    return True


def defined_in_source(module: str, attributes: list[str]) -> bool:
    """Whether a module of the project that cannot be imported here binds the first attribute at its top level
    (a function, a class, an assignment or an import), as its source reads; what follows it is not checked."""
    if not attributes:
        return True
    bound: set[str] = set()
    for node in parsed(modules()[module]).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            bound.update(target.id for target in targets if isinstance(target, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return attributes[0] in bound or f"{module}.{attributes[0]}" in modules()


def external(name: str) -> bool:
    """A top-level module another distribution installs (openenv, trl, numpy)."""
    try:
        return name not in PACKAGES and importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def dotted_exists(name: str) -> bool | None:
    """Whether a dotted name of the project exists; None where it names nothing of the project (a variable's
    attribute, a field of a JSON object, another library's name)."""
    parts = name.split(".")
    if external(parts[0]):
        return None
    for cut in range(len(parts), 0, -1):  # a module of the project by its full name or by its last names
        head = ".".join(parts[:cut])
        matches = [module for module in modules() if module == head or module.endswith("." + head)]
        if matches and (cut > 1 or parts[0] in PACKAGES):
            return any(resolves(module, parts[cut:]) for module in matches)
        if matches and any(resolves(module, parts[1:]) for module in matches):
            return True  # a module by its own name alone: `tiers.TIERS`
    holders = top_level_names().get(parts[0])  # a class of the project, then its attributes
    if holders and parts[0][0].isupper():
        return any(resolves(module, parts) for module in holders)
    if (
        parts[-1] in top_level_names()
        and parts[-1] not in member_names()
        and not any(module.rsplit(".", 1)[-1] == parts[0] for module in modules())
    ):
        return False  # a module's function or class, under a module name the project does not have
    return None


def names_a_file(path: str) -> bool:
    """A file by its extension, a folder of the checkout, or a module's attribute (`generation/segmented.place_world`);
    not an HTTP route (`tools/call`), a model's or a task's name."""
    if path.endswith(tuple(f".{ext}" for ext in EXTENSIONS)) or "." in path.rsplit("/", 1)[-1]:
        return True
    return path.endswith("/") and path.split("/", 1)[0] in known_paths()[0]


def candidates(path: str, citing: Path) -> list[str]:
    """Where a path may be: as written, relative to the citing file, and a module's file for a module's attribute."""
    found = [path]
    beside = (citing.parent / path).resolve()
    if ROOT in beside.parents:
        found.append(beside.relative_to(ROOT).as_posix())
    folder, _, last = path.rpartition("/")
    stem, dot, attribute = last.partition(".")
    if dot and attribute.split(".")[-1] not in EXTENSIONS:
        found.append(f"{folder}/{stem}.py" if folder else f"{stem}.py")
    return found


def path_exists(path: str, citing: Path) -> bool | None:
    """Whether a path of the checkout exists (relative to it, to the citing file, or the tail of a longer path);
    None where it is not a file of ours (another project's, an HTTP route)."""
    files, folder_names = known_paths()
    if not names_a_file(path) or path.rstrip("/") in ELSEWHERE:
        return None
    path = path.rstrip("/")
    if "/" in path and path.split("/", 1)[0] not in folder_names | files | {".."}:
        return None  # another project's file
    if path.startswith(outputs()):
        return True  # a script writes it
    return any(
        any(Path(file).match(candidate) or Path(file).match("*/" + candidate) for file in files)
        if "*" in candidate
        else any(file == candidate or file.endswith("/" + candidate) for file in files)
        for candidate in candidates(path, citing)
    )


def cleaned(span: str) -> str:
    """A span without call arguments, a test's id or a line number, and trailing punctuation."""
    span = re.sub(r"\(.*\)$", "", span.strip())
    span = re.split(r"::|:\d|\[", span, maxsplit=1)[0]
    return span.rstrip(".,;:")


def problems(span: str, citing: Path) -> str | None:
    span = cleaned(span)
    if not span or any(mark in span for mark in ("://", "$", "<", "{", "~", " ", "=")) or span.startswith(("/", ".")):
        return None
    if "/" in span or span.endswith(tuple(f".{ext}" for ext in EXTENSIONS)):
        return None if path_exists(span, citing) is not False else f"no file {span}"
    if DOTTED.match(span):
        return None if dotted_exists(span) is not False else f"no name {span}"
    return None


def _prose(path: Path) -> str:
    return re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)  # code blocks run elsewhere


def doc_spans(path: Path) -> Iterator[str]:
    yield from SPAN.findall(_prose(path))


def doc_links(path: Path) -> Iterator[str]:
    """The page's links to files of the checkout (not to a web address or to a heading of the page itself)."""
    yield from (
        link for link in LINK.findall(_prose(path)) if "://" not in link and not link.startswith(("#", "mailto:"))
    )


def broken_link(link: str, citing: Path) -> str | None:
    """A link as a rendered page follows it: from the folder of the page that holds it, to a file or folder of the
    checkout (a script's output counts: it is there once the command the page gives has run)."""
    target = (citing.parent / link.split("#", 1)[0]).resolve()
    if target.exists() and ROOT in (target, *target.parents):
        return None
    if ROOT in target.parents and target.relative_to(ROOT).as_posix().startswith(outputs()):
        return None
    return f"broken link {link}"


def prose_of(path: Path) -> str:
    """A module's comments and docstrings."""
    source = path.read_text(encoding="utf-8")
    comments = [
        token.string
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT
    ]
    docstrings = [
        ast.get_docstring(node, clean=False) or ""
        for node in ast.walk(parsed(path))
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
    ]
    return "\n".join([*comments, *docstrings])


def source_spans(path: Path) -> Iterator[str]:
    prose = prose_of(path)
    yield from SPAN.findall(prose)
    yield from BARE.findall(SPAN.sub("", prose))


@pytest.mark.slow  # imports every cited module (the debugger's Gradio, Inspect, TRL)
def test_every_cited_path_and_name_exists() -> None:
    missing = []
    for path in DOCS:
        missing += [
            f"{path.relative_to(ROOT)}: {problem}" for span in doc_spans(path) if (problem := problems(span, path))
        ]
        missing += [
            f"{path.relative_to(ROOT)}: {problem}" for link in doc_links(path) if (problem := broken_link(link, path))
        ]
    for path in SOURCES:
        missing += [
            f"{path.relative_to(ROOT)}: {problem}" for span in source_spans(path) if (problem := problems(span, path))
        ]
    assert sorted(set(missing)) == []


def test_a_link_resolves_from_its_page_and_not_from_the_repository() -> None:
    """lab/README.md renders in lab/: a link written from the repository's root is broken there."""
    page = ROOT / "lab" / "README.md"
    assert broken_link("docs/performance.md", page) is None and broken_link("../README.md", page) is None
    assert broken_link("lab/docs/performance.md", page) == "broken link lab/docs/performance.md"
    assert broken_link("../docs/attacks.md", page) == "broken link ../docs/attacks.md"  # the lab's page, not docs/'s
    assert broken_link("docs/warehouse.md#tables", ROOT / "README.md") is None
    assert broken_link("../../outside.md", page) == "broken link ../../outside.md"


@pytest.mark.slow  # imports every cited module (the debugger's Gradio, Inspect, TRL)
def test_the_check_finds_a_missing_file_and_a_name_cited_where_it_is_not() -> None:
    citing = ROOT / "docs" / "spaces.md"
    assert problems("tests/test_twin_credit.py", citing) is None
    assert problems("lab/tests/test_twin_credit.py", citing) == "no file lab/tests/test_twin_credit.py"
    assert problems("view.tool_schemas.model_tools()", citing) is None
    assert problems("tool_calls.model_tools()", citing) == "no name tool_calls.model_tools"
    assert problems("ToolSpec.read_at", citing) is None and problems("ToolSpec.read_it", citing) is not None
    assert problems("catalog.tiers.TIERS", citing) is None and problems("catalog.tiers.TIER", citing) is not None
    assert problems("generation/segmented.place_world", citing) is None
    assert problems("obs.task_id", citing) is None  # a variable's attribute names nothing of the project


def test_a_module_whose_optional_library_is_missing_is_read_from_its_source(monkeypatch: Any) -> None:
    """Without the inspect group installed, its adapter's module and names still resolve, from their source, and
    a name it does not define is still reported."""
    imported = importlib.import_module

    def without_inspect(name: str, package: str | None = None) -> Any:
        if name.startswith("metric_tracker_rl.adapters.inspect_eval"):
            raise ModuleNotFoundError("No module named 'inspect_ai'", name="inspect_ai")
        return imported(name, package)

    monkeypatch.setattr(importlib, "import_module", without_inspect)
    citing = ROOT / "docs" / "spaces.md"
    assert problems("metric_tracker_rl.adapters.inspect_eval", citing) is None
    assert problems("metric_tracker_rl.adapters.inspect_eval.tools.episode_tools", citing) is None
    assert problems("metric_tracker_rl.adapters.inspect_eval.tools.no_such_tool", citing) is not None
