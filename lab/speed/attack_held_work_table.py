"""The docs' table of lab/artifacts/attack_held_work.json (lab/speed/attack_held_work.py measures it): each row's
figures on the old code's server beside the new code's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lab.speed.attack_held_work import (
    ARTIFACT,
    ATTACKERS,
    DEBUGGER_TABS,
    FAST_LANE_LOOPS,
    FREE_S,
    MEMORY_SESSIONS,
    MEMORY_SETTLE_S,
    NEWCOMER_FIRST_S,
    ORPHAN_CLOSE_AFTER_S,
    SESSIONS_PER_ADDRESS,
)
from lab.speed.loopback_server import commit_cells, read_artifact


def _p50_p99(figures: dict[str, Any]) -> str:
    return "{p50:,.0f} / {p99:,.0f}".format(**figures) if figures["n"] else "none answered"


def _idle_to_under(key: str) -> Callable[[dict[str, Any]], str]:
    def render(row: dict[str, Any]) -> str:
        idle, under = row["idle"][key], row["under_attack"][key]
        return f"{_p50_p99(idle)} → {_p50_p99(under)} ({idle['n']} → {under['n']} answered)"

    return render


def _free_after(row: dict[str, Any]) -> str:
    after = row["newcomer"]["free_after_s"]
    return f"{after:.0f} s" if after is not None else f"over {row['newcomer']['free_limit_s']:.0f} s"


TABLE: tuple[tuple[str, str, Callable[[dict[str, Any]], str]], ...] = (
    (
        "orphans",
        "victim's cheap query (an address the server has seen), p50 / p99 ms, idle → during",
        _idle_to_under("query_ms"),
    ),
    (
        "orphans",
        f"a newcomer's `SELECT 1`, {NEWCOMER_FIRST_S:.0f} s after the attacker left",
        lambda row: f"{row['newcomer']['first_wall_s']:.1f} s",
    ),
    ("orphans", f"until a newcomer's `SELECT 1` answers within {FREE_S:.0f} s", _free_after),
    ("orphans", "tracebacks the server logged", lambda row: str(row["server_tracebacks"])),
    ("fast_lane", "victim's cheap query, p50 / p99 ms, idle → under attack", _idle_to_under("query_ms")),
    (
        "warehouse_resets",
        "another visitor's frontier reset, p50 / p99 ms, idle → under attack",
        _idle_to_under("reset_ms"),
    ),
    ("audit_resets", "another visitor's frontier reset, p50 / p99 ms, idle → under attack", _idle_to_under("reset_ms")),
    (
        "debugger_audit_resets",
        "another visitor's frontier reset, p50 / p99 ms, idle → under attack",
        _idle_to_under("reset_ms"),
    ),
    (
        "memory",
        f"server and workers' resident memory: before → peak → {MEMORY_SETTLE_S:.0f} s after",
        lambda row: f"{row['before_mb']:,.0f} → {row['peak_mb']:,.0f} → {row['after_mb']:,.0f} MB",
    ),
    (
        "memory",
        f"the server process alone: before → held → {MEMORY_SETTLE_S:.0f} s after",
        lambda row: "{before:,.0f} → {held:,.0f} → {after:,.0f} MB".format(**row["server_process_mb"]),
    ),
)
ATTACK_NAMES = {
    "orphans": f"{len(ATTACKERS)} addresses × {SESSIONS_PER_ADDRESS} sockets: a runaway statement each, the socket "
    f"closed {ORPHAN_CLOSE_AFTER_S} s later",
    "fast_lane": f"{FAST_LANE_LOOPS} loops, each turn from a fresh address: `SELECT 1`, then a runaway",
    "warehouse_resets": f"{len(ATTACKERS)} addresses × {SESSIONS_PER_ADDRESS} sessions reset warehouse episodes, a "
    "first statement after each",
    "audit_resets": f"{len(ATTACKERS)} addresses × {SESSIONS_PER_ADDRESS} sessions reset audit episodes, a first "
    "statement after each",
    "debugger_audit_resets": f"{len(ATTACKERS)} addresses × {DEBUGGER_TABS} debugger tabs reset audit episodes",
    "memory": f"{MEMORY_SESSIONS} warehouse sessions held, then closed",
}


def _cell(column: dict[str, Any] | None, row: str, render: Callable[[dict[str, Any]], str]) -> str:
    kept = (column or {}).get("rows", {}).get(row)
    return "—" if kept is None else render(kept)


def _load(column: dict[str, Any] | None) -> str:
    rows = (column or {}).get("rows", {}).values()
    return (
        "—"
        if not rows
        else " – ".join(
            f"{value:.1f}"
            for value in (
                min(row["load_average"]["mean"] for row in rows),
                max(row["load_average"]["mean"] for row in rows),
            )
        )
    )


def table(kept: dict[str, Any] | None = None) -> str:
    """The docs' table of the kept runs: the old code's figures beside the new code's."""
    kept = kept or read_artifact(ARTIFACT)
    before, after = kept["before"], kept["after"]
    commit = commit_cells(before, after)
    lines = [
        "| attack | measure | before | after |",
        "| --- | --- | --- | --- |",
        f"| (the server's code: commit) | | {commit} |",
    ]
    shown = ""
    for row, measure, render in TABLE:
        name = ATTACK_NAMES[row] if row != shown else ""
        shown = row
        lines.append(f"| {name} | {measure} | {_cell(before, row, render)} | {_cell(after, row, render)} |")
    lines.append(f"| (load average, each row's mean) | | {_load(before)} | {_load(after)} |")
    return "\n".join(lines)
