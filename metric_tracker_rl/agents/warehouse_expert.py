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

`rules` names the metrics layer's rules the expert applies (all of them; an ablation leaves one out).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Generator
from dataclasses import dataclass, field, replace
from typing import Any

from metric_tracker_rl.agents.base import register_agent
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
    kept_by,
    number_or_nan,
    numbers,
    overlaps,
    pooled_z,
    segment_of,
    widened,
    within_shift,
)
from metric_tracker_rl.agents.warehouse_scans import HOURS_WHAT, MIN_EXPECTED, context_tests_and_hours_sql, run_scan_sql
from metric_tracker_rl.agents.warehouse_sql import ALL_RULES, CONTEXT_SQL, Fixes, metric_values_sql
from metric_tracker_rl.agents.warehouse_traces import defect_values_sql, revenue_values_sql, traces_sql
from metric_tracker_rl.view.observation import SeenObservation
from metric_tracker_rl.world.metrics_layer import RATE_COLUMNS
from metric_tracker_rl.world.segments import Segment

METRIC_OF_EVENT = {"menu_open": RATE_COLUMNS[0], "product_added_to_cart": RATE_COLUMNS[1]}
REGRESSION_STEPS = (3, 4)  # the late steps a release breaks (cart to order, order to payment)
PAYMENT_STEP = 4
# Decision thresholds (z of a fall against the same weekday's other dates).
RELEASE_Z = 4.5  # a version's pooled fall over its first dates
RELEASE_FIRST_Z = 3.0  # its fall over its first three dates: a regression starts with its rollout
EXPERIMENT_Z = 3.5  # an arm's pooled fall on a step it does not target, over its dates
# A blind run's bar by the fields its cuboid names (a level shift names one nearly always).
RUN_Z = {1: 5.0, 2: 7.0}
REGRESSION_DATES = (3, 6)  # a regression lasts so many dates from its rollout's first
# The rest of a version a release broke for one group of users alone falls no further than NARROWED_REST_Z, and
# stands NARROWED_SAME_Z above the fall it would show had it fallen as the group did.
NARROWED_REST_Z, NARROWED_SAME_Z = 1.5, 2.5


def narrowing(row: dict[str, Any]) -> bool:
    """Whether a release test reads the version's users of one country, channel or user type only."""
    return any(row.get(name) is not None for name in ("country", "channel", "user_type"))


