"""A generic auditor for the audit rung, written from the published text alone (the first prompt, the metrics
layer, the tables and the rules of a finding): the witness that the text suffices. It knows no mechanism, no size
and no segment rule of the generator; it asks of the record whether it is in line with itself, and of the metrics
layer whether it moved.

1. The metrics layer (read once) and the context (the window, experiments, holidays, tracking deploys).
2. Checks of every key and parameter of the raw events per date and cuboid of the dashboard's fields, each against
   the cuboid's other dates (audit_generic_sql): the same event twice, ingestion lag and late loads, consent,
   session ids missing or skipping, sessions without an app_open or a session_start, logins under several pseudo
   ids, idle devices, names outside the usual set, geo/platform/version disagreeing with the users table, currencies
   and values out of line, transaction ids twice, the dashboard's sessions against the events'. A share far above
   its usual level is a recording trace, held by the cuboid that explains its parents' excess.
3. Each traced date and segment: a data defect where a dashboard metric departs there from its level on the
   segment's dates without a trace (what the record shows where nothing changed it) beyond its own noise, on the
   first metric that departs, in the brief's order (revenue only where the trace can reach payments); its
   values the dashboard's, its baseline by the baseline rule.
4. Incidents, from the metrics layer recounted over the events (the package's scans): blocks of hours whose sessions
   or payments collapsed, each release's version and experiment's arm over their dates, and runs of dates on which a
   cuboid of platform, country, channel or user type fell (its parent where the fall ripples through it). A fall on
   a date and segment that carries a recording trace is the data, not an incident.
5. Each incident's segment and metric read on every date: its rows are the dates, contiguous with the fall found,
   on which the metric departs from its baseline; values the metrics layer's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

from lab.agents.audit_generic_sql import (
    EVENT_CHECKS,
    NAME_CHECKS,
    PAYMENT_CHECKS,
    PAYMENT_TRACES,
    SESSION_CHECKS,
    dashboard_values_sql,
)
from lab.agents.registry import register_lab_agent
from metric_tracker_rl.agents.procedure_agent import ProcedureAgent
from metric_tracker_rl.agents.warehouse_findings import (
    COUNT_DROP,
    DATA_QUALITY,
    FUNNEL_BREAK,
    RATE_DROP,
    REVENUE,
    Finding,
    Rows,
    Statement,
    arm_segment,
    dedupe,
    in_parts,
    numbers,
    overlaps,
    pooled_z,
    segment_of,
    widened,
)
from metric_tracker_rl.agents.warehouse_scans import HOURS_WHAT, context_tests_and_hours_sql, run_scan_sql
from metric_tracker_rl.agents.warehouse_sql import ALL_RULES, CONTEXT_SQL, NO_FIXES, metric_values_sql
from metric_tracker_rl.view.observation import SeenObservation
from metric_tracker_rl.world.metrics_layer import RATE_COLUMNS
from metric_tracker_rl.world.segments import Segment

MARGIN = 0.10  # the brief's 'departs'
METRICS = ("sessions", *RATE_COLUMNS, REVENUE)  # the dashboard's metrics in the brief's order (k 0 to 5)
# An analyst's round bars (z of a fall against the same weekday's other dates).
RUN_BARS = {1: 5.0, 2: 7.0}  # a run of dates in a cuboid naming one or two fields
TEST_Z = 4.5  # a version's or an arm's pooled fall over its dates
TEST_FIRST_Z = 3.0  # ... and over its first dates
FIRST_DATES = 3
PAYMENT_STEP = 4
VALUE_Z = 1.5  # a defect's dashboard move, in spreads of its same weekday's values


def _dated(context: Rows) -> Rows:
    return [{name: str(v) if isinstance(v, dt.date) else v for name, v in row.items()} for row in context]


@dataclass
class Audit:
    """The module docstring's method as a generator of statements: sent each statement's rows, it returns the
    findings."""

    dates: list[str] = field(default_factory=list)
    context: Rows = field(default_factory=list)

    def run(self) -> Generator[Statement, Rows, list[Finding]]:
        self.context = _dated((yield ("context", CONTEXT_SQL)))
        window = next(row for row in self.context if row["what"] == "window")
        first, last = dt.date.fromisoformat(window["first"]), dt.date.fromisoformat(window["last"])
        self.dates = [(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
        traces: Rows = []
        for name, sql in (
            ("event checks", EVENT_CHECKS),
            ("event names", NAME_CHECKS),
            ("session checks", SESSION_CHECKS),
            ("payment checks", PAYMENT_CHECKS),
        ):
            traces += yield (name, sql)
        defects = yield from self.defects(traces)
        incidents = yield from self.incidents(traces)
        return dedupe([*defects, *incidents])

    # --- data defects -----------------------------------------------------------------------------------------

    def defects(self, traces: Rows) -> Generator[Statement, Rows, list[Finding]]:
        """Each traced date and segment (the strongest trace of overlapping ones), a row on the first dashboard metric
        that departs from its baseline there, in the brief's order, where one departs."""
        places: list[tuple[str, Segment]] = []
        # whether the place's trace can reach its revenue: a payment's, or events the metrics layer drops as late
        paid: list[bool] = []
        for row in sorted(traces, key=lambda r: -float(r["z"])):
            place = (str(row["date"]), segment_of(row))
            if place[0] in self.dates and not any(d == place[0] and overlaps(s, place[1]) for d, s in places):
                places.append(place)
                paid.append(row["what"] in (*PAYMENT_TRACES, "late"))
        if not places:
            return []
        traced: dict[Segment, list[str]] = {}
        for date, segment in places:
            traced.setdefault(segment, []).append(date)
        asked = [
            (i, date, s.platform, s.country, s.app_version, sorted(traced[s])) for i, (date, s) in enumerate(places)
        ]
        rows = yield from in_parts("defect values", asked, lambda part: dashboard_values_sql(list(part)))
        values: dict[int, dict[int, tuple[float, float]]] = {}  # value, baseline
        clean: dict[int, dict[int, tuple[float, float]]] = {}  # value, the untraced dates' level
        for row in rows:
            if row["value"] is not None and row["usual"] is not None and _stands_out(row):
                values.setdefault(int(row["i"]), {})[int(row["k"])] = (float(row["value"]), float(row["usual"]))
                level = float(row["clean"]) if row["clean"] is not None else float(row["usual"])
                clean.setdefault(int(row["i"]), {})[int(row["k"])] = (float(row["value"]), level)
        found = []
        for i, (date, segment) in enumerate(places):
            moved = clean.get(i, {})  # the metric the record moved: against the dates nothing changed
            revenue = METRICS.index(REVENUE)
            if not paid[i] and any(k != revenue for k in moved):  # the traced records are sessions
                moved = {k: v for k, v in moved.items() if k != revenue}
            chosen = first_departing(moved)
            if chosen is not None:
                observed, baseline = values[i][chosen]
                found.append(Finding(date, METRICS[chosen], DATA_QUALITY, segment, baseline, observed))
        return found

    # --- business incidents ------------------------------------------------------------------------------------

    def incidents(self, traces: Rows) -> Generator[Statement, Rows, list[Finding]]:
        rows = yield ("versions, arms and hours", context_tests_and_hours_sql(ALL_RULES, NO_FIXES, 2.5))
        tests = [row for row in rows if row["what"] not in HOURS_WHAT]
        hours = sorted((row for row in rows if row["what"] in HOURS_WHAT), key=lambda r: float(r["z"]))
        found = [*self.tested(tests), *self.blocks(hours)]
        runs = yield ("runs", run_scan_sql(ALL_RULES, NO_FIXES, (0, 1, 2, 3), RUN_BARS))
        found += self.runs(runs, found)
        traced = [(str(r["date"]), segment_of(r)) for r in traces]
        found = [f for f in found if not any(d == f.date and overlaps(s, f.segment) for d, s in traced)]
        return (yield from self.followed(found))

    def tested(self, tests: Rows) -> list[Finding]:
        """A version (from its rollout's first date) or an arm (over its dates, off its target step) whose step fell
        beyond TEST_Z pooled and TEST_FIRST_Z over its first dates: a rate drop on those dates."""
        targets = {row["detail"]: row["note"] for row in self.context if row["what"] == "experiment"}
        found: list[Finding] = []
        for row in tests:
            metric = RATE_COLUMNS[int(row["k"]) - 1]
            if row["what"] == "experiment" and targets.get(row["detail"]) == metric:
                continue  # the intended effect
            length = len(numbers(row["r"]))
            whole, first = pooled_z(row, length), pooled_z(row, min(FIRST_DATES, length))
            if whole is None or first is None or whole > -TEST_Z or first > -TEST_FIRST_Z:
                continue
            start = self.day(str(row["first"]))
            offsets = numbers(row["offsets"]) if row["what"] == "experiment" else range(length)
            segment = segment_of(row)
            found += [
                Finding(self.dates[start + int(d)], metric, RATE_DROP, segment, z=whole)
                for d in offsets
                if start + int(d) < len(self.dates)
            ]
        return found

    def blocks(self, hours: Rows) -> list[Finding]:
        """Per date, the strongest collapsed block: payments (a step that stops converting) or sessions (traffic
        that stops arriving), unless a holiday explains the traffic."""
        found: list[Finding] = []
        for row in hours:
            date, segment = str(row["first"]), segment_of(row)
            if any(f.date == date for f in found) or date not in self.dates:
                continue
            if row["what"] == "payments":
                found.append(Finding(date, RATE_COLUMNS[PAYMENT_STEP - 1], FUNNEL_BREAK, segment, z=float(row["z"])))
            elif not self.holiday(date, segment):
                found.append(Finding(date, "sessions", COUNT_DROP, segment, z=float(row["z"])))
        return found

    def runs(self, runs: Rows, found: list[Finding]) -> list[Finding]:
        """Runs of dates on which a cuboid's step fell, strongest first, each one no finding already holds and no
        experiment targets: a rate drop on its dates, in the cuboid whose move explains its parent's."""
        arms = [row for row in self.context if row["what"] == "experiment"]
        kept: list[Finding] = []
        for row in sorted(runs, key=lambda r: float(r["z"])):
            segment = widened(row)
            if -float(row["z"]) < RUN_BARS.get(len(segment_of(row).named()), 99.0):
                continue
            start = self.day(str(row["first"]))
            dates = self.dates[start : start + int(row["n"])]
            metric = RATE_COLUMNS[int(row["k"]) - 1]
            if any(f.date in dates and f.metric == metric and overlaps(f.segment, segment) for f in [*found, *kept]):
                continue
            if any(
                a["note"] == metric
                and overlaps(arm_segment(a), segment)
                and a["first"] <= dates[-1]
                and a["last"] >= dates[0]
                for a in arms
            ):
                continue
            kept += [Finding(d, metric, RATE_DROP, segment, z=float(row["z"])) for d in dates]
        return kept

    def followed(self, found: list[Finding]) -> Generator[Statement, Rows, list[Finding]]:
        """Each incident's segment and metric on every date: its rows the dates found on which the metric departs
        below its baseline, and for a fall of a whole day's rate the departing dates contiguous with them (a block
        of hours is its date's); values the metrics layer's."""
        groups: dict[tuple[str, str, Segment], list[Finding]] = {}
        for f in dedupe(found):
            groups.setdefault((f.metric, f.anomaly_type, f.segment), []).append(f)
        if not groups:
            return []
        keys = list(groups)
        asked = [
            (g * len(self.dates) + d, date, *key[2].values(), METRICS.index(key[0]))
            for g, key in enumerate(keys)
            for d, date in enumerate(self.dates)
        ]
        rows = yield from in_parts("incident values", asked, lambda part: metric_values_sql(ALL_RULES, NO_FIXES, part))
        values = {int(row["i"]): row for row in rows}
        kept: list[Finding] = []
        for g, key in enumerate(keys):
            series = [values.get(g * len(self.dates) + d, {}) for d in range(len(self.dates))]
            departs = [_departs_below(row) for row in series]
            days = {self.day(f.date) for f in groups[key]}
            run = _grown(days, departs) if key[1] == RATE_DROP else {d for d in days if departs[d]}
            kept += [
                Finding(self.dates[d], key[0], key[1], key[2], float(series[d]["peers"]), float(series[d]["value"]))
                for d in sorted(run)
            ]
        return kept

    # --- helpers ------------------------------------------------------------------------------------------------

    def day(self, date: str) -> int:
        if date in self.dates:
            return self.dates.index(date)
        return 0 if date < self.dates[0] else len(self.dates) - 1

    def holiday(self, date: str, segment: Segment) -> bool:
        return any(
            row["what"] == "holiday"
            and row["first"] == date
            and (row["country"] is None or segment.country in (None, row["country"]))
            for row in self.context
        )


