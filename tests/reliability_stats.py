"""Counts from the reliability tests, merged into artifacts/reliability.json for the README's figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

STATS_PATH = Path(__file__).resolve().parents[1] / "artifacts" / "reliability.json"


def record(section: str, counts: dict[str, Any]) -> None:
    """Replace one section of the stats file (each test owns its section)."""
    STATS_PATH.parent.mkdir(parents=True, exist_ok=True)
    stats = json.loads(STATS_PATH.read_text()) if STATS_PATH.exists() else {}
    stats[section] = counts
    STATS_PATH.write_text(json.dumps(stats, indent=2, sort_keys=True) + "\n")
