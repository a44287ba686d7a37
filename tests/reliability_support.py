"""Shared by the reliability tests: their counts (merged into artifacts/reliability.json for the README's
figures) and what an error message must never contain."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

# Stack traces and file paths: error messages are for agents and must not expose the server's internals.
INTERNALS = re.compile(r"Traceback|\.py\b|/work/|site-packages|File \"")
STATS_PATH = Path(__file__).resolve().parents[1] / "artifacts" / "reliability.json"


def record(section: str, counts: dict[str, Any]) -> None:
    """Replace one section of the stats file (each test owns its section)."""
    STATS_PATH.parent.mkdir(parents=True, exist_ok=True)
    stats = json.loads(STATS_PATH.read_text()) if STATS_PATH.exists() else {}
    stats[section] = counts
    STATS_PATH.write_text(json.dumps(stats, indent=2, sort_keys=True) + "\n")
