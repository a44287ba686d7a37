"""The docs' table of lab.speed.attack_queues's kept runs (lab/artifacts/attack_queues.json), for
lab/docs/attacks.md."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from lab.speed.attack_queues import (
    ARTIFACT,
    AUDIT_ADDRESSES,
    AUDIT_SESSIONS,
    FULL_ROOM,
    KNOWN_EVERY_S,
    PARADE_EVERY_S,
    PARADE_HOLD_S,
    SLOW_HEALTH_S,
)
from lab.speed.loopback_server import before_after_table, read_artifact


def _builds_cell(row: dict[str, Any]) -> str:
    builds = row["builds"]
    reset, answers = builds["reset_s"], ", ".join(f"{n} {status}" for status, n in builds["answers"].items())
    return (
        f"{reset['p50']:.1f} / {reset['max']:.1f} s ({answers}); "
        f"{row['before_mb']:,.0f} → {row['held_mb']:,.0f} MB held, with the SQL workers"
    )


def _victim_reset_cell(row: dict[str, Any]) -> str:
    idle, under = row["victim_idle"]["reset_ms"], row["victim_under"]["reset_ms"]
    return (
        f"{idle['p50']:,.0f} / {idle['max']:,.0f} → {under['p50']:,.0f} / {under['max']:,.0f} "
        f"({under['p50'] / idle['p50']:.1f}×; {under['n']} resets)"
    )


def _health_cell(row: dict[str, Any]) -> str:
    idle, under = row["health_idle"]["health_ms"], row["health_under"]["health_ms"]
    return (
        f"{idle['p50']:,.0f} / {idle['max']:,.0f} → {under['p50']:,.0f} / {under['max']:,.0f}; "
        f"{len(row['health_under']['slow'])} over {SLOW_HEALTH_S * 1000:.0f} ms"
    )


def _stalls_cell(row: dict[str, Any]) -> str:
    if not row["probe_ran"]:
        return "no probe in this server"
    stalls = row["stalls"]
    if not stalls:
        return "no stall over 50 ms"
    causes = Counter(stall["cause"] for stall in stalls)
    worst = max(stalls, key=lambda stall: stall["lag_s"])
    slow = [match for match in row["slow_health_in_stalls"] if match["stalls"]]
    collected = sum(stall.get("full_gc_s", 0.0) for stall in stalls)
    text = (
        f"{len(stalls)} stalls over 50 ms ({', '.join(f'{n} {cause}' for cause, n in causes.most_common())}); "
        f"longest {worst['lag_s'] * 1000:,.0f} ms (loop thread's CPU {worst['loop_cpu_s'] * 1000:,.0f} ms, "
        f"process's {worst['process_cpu_s'] * 1000:,.0f} ms: {worst['cause']}); "
        f"full collections on the loop {collected:.2f} s"
    )
    if row["slow_health_in_stalls"]:
        text += f"; {len(slow)} of {len(row['slow_health_in_stalls'])} slow `/health` answers waited through a stall"
    return text


def _known_cell(row: dict[str, Any]) -> str:
    tries = row["known"]["tries"]
    total = sum(tries.values())
    outcomes = ", ".join(f"{n} {outcome}" for outcome, n in sorted(tries.items(), key=lambda item: -item[1]))
    return f"{tries.get('ok', 0)} of {total} served ({outcomes})"


TABLE: tuple[tuple[str, str, str, Callable[[dict[str, Any]], str]], ...] = (
    (
        "audit_builds",
        f"{AUDIT_SESSIONS} sessions over {AUDIT_ADDRESSES} addresses reset audit episodes of their own seeds at once",
        "their resets, p50 / max; the server's memory",
        _builds_cell,
    ),
    (
        "audit_builds",
        "",
        "another visitor's frontier resets, p50 / max ms, idle → during the builds",
        _victim_reset_cell,
    ),
    (
        "kills_lag",
        "6 addresses × 3 sockets loop: reset, the stop-ignoring statement, drop 0.6 s later",
        "`/health` from another address, p50 / max ms, idle → under attack",
        _health_cell,
    ),
    ("kills_lag", "", "the event loop's stalls under attack (the server's loop-lag probe)", _stalls_cell),
    (
        "full_parade",
        f"room for {FULL_ROOM}; every {PARADE_EVERY_S:g} s a never-seen address opens a session, resets, sends a "
        f"runaway and holds it {PARADE_HOLD_S:g} s",
        f"a client the server served before opens a session every {KNOWN_EVERY_S:g} s (holding none): served",
        _known_cell,
    ),
)


def table(kept: dict[str, Any] | None = None) -> str:
    """The docs' table of the kept runs: the old code's figures beside the new code's."""
    return before_after_table(kept or read_artifact(ARTIFACT), TABLE)
