"""The image is built as images are: .dockerignore keeps the build context to what the COPY lines take (applied
here as Docker applies it, by lab.speed.image_context), the dependencies are synced from the lock file before any
source is copied, and the image runs as UID 1000."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.speed import image_context
from lab.speed.image_context import copied_files, excluded, parse_dockerignore

INSTRUCTIONS = image_context.dockerfile_instructions()
CONTEXT = dict(image_context.context_files())
MAX_CONTEXT_BYTES = 5_000_000

SPACE_UID = 1000  # the user a Hugging Face Space runs its image as


@pytest.mark.parametrize(
    ("path", "left_out"),
    [
        ("a.py", True),
        ("keep/x.py", False),
        ("keep/sub/__pycache__/x.pyc", True),
        ("keep/sub/y.pyc", True),
        ("keep", False),
        ("other/keep/x.py", True),
        ("docs/a.md", True),
        ("docs/keep.md", False),
    ],
)
def test_the_patterns_apply_as_docker_applies_them(path: str, left_out: bool) -> None:
    patterns = parse_dockerignore("# a comment\n*\n!keep\n**/__pycache__\n**/*.pyc\n\n!docs/keep.md\n")
    assert excluded(path, patterns) is left_out


def test_the_context_is_what_the_copy_lines_take_and_nothing_else() -> None:
    copies = [arguments for kind, arguments in INSTRUCTIONS if kind == "COPY"]
    taken = {path for arguments in copies for path in copied_files(arguments, CONTEXT)}
    assert taken == set(CONTEXT)
    assert sum(CONTEXT.values()) < MAX_CONTEXT_BYTES, f"{sum(CONTEXT.values()):,} bytes"
    for left_out in (".venv", ".git", "tests", "docs", "lab", ".pytest_cache", ".ruff_cache", ".mypy_cache"):
        assert not any(path == left_out or path.startswith(left_out + "/") for path in CONTEXT), left_out
    assert not any("__pycache__" in path or path.endswith(".pyc") or ".egg-info" in path for path in CONTEXT)
    for arguments in copies:
        assert copied_files(arguments, CONTEXT), f"COPY {arguments}: .dockerignore leaves out all it copies"


def test_the_dependencies_are_synced_from_the_lock_file_before_the_source_is_copied() -> None:
    kinds = [kind for kind, _ in INSTRUCTIONS]
    syncs = [i for i, (kind, arguments) in enumerate(INSTRUCTIONS) if kind == "RUN" and "uv sync" in arguments]
    assert len(syncs) == 2 and "--no-install-project" in INSTRUCTIONS[syncs[0]][1]
    assert "--no-install-project" not in INSTRUCTIONS[syncs[1]][1]
    copied_first = {
        path
        for i, (kind, arguments) in enumerate(INSTRUCTIONS[: syncs[0]])
        if kind == "COPY"
        for path in copied_files(arguments, CONTEXT)
    }
    assert copied_first == {"pyproject.toml", "uv.lock"}
    copied_later = {
        path
        for kind, arguments in INSTRUCTIONS[syncs[0] :]
        if kind == "COPY"
        for path in copied_files(arguments, CONTEXT)
    }
    assert any(Path(path).parts[0] == "metric_tracker_rl" for path in copied_later)
    assert all(kind != "COPY" for kind in kinds[syncs[1] :])  # nothing copied after the last sync
    user = kinds.index("USER")
    assert INSTRUCTIONS[user][1] == str(SPACE_UID) and syncs[1] < user < kinds.index("CMD")
    assert "RUN" not in kinds[user:]  # as root only what builds the image


def test_the_measure_prints_the_context_and_the_layers(capsys: pytest.CaptureFixture[str]) -> None:
    assert image_context.main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"build context: {len(CONTEXT)} files")
    assert "COPY pyproject.toml uv.lock ./   (2 files" in out and "USER 1000" in out