def _stands_out(row: dict[str, Any]) -> bool:
    """A dashboard value beyond VALUE_Z spreads of its same weekday's values from the untraced dates' level (a noisy
    metric's move is its noise)."""
    level = row["clean"] if row["clean"] is not None else row["usual"]
    return abs(float(row["value"]) - float(level)) >= VALUE_Z * float(row["spread"] or 0.0)


def _departs_below(row: dict[str, Any]) -> bool:
    value, peers = row.get("value"), row.get("peers")
    return value is not None and peers is not None and float(peers) > 0 and float(value) < (1 - MARGIN) * float(peers)


def _grown(days: set[int], departs: list[bool]) -> set[int]:
    """The found days that depart, and the departing days contiguous with them."""
    run = {d for d in days if departs[d]}
    for d in sorted(run):
        for step in (-1, 1):
            e = d + step
            while 0 <= e < len(departs) and departs[e] and e not in run:
                run.add(e)
                e += step
    return run


def first_departing(values: dict[int, tuple[float, float]]) -> int | None:
    """The first metric (k, in the brief's order) that departs from its baseline by more than MARGIN, relative;
    None where none does."""
    return min((k for k, (v, b) in values.items() if b and abs(v - b) / abs(b) > MARGIN), default=None)


class GenericAuditorAgent(ProcedureAgent):
    """The audit above through the tools (procedure_agent.ProcedureAgent): the metrics layer read once, each
    statement through the query tool (every page of its result), then one report."""

    name = "generic_auditor"

    def plan(self, observation: SeenObservation) -> Generator[Statement, Rows, list[Finding]]:
        return Audit().run()


register_lab_agent(GenericAuditorAgent.name, GenericAuditorAgent)
