"""The audit expert's repaired values: for each defect row a finder flagged, its metric read again through the
query tool with the fault undone (warehouse_sql.Fixes), as the metrics layer would have counted the events without
it. Every finder's repair is read in one statement (two where a revenue row is asked): each undoes only what its
fault leaves in the data and changes little where that fault is absent. A fault that scales what it records is
undone by scaling the dashboard's value back; one whose events never reached the export is not repaired (the brief
asks nothing there), nor is one this module has no repair for: the row then reports no repaired value."""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import fields, replace

from metric_tracker_rl.agents.warehouse_findings import REVENUE, Finding, Rows, Statement, in_parts, number_or_nan
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


def with_repairs(
    rules: frozenset[str], fixes: Fixes, defects: list[Finding]
) -> Generator[Statement, Rows, list[Finding]]:
    """`defects` with the repaired value of each finder's row it can repair."""
    scaled = [
        replace(d, repaired=d.observed * SCALED_BY[d.kind]) if d.kind in SCALED_BY and math.isnan(d.repaired) else d
        for d in defects
    ]
    asked = [i for i, d in enumerate(scaled) if repairable(d)]
    if not asked:
        return scaled
    undone = merged(fixes, *(fix_of(scaled[i]) for i in asked))
    counts = [
        (i, scaled[i].date, *scaled[i].segment.values(), scaled[i].step) for i in asked if scaled[i].metric != REVENUE
    ]
    revenue = [
        (i, d.date, d.segment.platform, d.segment.country, d.segment.app_version)
        for i, d in ((i, scaled[i]) for i in asked)
        if d.metric == REVENUE
    ]
    values: dict[int, float] = {}
    if counts:
        rows = yield from in_parts("repaired values", counts, lambda part: metric_values_sql(rules, undone, part))
        values.update({int(row["i"]): number_or_nan(row.get("value")) for row in rows})
    if revenue:
        rows = yield from in_parts("repaired revenue", revenue, lambda part: revenue_values_sql(rules, undone, part))
        values.update({int(row["i"]): number_or_nan(row.get("value")) for row in rows})
    return [replace(d, repaired=values.get(i, d.repaired)) for i, d in enumerate(scaled)]
