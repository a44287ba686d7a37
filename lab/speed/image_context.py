"""The image's build context and layer order, measured without a Docker engine.

`docker build .` sends the build context (the repository less what .dockerignore leaves out) to the engine, then
runs the Dockerfile's instructions in order, each one a layer that a later edit reuses unless something it copies
changed. This applies .dockerignore as Docker does (patterns in order, the last match wins, `!` lets a path back
in, a pattern that matches a directory matches everything under it, `**` crosses directories), sums the files
sent, and lists the instructions with what each COPY takes from the context.

    uv run python -m lab.speed.image_context          # the context's size and files, then the layers
"""

from __future__ import annotations

import argparse
import fnmatch
import glob
import os
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Pattern:
    regex: re.Pattern[str]
    parts: tuple[str, ...]  # the pattern's path components, to tell whether it can match under a directory
    include: bool  # a `!` pattern lets matching paths back in


def _component_regex(pattern: str) -> str:
    """A Go filepath.Match pattern as a regex: `*` and `?` stay within a path component, `**` crosses them."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            if pattern.startswith("/", i):
                out[-1] = "(?:.*/)?"
                i += 1
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


def parse_dockerignore(text: str) -> list[Pattern]:
    patterns = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        include = line.startswith("!")
        cleaned = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
        patterns.append(Pattern(re.compile(_component_regex(cleaned) + r"\Z"), tuple(cleaned.split("/")), include))
    return patterns


def excluded(path: str, patterns: list[Pattern]) -> bool:
    """Whether .dockerignore leaves `path` (relative, with `/`) out: the last pattern matching it or a directory
    above it decides."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    result = False
    for pattern in patterns:
        if any(pattern.regex.match(prefix) for prefix in prefixes):
            result = not pattern.include
    return result


def _may_let_back_in_under(directory: str, patterns: list[Pattern]) -> bool:
    """Whether some `!` pattern could match a path under an excluded directory (else the walk skips it)."""
    parts = directory.split("/")
    for pattern in patterns:
        if not pattern.include:
            continue
        if any("**" in part for part in pattern.parts):
            return True
        head = pattern.parts[: len(parts)]
        if len(pattern.parts) > len(parts) and all(fnmatch.fnmatchcase(p, q) for p, q in zip(parts, head, strict=True)):
            return True
    return False


def context_files(root: Path = ROOT) -> list[tuple[str, int]]:
    """(relative path, bytes) of every file the build context holds, sorted."""
    ignore_file = root / ".dockerignore"
    patterns = parse_dockerignore(ignore_file.read_text(encoding="utf-8")) if ignore_file.exists() else []
    found = []
    for directory, subdirectories, files in os.walk(root):
        relative = Path(directory).relative_to(root).as_posix()
        prefix = "" if relative == "." else relative + "/"
        subdirectories[:] = [
            d
            for d in subdirectories
            if not excluded(prefix + d, patterns) or _may_let_back_in_under(prefix + d, patterns)
        ]
        for name in files:
            path = Path(directory) / name
            if not excluded(prefix + name, patterns) and not path.is_symlink():
                found.append((prefix + name, path.stat().st_size))
    return sorted(found)


def dockerfile_instructions(root: Path = ROOT) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per Dockerfile instruction, continuation lines joined."""
    instructions, pending = [], ""
    for line in (root / "Dockerfile").read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), " ".join(arguments.split())))
        pending = ""
    return instructions


def copied_files(arguments: str, context: dict[str, int]) -> list[str]:
    """The context's files one COPY instruction takes (its sources: files, directories or globs)."""
    sources = [part for part in shlex.split(arguments) if not part.startswith("--")][:-1]
    taken = []
    for source in sources:
        for match in glob.glob(source, root_dir=ROOT) or [source]:
            match = match.rstrip("/")
            taken += [path for path in context if path == match or path.startswith(match + "/")]
    return sorted(set(taken))


def _size(count: int) -> str:
    return f"{count / 1e6:.2f} MB" if count >= 1e5 else f"{count / 1e3:.1f} kB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", action="store_true", help="list every file of the context")
    args = parser.parse_args(argv)
    files = context_files()
    context = dict(files)
    print(f"build context: {len(files)} files, {_size(sum(context.values()))}")
    if args.files:
        for path, size in files:
            print(f"  {_size(size):>10}  {path}")
    print("layers, in order:")
    for number, (kind, arguments) in enumerate(dockerfile_instructions(), start=1):
        line = f"{number:>3}. {kind} {arguments}"
        if kind == "COPY":
            taken = copied_files(arguments, context)
            line += f"   ({len(taken)} files, {_size(sum(context[path] for path in taken))})"
        print(line[:160])
    return 0


if __name__ == "__main__":
    sys.exit(main())
