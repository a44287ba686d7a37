"""Shared by the reliability tests: their counts (merged into artifacts/reliability.json for the README's
figures) and what an error message must never contain."""

from __future__ import annotations

import fcntl
import json
import re
from pathlib import Path
from typing import Any

# Stack traces and file paths: error messages are for agents and must not expose the server's internals.
INTERNALS = re.compile(r"Traceback|\.py\b|/work/|site-packages|File \"")
STATS_PATH = Path(__file__).resolve().parents[1] / "artifacts" / "reliability.json"


def record(section: str, counts: dict[str, Any]) -> None:
    """Replace one section of the stats file (each test owns its section). The tests run in two processes: the
    file is read and rewritten under a lock, and replaced whole, so no process reads it half written."""
    STATS_PATH.parent.mkdir(parents=True, exist_ok=True)
    with STATS_PATH.with_suffix(".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stats = json.loads(STATS_PATH.read_text()) if STATS_PATH.exists() else {}
        stats[section] = counts
        written = STATS_PATH.with_suffix(".tmp")
        written.write_text(json.dumps(stats, indent=2, sort_keys=True) + "\n")
        written.replace(STATS_PATH)
