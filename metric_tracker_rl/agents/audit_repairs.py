"""The audit expert's repaired values: for each defect row a finder flagged, its metric read again through the
query tool with the fault undone (warehouse_sql.Fixes), as the metrics layer would have counted the events without
it. The repairs are read in the statement that reads the defects' dashboard values (a statement a part where the
query tool's length does not allow one), with every finder's fix at once: each undoes only what its fault leaves
in the data and changes little where that fault is absent. A fault that scales what it records is
undone by scaling the dashboard's value back; one whose events never reached the export is not repaired (the brief
asks nothing there), nor is one this module has no repair for: the row then reports no repaired value."""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Sequence
from dataclasses import fields, replace
from functools import partial
from typing import Any

from metric_tracker_rl.agents.audit_finders import QUERY_LIMIT
from metric_tracker_rl.agents.warehouse_findings import (
    REVENUE,
    Finding,
    Rows,
    Statement,
    in_parts,
    number_or_nan,
    sent_text,
)
from metric_tracker_rl.agents.warehouse_sql import Fixes, metric_values_sql
from metric_tracker_rl.agents.warehouse_traces import revenue_values_sql
from metric_tracker_rl.world.metrics_layer import FUNNEL_STEP_NAMES

# The fix that undoes each finder's defect where the statements can read it undone.
FIXES_OF: dict[str, Fixes] = {
    "purchase_double_fire": Fixes(resent=True),
    "inverted_rate": Fixes(sane_rates=True),
    "missing_rate_rows": Fixes(sane_rates=True),
    "debug_build": Fixes(debug_counted=True),
    "batch_replay": Fixes(replayed=True),
    "menu_prefire": Fixes(prefired=True),
    "untagged_load_test": Fixes(load_devices=True),
    "background_opens": Fixes(idle_left_out=True),
    "pseudo_id_rotation": Fixes(rejoined=True),
    "session_id_reset": Fixes(rejoined=True),
    "cookie_reset": Fixes(rejoined=True),
    "device_clock_ahead": Fixes(clock_redated=True),
}
# Finders whose fix names the app version they found (their row's segment): an unplanned event name, a clock
# stamping behind.
UNPLANNED, BEHIND = "event_renamed_silently", "stamped_behind"
# A defect that multiplies what it records: its repaired value is the dashboard's times this.
SCALED_BY = {"minor_units": 0.01}


def fix_of(defect: Finding) -> Fixes:
    """The fix that undoes a finder's defect: its kind's, or for an event sent under a name outside the tracking
    plan, that name read as the funnel event the row's step lost (its rate's later event; app_open for sessions)."""
    if defect.kind not in (UNPLANNED, BEHIND):
        return FIXES_OF[defect.kind]
    platform, version = defect.segment.platform, defect.segment.app_version
    if not (platform and version):
        return Fixes()
    if defect.kind == BEHIND:
        return Fixes(behind=((platform, version),))
    meant = FUNNEL_STEP_NAMES[defect.step] if 0 < defect.step < len(FUNNEL_STEP_NAMES) else "app_open"
    return Fixes(unplanned=((platform, version, meant),))


def repairable(defect: Finding) -> bool:
    """Whether this module reads a repaired value for the defect (one that has one already keeps it)."""
    return (defect.kind in FIXES_OF or defect.kind in (UNPLANNED, BEHIND)) and math.isnan(defect.repaired)


def merged(fixes: Fixes, *others: Fixes) -> Fixes:
    """`fixes` with every fix any of `others` sets, and the app versions all of them name."""
    changes = {
        f.name: getattr(other, f.name) for other in others for f in fields(Fixes) if getattr(other, f.name) != f.default
    }
    every = (fixes, *others)
    unplanned = tuple(dict.fromkeys(name for other in every for name in other.unplanned))
    behind = tuple(dict.fromkeys(version for other in every for version in other.behind))
    return replace(fixes, **{**changes, "unplanned": unplanned, "behind": behind})


Asked = Sequence[tuple[Any, ...]]


