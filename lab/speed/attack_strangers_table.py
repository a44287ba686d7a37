"""The docs' table of lab.speed.attack_strangers's kept runs (lab/artifacts/attack_strangers.json), for
lab/docs/attacks.md."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lab.speed.attack_strangers import AFTER_S, ARTIFACT, PARADE_EVERY_S, PARADE_HOLD_S
from lab.speed.loopback_server import before_after_table, read_artifact


def victim_cell(row: dict[str, Any]) -> str:
    idle, under = row["idle"]["query_ms"], row["under_attack"]["query_ms"]
    first = row["under_attack"].get("first_s")
    if not under["n"]:
        return f"{idle['p50']:,.0f} / {idle['max']:,.0f} → only its first query answered" + (
            "" if first is None else f" ({first:.1f} s)"
        )
    return (
        f"{idle['p50']:,.0f} / {idle['max']:,.0f} → {under['p50']:,.0f} / {under['max']:,.0f} "
        f"({under['p50'] / idle['p50']:.1f}×; {idle['n']} → {under['n']} answered; "
        f"{row['under_attack']['waits_over_3s']} over 3 s)"
    )


def _health_cell(row: dict[str, Any]) -> str:
    idle, under = row["health_idle"]["health_ms"], row["health_under_attack"]["health_ms"]
    return f"{idle['max']:,.0f} → {under['max']:,.0f} ms; {row['workers_started']} workers started"


def _report_cell(row: dict[str, Any]) -> str:
    closes = ", ".join(f"{count} × {how.strip()}" for how, count in row["closes"].items())
    return f"{row['lost']} of {row['episodes']} lost ({closes})"


def _mcp_cell(row: dict[str, Any]) -> str:
    huge = "; ".join(
        f"10^{len(length) - 1}: {found['answer'].strip()} in {found['held_s']:.1f} s"
        for length, found in row["huge_length"].items()
    )
    return f"{row['answered']} of {row['half_closed_calls']} half-closed calls answered; Content-Length {huge}"


VICTIM_MEASURE = "victim's cheap query, p50 / max ms, idle → under attack"
TABLE: tuple[tuple[str, str, str, Callable[[dict[str, Any]], str]], ...] = (
    (
        "parade",
        f"2 addresses loop a runaway; every {PARADE_EVERY_S:g} s a never-seen address resets and sends one, "
        f"dropping {PARADE_HOLD_S:g} s later",
        VICTIM_MEASURE,
        victim_cell,
    ),
    ("parade_kills", "the same with a statement that ignores its stop", VICTIM_MEASURE, victim_cell),
    (
        "refused_close",
        "8 addresses × 7 sockets: a runaway, 12 frames of 8,200 values (refused unparsed), a half-close",
        VICTIM_MEASURE,
        victim_cell,
    ),
    (
        "refused_close",
        "",
        f"the workers' CPU seconds over the {AFTER_S:g} s after the attacker left (the attack again, no victim)",
        lambda row: f"{row['workers_cpu_after_s']:.1f} s",
    ),
    (
        "kills",
        "6 addresses × 3 sockets loop: reset, the stop-ignoring statement, drop 0.6 s later",
        VICTIM_MEASURE,
        victim_cell,
    ),
    ("kills", "", "`/health` from another address, max ms idle → under attack", _health_cell),
    (
        "near_costly",
        "12 addresses × 2 sockets loop a statement of about 0.026 s of CPU",
        VICTIM_MEASURE,
        victim_cell,
    ),
    (
        "legal_report",
        "a SQL step, an 89 KB report (200 rows, a note) and a state request pipelined, 10 episodes",
        "episodes lost (how each socket ended)",
        _report_cell,
    ),
    (
        "mcp_minor",
        "HTTP `tools/call` with a half-close; a body declared 10^18 and 10^20 bytes",
        "what the server did",
        _mcp_cell,
    ),
)


def table(kept: dict[str, Any] | None = None) -> str:
    """The docs' table of the kept runs: the old code's figures beside the new code's."""
    return before_after_table(kept or read_artifact(ARTIFACT), TABLE)
