"""The code says what it does, not where it was asked for: no Python file of the project cites a specification
section or a tracker issue (a citation means nothing to a reader without the document, and goes stale with it)."""

from __future__ import annotations

import re

from conftest import ROOT

SCANNED = [*(ROOT / name for name in ("metric_tracker_rl", "server", "benchmarks", "training", "integrations",
                                       "tests")), ROOT / "inference.py"]
# Written in pieces, so that this file, which is scanned too, does not cite what it looks for.
SPEC_WORD = "SP" + "EC"
SECTION_SIGN = chr(0xA7)
ISSUE_WORD = "iss" + "ue"
CITATION = re.compile(rf"\b{SPEC_WORD}\b|{SECTION_SIGN}|\b(?i:{ISSUE_WORD}s?|pr|pull request)\s*#?\d+")


def python_files() -> list:
    files = []
    for path in SCANNED:
        files += [path] if path.is_file() else sorted(path.rglob("*.py"))
    return files


def citations(text: str) -> list[tuple[int, str]]:
    return [(number, match.group()) for number, line in enumerate(text.splitlines(), start=1)
            for match in CITATION.finditer(line)]


def test_no_python_file_cites_a_spec_section_or_an_issue() -> None:
    files = python_files()
    assert len(files) > 100 and ROOT / "inference.py" in files and ROOT / "tests" / "test_no_citations.py" in files
    found = [f"{path.relative_to(ROOT)}:{number}: {cited!r}" for path in files
             for number, cited in citations(path.read_text(encoding="utf-8"))]
    assert not found, "say what the code does instead:\n" + "\n".join(found)


def test_the_scan_catches_each_kind_of_citation() -> None:
    cited = [f"as {SPEC_WORD} section 4 says", f"{SECTION_SIGN}2 of the design", f"{ISSUE_WORD} 37",
             f"{ISSUE_WORD.title()} #38", f"({ISSUE_WORD}s 12)", "P" + "R #41"]
    assert [len(citations(line)) for line in cited] == [1] * len(cited)
    plain = ["SPECIFICITY = ()", "SPECIAL_TOKENS", f"a t{ISSUE_WORD} 3", "color: #440154", "rows[1]",
             f"a known {ISSUE_WORD}: 3 rows later", "sprint 4"]
    assert [citations(line) for line in plain] == [[]] * len(plain)