def _union(parts: list[tuple[str, str]]) -> str:
    """One statement of several, each row tagged with its part's name (values as text, which shows every digit)."""
    return " UNION ALL ".join(
        f"SELECT '{name}' part, i, CAST(value AS VARCHAR) value, "
        f"{'CAST(peers AS VARCHAR)' if name == 'dashboard' else 'NULL'} peers FROM ({sql})"
        for name, sql in parts
    )


def _tagged(name: str, build: Callable[[Asked], str]) -> Callable[[Asked], str]:
    """A part's statement builder, its rows tagged as _union tags them."""

    def tagged(rows: Asked) -> str:
        return _union([(name, build(rows))])

    return tagged


def valued_and_repaired(
    rules: frozenset[str], fixes: Fixes, found: list[Finding], dashboard_sql: Callable[[Asked], str]
) -> Generator[Statement, Rows, list[Finding]]:
    """Each defect row's values as the dashboard shows them (`dashboard_sql`: observed on the date, baseline the
    same weekday's median) and the repaired value of each finder's row this module repairs: the dashboard's and
    the first repair part in one statement where the query tool's length allows, any other part after it. Where
    that statement is refused (too long a statement, or more memory than a query may use), the dashboard's part
    is read alone first, so a repair never costs a row its values."""
    if not found:
        return []
    dashboard = [
        (i, f.date, f.segment.platform, f.segment.app_version, f.segment.country, f.metric) for i, f in enumerate(found)
    ]
    repairs = [(name, rows, build) for name, rows, build in _repair_parts(rules, fixes, found) if rows]
    first = _union([("dashboard", dashboard_sql(dashboard)), *((n, b(r)) for n, r, b in repairs[:1])])
    read: Rows = []
    if repairs and len(sent_text(first)) <= QUERY_LIMIT:
        read = yield ("dashboard values", first)
        repairs = repairs[1:] if read else repairs
    if not any(row["part"] == "dashboard" for row in read):
        read = yield from in_parts("dashboard values", dashboard, _tagged("dashboard", dashboard_sql))
    for name, rows, build in repairs:
        read += yield from in_parts(f"{name} values", rows, _tagged(name, build))
    return _read(found, read)


def _repair_parts(
    rules: frozenset[str], fixes: Fixes, found: list[Finding]
) -> list[tuple[str, Asked, Callable[[Asked], str]]]:
    """The statements' parts that read the repairable rows' metrics with every fix they need: (name, rows asked,
    builder) of the rates and counts, then of the revenue."""
    asked = [(i, d) for i, d in enumerate(found) if repairable(d)]
    undone = merged(fixes, *(fix_of(d) for _, d in asked))
    counts = [(i, d.date, *d.segment.values(), d.step) for i, d in asked if d.metric != REVENUE]
    revenue = [
        (i, d.date, d.segment.platform, d.segment.country, d.segment.app_version)
        for i, d in asked
        if d.metric == REVENUE
    ]
    return [
        ("repaired", counts, partial(metric_values_sql, rules, undone)),
        ("revenue", revenue, partial(revenue_values_sql, rules, undone)),
    ]


def _read(found: list[Finding], rows: Rows) -> list[Finding]:
    """The defects with the values a statement of valued_and_repaired returned: the dashboard's part as observed and
    baseline (none where it returned none), the others as the repaired value; a defect that scales what it records
    repaired by scaling its observed value back."""
    dashboard = {int(row["i"]): row for row in rows if row["part"] == "dashboard"}
    repaired = {int(row["i"]): number_or_nan(row["value"]) for row in rows if row["part"] != "dashboard"}
    valued = [
        replace(
            d,
            observed=number_or_nan(dashboard.get(i, {}).get("value")),
            baseline=number_or_nan(dashboard.get(i, {}).get("peers")),
            repaired=repaired.get(i, d.repaired),
        )
        for i, d in enumerate(found)
    ]
    return [
        replace(d, repaired=d.observed * SCALED_BY[d.kind]) if d.kind in SCALED_BY and math.isnan(d.repaired) else d
        for d in valued
    ]
