"""The one failure every check raises: it names the check, what was checked and what was expected, so a third
party reads what to fix without opening the checker."""

from __future__ import annotations


class CheckFailed(AssertionError):
    """A contract a tool or a tier does not meet. An AssertionError, so a test that calls a check fails as an
    assert would; `check`, `subject` and `expected` are kept for a caller that reports them its own way."""

    def __init__(self, check: str, subject: str, expected: str, found: str = "") -> None:
        self.check, self.subject, self.expected, self.found = check, subject, expected, found
        message = f"{subject}: check {check!r} failed: expected {expected}"
        super().__init__(f"{message}; found {found}" if found else message)


def require(holds: bool, check: str, subject: str, expected: str, found: object = "") -> None:
    """Raise CheckFailed unless `holds`; `found` says what was seen instead (cut to a readable length)."""
    if not holds:
        shown = found if isinstance(found, str) else repr(found)
        raise CheckFailed(check, subject, expected, shown if len(shown) <= 300 else shown[:300] + "...")
