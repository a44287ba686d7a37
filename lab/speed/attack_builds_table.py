"""The docs' table of lab.speed.attack_strangers's rows on episode builds and places (lab/speed/attack_builds.py;
kept in lab/artifacts/attack_builds.json), for lab/docs/attacks.md."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lab.speed.attack_builds import (
    ARTIFACT,
    AUDIT_SESSIONS,
    BUILDERS,
    KNOWN_HELD,
    NEW_SESSIONS,
    PARADE_EVERY_S,
    PARADE_HOLD_S,
    PLACES_VISITORS,
)
from lab.speed.attack_strangers_table import VICTIM_MEASURE, victim_cell
from lab.speed.loopback_server import before_after_table, read_artifact


def _spread(found: dict[str, Any]) -> str:
    return f"{found['p50']:.2f} / {found['max']:.2f}" if found["n"] else "none answered"


def _resets(found: dict[str, Any]) -> str:
    pairs = found["audit"]["n"]
    return f"frontier {_spread(found['frontier'])}, audit {_spread(found['audit'])} ({pairs} pair{'s' * (pairs != 1)})"


def _known_cell(row: dict[str, Any]) -> str:
    return f"{_resets(row['known_idle'])} → {_resets(row['known_under'])}"


def _builders_cell(row: dict[str, Any]) -> str:
    found = row["attacker"]
    return f"{_spread(found['resets_s'])} (the last built after {found['all_built_s']:.1f} s)"


def _memory_cell(row: dict[str, Any]) -> str:
    return f"{row['memory_mb']['peak']:,} / {row['memory_mb']['after']:,}"


def _places_cell(row: dict[str, Any]) -> str:
    tries = row["known"]["new_sessions"]
    served = sum(found["answer"] == "accepted" for found in tries)
    seconds = ", ".join(f"{found['seconds']:.1f}" for found in tries)
    refused = next((found["answer"] for found in tries if found["answer"] != "accepted"), None)
    why = "" if refused is None else f"; refused: “{refused.split('message')[-1][4:90].strip()}…”"
    return f"{served} of {len(tries)} served (in {seconds} s){why}"


RESETS_MEASURE = "a known client's frontier, then audit reset, p50 / max s, idle → under attack"
TABLE: tuple[tuple[str, str, str, Callable[[dict[str, Any]], str]], ...] = (
    (
        "audit_builds",
        f"{AUDIT_SESSIONS} audit sessions reset at once from {len(BUILDERS)} never-seen addresses",
        f"the {AUDIT_SESSIONS} resets, p50 / max s",
        _builders_cell,
    ),
    ("audit_builds", "", VICTIM_MEASURE, victim_cell),
    ("audit_builds", "", RESETS_MEASURE, _known_cell),
    ("audit_builds", "", "the server's and its workers' memory, peak / after, MB", _memory_cell),
    (
        "parade_builds",
        f"every {PARADE_EVERY_S:g} s a never-seen address resets an audit episode, dropping {PARADE_HOLD_S:g} s later",
        RESETS_MEASURE,
        _known_cell,
    ),
    (
        "parade_places",
        f"{PLACES_VISITORS} never-seen addresses, one every {PARADE_EVERY_S:g} s, each reset an audit episode and keep "
        "their session (80 places)",
        f"a known client holding {KNOWN_HELD} sessions opens {NEW_SESSIONS} more once the server is full",
        _places_cell,
    ),
)


def table(kept: dict[str, Any] | None = None) -> str:
    """The docs' table of the kept runs: the old code's figures beside the new code's."""
    return before_after_table(kept or read_artifact(ARTIFACT), TABLE)
