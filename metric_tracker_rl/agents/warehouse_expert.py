"""The expert at warehouse: an analyst who reads the metrics layer, recomputes its numbers from the raw events by its
rules, asks of every move "is this real, or is it the data?", and reports each as what it is.

1. Context: the window, experiments, holidays and tracking deploys (one statement).
2. Data defects, from their traces in the raw events (the dashboard applies the standing rules, so only a trace the
   rules do not foresee tells a recording fault): a platform's events ingested a day after their stamp (a clock a
   day early), a date's events ingested three days after it (a late load), a country's app_opens without consent
   (cookieless), sessions with an app_open and no session_start (an SDK re-sending opens), unlisted devices
   whose many sessions all stop at the open (bots), a tracking deploy that renamed a funnel event, sessions paying
   twice under two transaction ids (an SDK re-sending payments) and purchases in a currency their country does not
   use (a mislabelled currency). Each is a
   data_quality row per date on the metric it corrupts: observed the dashboard's, baseline the metrics layer's over
   the events with the fault undone.
3. Business incidents, on the metrics layer's sessions with the faults undone: each release's version and each
   experiment's arm tested over their dates (a regression from the rollout's first date; a breakage of a step the
   experiment does not target), blocks of hours whose sessions or payments collapsed (an outage, a payment
   failure), and runs of dates on which a cuboid's step fell (a level shift: the run's cuboid, or its parent where
   the rest of the parent fell with it), each scan against the same weekday's other dates, leaf by leaf; the run
   scan also reads single dates' weaker falls on the incidents' dates, and where the config places a concurrent
   incident and none was found, the strongest of those where the brief says it lies (an incident's date, a step
   its date leaves alone, a cuboid keeping one of the incident's values) is it.
4. Values: every incident row's observed value and same-weekday median by the metrics layer, read in one statement.

`rules` names the metrics layer's rules the expert applies (all of them; an ablation leaves one out). Step 2's rows
are warehouse_defect_rows.py's, step 3's tests of releases and experiments warehouse_context_tests.py's; this
module orders the procedure and decides the incidents the scans show.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Generator
from dataclasses import dataclass, field, replace

from metric_tracker_rl.agents.base import register_agent
from metric_tracker_rl.agents.procedure_agent import ProcedureAgent
from metric_tracker_rl.agents.warehouse_context_tests import ContextTests
from metric_tracker_rl.agents.warehouse_defect_rows import DefectRows
from metric_tracker_rl.agents.warehouse_findings import (
    COUNT_DROP,
    DATA_QUALITY,
    FUNNEL_BREAK,
    RATE_DROP,
    Finding,
    Rows,
    Statement,
    arm_segment,
    dedupe,
    in_parts,
    kept_by,
    number_or_nan,
    overlaps,
    segment_of,
    widened,
    within_shift,
)
from metric_tracker_rl.agents.warehouse_scans import HOURS_WHAT, context_tests_and_hours_sql, run_scan_sql
from metric_tracker_rl.agents.warehouse_sql import ALL_RULES, CONTEXT_SQL, Fixes, metric_values_sql
from metric_tracker_rl.agents.warehouse_traces import traces_sql
from metric_tracker_rl.view.observation import SeenObservation
from metric_tracker_rl.world.metrics_layer import RATE_COLUMNS
from metric_tracker_rl.world.segments import Segment

PAYMENT_STEP = 4
# A blind run's bar by the fields its cuboid names (a level shift names one nearly always).
RUN_Z = {1: 5.0, 2: 7.0}
# The bar of a single date's fall where the brief places a concurrent incident, by the fields its cuboid names.
CONCURRENT_Z = {1: 3.0, 2: 3.0}


@dataclass
class Investigation(DefectRows, ContextTests):
    """The procedure of the module docstring as a generator of statements: `run()` yields (name, sql) and is sent
    each statement's rows; it returns the findings."""

    rules: frozenset[str] = ALL_RULES
    concurrency: int = 1  # the config's: dates that carry a second incident
    dates: list[str] = field(default_factory=list)
    context: Rows = field(default_factory=list)
    narrowed_releases: bool = False  # a release may break its version for one country, channel or user type only
    payments_rest: bool = False  # a step may convert worse all day where payments fail for hours
    platform_break_z: float | None = None  # a platform's block with no payment at all: its bar (_hours)
    siblings: bool = False  # a level shift may hold one user type or channel (see warehouse_scans._sibling)

    def run(self) -> Generator[Statement, Rows, list[Finding]]:
        rows = yield ("context", CONTEXT_SQL)  # dates as text, as the query tool shows them
        self.context = [{name: str(v) if isinstance(v, dt.date) else v for name, v in row.items()} for row in rows]
        window = next(row for row in self.context if row["what"] == "window")
        first, last = dt.date.fromisoformat(window["first"]), dt.date.fromisoformat(window["last"])
        self.dates = [(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
        found = yield ("traces", traces_sql(self.rules))
        traces, sessions, purchases = (
            [row for row in found if row["what"] in kinds]
            for kinds in (("skew", "late", "consent"), ("retry", "bot"), ("resend", "currency"))
        )
        defects, fixes = self.defects(traces, sessions)
        defects, fixes = self.purchase_defects(purchases, defects, fixes)
        defects = dedupe(defects)
        defects = yield from self.defect_values(defects, fixes)
        incidents = yield from self.incidents(fixes, defects)
        incidents = yield from self.incident_values(incidents)
        return dedupe([*defects, *incidents])

    # --- business incidents ------------------------------------------------------------------------------------

    def incidents(self, fixes: Fixes, defects: list[Finding]) -> Generator[Statement, Rows, list[Finding]]:
        sql = context_tests_and_hours_sql(
            self.rules, fixes, 2.5, self.narrowed_releases, self.payments_rest, self.platform_break_z
        )
        rows = yield ("releases, experiments and hours", sql)
        tests = [row for row in rows if row["what"] not in HOURS_WHAT]
        # by what, strongest first, as the hours' part orders them
        hours = sorted((row for row in rows if row["what"] in HOURS_WHAT), key=lambda r: (r["what"], r["z"]))
        releases = self.releases(tests)
        found = self.experiments(tests)
        breaks = [row for row in hours if row["what"] == "payments"]
        outages = [row for row in hours if row["what"] == "outage"]
        found += self.strongest_each_date(breaks, PAYMENT_STEP, FUNNEL_BREAK, "payment_failure")
        found += [
            f
            for f in self.strongest_each_date(outages, 0, COUNT_DROP, "segment_outage")
            if not any(d.step == 0 and d.date == f.date for d in defects) and not self.holiday(f)
        ]
        # the dates whose single-date falls the run scan reads: where the brief places a second incident
        hosts = [f.date for f in [*releases, *found]] if self.concurrency else []
        runs = yield ("runs", run_scan_sql(self.rules, fixes, (0, 1, 2, 3), RUN_Z, hosts, self.siblings))
        found = [*self.versions_alone(releases, runs), *found]  # a release first: its dates' payments are its own
        shifts = self.level_shifts(runs, found, defects)
        found = [*(f for f in found if not within_shift(f, shifts)), *shifts]
        return [*found, *self.concurrent(found, runs)]

    def concurrent(self, found: list[Finding], runs: Rows) -> list[Finding]:
        """The brief's concurrent incidents still unfound: on an incident's date, a level shift of that date only,
        on a step that date's incidents and experiments leave alone, in a cuboid that keeps one of the incident's
        values and agrees with it on every field both name. The strongest such fall of one date the run scan read,
        where it stands out."""
        alone = [
            f
            for f in found
            if f.kind == "level_shift"
            and not any(
                g.kind == "level_shift" and g.metric == f.metric and g.segment == f.segment and g.date != f.date
                for g in found
            )
        ]
        if not self.concurrency or alone:
            return []  # none, or one found already (a level shift lasts two dates or more unless concurrent)
        kept = []
        for row in sorted(runs, key=lambda r: r["z"]):
            segment, date = segment_of(row), str(row["first"])
            if row["n"] != 1 or row["z"] > -CONCURRENT_Z[len(segment.named())] or row["k"] in self.taken(date, found):
                continue
            hosts = [f.segment for f in found if f.date == date and kept_by(segment, f.segment)]
            if hosts:
                wide = widened(row)
                segment = wide if any(kept_by(wide, host) for host in hosts) else segment
                kept.append(
                    Finding(date, RATE_COLUMNS[row["k"] - 1], RATE_DROP, segment, kind="level_shift", z=row["z"])
                )
        return kept[: self.concurrency]

    def taken(self, date: str, found: list[Finding]) -> set[int]:
        """The steps (1 to 4) a date's incidents name, up to a payment failure's, and its experiments' targets."""
        steps = {f.step for f in found if f.date == date and f.step > 0}
        if any(f.date == date and self.takes_every_step(f) for f in found):
            steps |= set(range(1, PAYMENT_STEP + 1))
        return steps | {
            RATE_COLUMNS.index(row["note"]) + 1
            for row in self.context
            if row["what"] == "experiment" and row["first"] <= date <= row["last"] and row["note"] in RATE_COLUMNS
        }

    def takes_every_step(self, finding: Finding) -> bool:
        """Whether an incident takes every step of its date up to payment: here a funnel break, which is a payment
        failure (its failed attempts)."""
        return finding.anomaly_type == FUNNEL_BREAK

    def versions_alone(self, releases: list[Finding], runs: Rows) -> list[Finding]:
        """The releases whose fall is the version's own: a run on the same step and dates in a cuboid holding the
        version that stands out further than the version did is a fall of more than the version (a level shift
        its version echoes)."""
        kept = []
        for finding in releases:
            wider = any(
                RATE_COLUMNS[row["k"] - 1] == finding.metric
                and row["z"] < finding.z
                and overlaps(segment_of(row), finding.segment)
                and finding.date in self.dates[self.day(str(row["first"])) :][: row["n"]]
                for row in runs
            )
            if not wider:
                kept.append(finding)
        return kept

    def holiday(self, finding: Finding) -> bool:
        """A holiday in the finding's country (or everywhere) on its date moves traffic as people do."""
        return any(
            row["what"] == "holiday"
            and row["first"] == finding.date
            and (row["country"] is None or finding.segment.country in (None, row["country"]))
            for row in self.context
        )

    def strongest_each_date(self, rows: Rows, step: int, family: str, kind: str) -> list[Finding]:
        """Per date, the strongest block's cuboid (rows come strongest first); one that overlaps it is the same."""
        chosen: dict[str, Segment] = {}
        for row in rows:
            date = str(row["first"])
            if date not in chosen:
                chosen[date] = segment_of(row)
        metric = "sessions" if step == 0 else RATE_COLUMNS[step - 1]
        return [Finding(date, metric, family, segment, kind=kind) for date, segment in chosen.items()]

    def level_shifts(self, runs: Rows, found: list[Finding], defects: list[Finding]) -> list[Finding]:
        """The strongest runs no finding explains, greedily (a run overlapping a stronger one on its step and dates
        is that one's echo), each a rate drop on every date of its run."""
        taken = [*found, *defects]
        arms = [row for row in self.context if row["what"] == "experiment"]
        kept: list[Finding] = []
        for row in sorted(runs, key=lambda r: r["z"]):
            if -row["z"] < RUN_Z[len(segment_of(row).named())]:
                continue
            segment = widened(row)
            first = self.day(str(row["first"]))
            dates = self.dates[first : first + row["n"]]
            metric = RATE_COLUMNS[row["k"] - 1]
            if any(
                f.date in dates
                and overlaps(f.segment, segment)
                and (f.metric == metric or (f.step == 0 and f.anomaly_type == DATA_QUALITY))
                and not (f.kind == "payment_failure" and row["n"] > 1)
                for f in taken
            ):
                continue  # (a fall of payments over several dates is more than a block of hours)
            if any(
                a["note"] == metric
                and overlaps(arm_segment(a), segment)
                and a["first"] <= dates[-1]
                and a["last"] >= dates[0]
                for a in arms
            ):
                continue  # an experiment's intended effect on its target step
            new = [Finding(d, metric, RATE_DROP, segment, kind="level_shift") for d in dates]
            kept += new
            taken += new
        return kept

    # --- values -----------------------------------------------------------------------------------------------

    def incident_values(self, found: list[Finding]) -> Generator[Statement, Rows, list[Finding]]:
        """Each incident row's observed value and baseline (the same weekday's median) by the metrics layer."""
        found = dedupe(found)
        if not found:
            return []
        asked = [(i, f.date, *f.segment.values(), f.step) for i, f in enumerate(found)]
        rows = yield from in_parts("incident values", asked, lambda part: metric_values_sql(self.rules, Fixes(), part))
        values = {row["i"]: row for row in rows}
        return [
            replace(
                f,
                observed=number_or_nan(values.get(i, {}).get("value")),
                baseline=number_or_nan(values.get(i, {}).get("peers")),
            )
            for i, f in enumerate(found)
        ]


def investigate(
    run_sql: Callable[[str], Rows], rules: frozenset[str] = ALL_RULES, log: list[Statement] | None = None
) -> list[Finding]:
    """Play the procedure against a function that runs a statement and returns its rows (all of them)."""
    procedure = Investigation(rules).run()
    try:
        statement = next(procedure)
        while True:
            if log is not None:
                log.append(statement)
            statement = procedure.send(run_sql(statement[1]))
    except StopIteration as done:
        findings: list[Finding] = done.value
        return findings


class WarehouseExpertAgent(ProcedureAgent):
    """The procedure through the environment's tools (procedure_agent.ProcedureAgent): the metrics layer read once,
    then each statement through the query tool (every page of its result), then the report."""

    name = "warehouse_expert"

    def __init__(self, rules: frozenset[str] = ALL_RULES) -> None:
        self.rules = rules

    def plan(self, observation: SeenObservation) -> Generator[Statement, Rows, list[Finding]]:
        return Investigation(self.rules, int(observation.config.get("concurrency") or 0)).run()


register_agent(WarehouseExpertAgent.name, WarehouseExpertAgent)