def remainder(whole: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    """A test of the whole less its part, date by date (both read from the same first date on; the part may stop
    earlier, so the remainder stops there too)."""
    return {
        name: [a - b for a, b in zip(numbers(whole[name]), numbers(part[name]), strict=False)]
        for name in ("r", "e", "w")
    }


# The bar of a single date's fall where the brief places a concurrent incident, by the fields its cuboid names.
CONCURRENT_Z = {1: 3.0, 2: 3.0}


@dataclass
class Investigation:
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

    def day(self, date: str) -> int:
        """The window's index of `date`; a date outside the window (a recount on another clock reads the day
        before it) stands at the window's nearer end."""
        if date in self.dates:
            return self.dates.index(date)
        return 0 if date < self.dates[0] else len(self.dates) - 1

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

    # --- data defects -----------------------------------------------------------------------------------------

    def defects(self, traces: Rows, sessions: Rows) -> tuple[list[Finding], Fixes]:
        """The data_quality rows the traces show (values still to read) and the fixes that undo them."""
        found: list[Finding] = []
        fixes = Fixes()
        for row in traces:
            date = str(row["first"])
            if date not in self.dates:
                continue
            if row["what"] == "skew":  # stamped a day early: the date before gains what the date loses
                segment = Segment(platform=row["platform"])
                found += [
                    Finding(d, "sessions", DATA_QUALITY, segment, kind="clock_skew")
                    for d in (date, self.shift(date, 1))
                    if d in self.dates
                ]
                fixes = replace(fixes, skewed=True)
            elif row["what"] == "late":
                found.append(Finding(date, "sessions", DATA_QUALITY, Segment(), kind="late_load"))
                fixes = replace(fixes, late_loaded=True)
            elif row["what"] == "consent":
                found.append(
                    Finding(date, "sessions", DATA_QUALITY, Segment(country=row["country"]), kind="consent_drop")
                )
        bots: list[str] = []
        for row in sessions:
            if row["what"] == "retry":
                found.append(
                    Finding(
                        str(row["first"]),
                        RATE_COLUMNS[0],
                        DATA_QUALITY,
                        Segment(platform=row["platform"], app_version=row["app_version"]).normalised(),
                        kind="retry_duplicates",
                    )
                )
                fixes = replace(fixes, retried=True)
            elif row["what"] == "bot":
                bots.append(str(row["detail"]))
        found += self.bot_rows(sessions)
        fixes = replace(fixes, bots=tuple(bots))
        for row in self.context:
            if row["what"] == "tracking":
                recorded = str(row["note"]).split(" is sent as ")
                if len(recorded) == 2 and recorded[0] in METRIC_OF_EVENT:
                    fixes = replace(fixes, renamed=(*fixes.renamed, (recorded[1], recorded[0])))
                    found += [
                        Finding(
                            d,
                            METRIC_OF_EVENT[recorded[0]],
                            DATA_QUALITY,
                            Segment(platform=row["platform"]),
                            kind="tracking_stopped",
                        )
                        for d in self.dates
                        if d >= str(row["first"])
                    ]
        return found, fixes

    def purchase_defects(self, purchases: Rows, found: list[Finding], fixes: Fixes) -> tuple[list[Finding], Fixes]:
        """revenue_usd rows from the purchases' traces: sessions of a version paying twice under two transaction
        ids (an SDK re-sending payments), a platform's purchases in a country sent in a currency it does not use."""
        found = list(found)
        for row in purchases:
            date = str(row["first"])
            if row["what"] == "resend":
                found.append(
                    Finding(
                        date,
                        REVENUE,
                        DATA_QUALITY,
                        Segment(platform=row["platform"], app_version=row["app_version"]).normalised(),
                        kind="transaction_retries",
                    )
                )
                fixes = replace(fixes, resent=True)
            elif row["what"] == "currency":
                found.append(
                    Finding(
                        date,
                        REVENUE,
                        DATA_QUALITY,
                        Segment(platform=row["platform"], country=row["country"]).normalised(),
                        kind="currency_mislabel",
                    )
                )
                fixes = replace(
                    fixes,
                    mislabelled=(
                        *fixes.mislabelled,
                        (date, row["platform"], row["country"], row["detail"], row["meant"]),
                    ),
                )
        return found, fixes

    def bot_rows(self, sessions: Rows) -> list[Finding]:
        """A bot farm's rows: each date its devices opened sessions, on web in their country."""
        farms: dict[tuple[str, str], set[str]] = {}
        for row in sessions:
            if row["what"] == "bot":
                dates = farms.setdefault((row["platform"], row["country"]), set())
                day = self.day(str(row["first"]))
                dates.update(self.dates[day : self.day(str(row["last"])) + 1])
        return [
            Finding(d, RATE_COLUMNS[0], DATA_QUALITY, Segment(platform=p, country=c).normalised(), kind="bot_farm")
            for (p, c), dates in farms.items()
            for d in sorted(dates)
        ]

    def shift(self, date: str, days: int) -> str:
        return (dt.date.fromisoformat(date) + dt.timedelta(days=days)).isoformat()

    def defect_values(self, found: list[Finding], fixes: Fixes) -> Generator[Statement, Rows, list[Finding]]:
        """Observed: the dashboard's; baseline: the metrics layer's with the faults undone (a consent drop's: the
        sessions its app_opens without consent stand for), read together where they can be."""
        if not found:
            return []
        asked = [(i, f.date, *f.segment.values(), f.step) for i, f in enumerate(found)]
        rows = yield from in_parts("defect values", asked, lambda part: defect_values_sql(self.rules, fixes, part))
        observed = {row["i"]: row["observed"] for row in rows}
        baseline: dict[int, Any] = {
            row["i"]: row["denied"] if found[row["i"]].kind == "consent_drop" else row["value"]
            for row in rows
            if found[row["i"]].metric != REVENUE
        }
        revenue = [
            (i, f.date, f.segment.platform, f.segment.country, f.segment.app_version)
            for i, f in enumerate(found)
            if f.metric == REVENUE
        ]
        if revenue:
            rows = yield from in_parts(
                "revenue baselines", revenue, lambda part: revenue_values_sql(self.rules, fixes, part)
            )
            baseline.update({row["i"]: row["value"] for row in rows})
        return [
            replace(f, observed=number_or_nan(observed.get(i)), baseline=number_or_nan(baseline.get(i)))
            for i, f in enumerate(found)
        ]

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

    def releases(self, tests: Rows) -> list[Finding]:
        """Per release, its version's strongest pooled fall over its first three to six dates, when beyond RELEASE_Z
        and its first three dates fell."""
        best: dict[str, tuple[float, dict[str, Any], int]] = {}
        for row in tests:
            if row["what"] != "release" or row["k"] not in REGRESSION_STEPS or narrowing(row):
                continue
            if (pooled_z(row, REGRESSION_DATES[0]) or 0.0) > -RELEASE_FIRST_Z:
                continue  # a fall that starts later is not the release's (a level shift its version echoes)
            for length in range(REGRESSION_DATES[0], REGRESSION_DATES[1] + 1):
                z = pooled_z(row, length)
                if z is not None and z <= -RELEASE_Z and z < best.get(row["detail"], (0.0,))[0]:
                    best[row["detail"]] = (z, row, length)
        found = []
        for z, row, length in best.values():
            z, row = self.narrowed(z, row, length, tests)
            first = self.day(str(row["first"]))
            found += [
                Finding(
                    self.dates[d],
                    RATE_COLUMNS[row["k"] - 1],
                    RATE_DROP,
                    segment_of(row),
                    kind="release_regression",
                    z=z,
                )
                for d in range(first, min(first + length, len(self.dates)))
            ]
        return found

    def narrowed(self, z: float, row: dict[str, Any], length: int, tests: Rows) -> tuple[float, dict[str, Any]]:
        """A found release's fall, narrowed to the version's users of one country, channel or user type (the tests
        read them where `narrowed_releases`) whose pooled fall over the same dates is stronger than the whole
        version's, where the rest of the version shows none (beyond NARROWED_REST_Z) and would have shown the
        part's (its count stands NARROWED_SAME_Z above a fall of the part's share): a build that broke for them
        alone. Else the version's."""
        for part in tests:
            if (
                part["what"] != "release"
                or part["detail"] != row["detail"]
                or part["k"] != row["k"]
                or not narrowing(part)
                or str(part["first"]) != str(row["first"])
            ):
                continue
            own, rest = pooled_z(part, length), remainder(row, part)
            fall = sum(numbers(part["r"])[:length]) / max(sum(numbers(part["e"])[:length]), 1e-9)
            as_part = {**rest, "r": [r - fall * e for r, e in zip(rest["r"], rest["e"], strict=True)]}
            alone, unlike = pooled_z(rest, length), pooled_z(as_part, length)
            if (
                own is not None
                and own < z
                and alone is not None
                and alone > -NARROWED_REST_Z
                and unlike is not None
                and unlike >= NARROWED_SAME_Z
            ):
                z, row = own, part
        return z, row

    def experiments(self, tests: Rows) -> list[Finding]:
        """Per experiment, the step it does not target whose pooled fall in its arm over its dates is strongest,
        when beyond EXPERIMENT_Z: a row on each of its dates."""
        best: dict[str, tuple[float, dict[str, Any]]] = {}
        # An experiment by its arm and first date: the context names no experiment, its tests no arm's text.
        targets = {
            (arm_segment(row).normalised(), str(row["first"])): row["note"]
            for row in self.context
            if row["what"] == "experiment"
        }
        for row in tests:
            if row["what"] != "experiment":
                continue
            if RATE_COLUMNS[row["k"] - 1] == targets.get((segment_of(row), str(row["first"]))):
                continue  # the intended effect
            if sum(numbers(row["e"])) < MIN_EXPECTED:
                continue  # too few conversions expected to read a fall by
            z = pooled_z(row, len(numbers(row["r"])))
            if z is not None and z <= -EXPERIMENT_Z and z < best.get(row["detail"], (0.0,))[0]:
                best[row["detail"]] = (z, row)
        found = []
        for _, row in best.values():
            first = self.day(str(row["first"]))
            found += [
                Finding(
                    self.dates[first + int(d)],
                    RATE_COLUMNS[row["k"] - 1],
                    RATE_DROP,
                    segment_of(row),
                    kind="experiment_breakage",
                )
                for d in numbers(row["offsets"])
            ]
        return found

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
