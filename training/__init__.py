"""Training scripts for TRL (the `train` dependency group): GRPO against a running server, SFT on trajectories.

The scripts parse their arguments before importing the group's modules, so `--help` and a mistyped flag answer at
once, and a missing group is one clear line instead of a ModuleNotFoundError."""

from __future__ import annotations

import importlib.util
import sys

TRL_MIN_PYTHON = (3, 11)  # TRL 1.16 requires it; on 3.10 the train group installs torch but no trl


def train_group_missing(version: tuple[int, int] | None = None) -> str | None:
    """Why the train group cannot be imported here, with the command that fixes it; None when it can."""
    major, minor = version or sys.version_info[:2]
    if (major, minor) < TRL_MIN_PYTHON:
        return (
            f"TRL needs Python {TRL_MIN_PYTHON[0]}.{TRL_MIN_PYTHON[1]} or newer, this is {major}.{minor}: "
            f"uv sync --python {TRL_MIN_PYTHON[0]}.{TRL_MIN_PYTHON[1]} --inexact --group train"
        )
    if version is None and importlib.util.find_spec("trl") is None:
        return "the train group is not installed: uv sync --inexact --group train"
    return None


def require_train_group() -> None:
    """Exit with the reason and the fix when TRL cannot be imported."""
    reason = train_group_missing()
    if reason is not None:
        raise SystemExit(f"error: {reason}")
