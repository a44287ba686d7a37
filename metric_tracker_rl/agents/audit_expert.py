"""The expert at the audit: it knows every mechanism the generator has (it may: it proves the tier solvable, it is
not the witness that the text suffices) and plays through the tools only.

1. The warehouse expert's procedure (warehouse_expert.Investigation): context, the warehouse's defects by their
   traces, its incident scans and values.
2. Every finder (audit_finders: one statement per mechanism, batched into as few statements as the query tool's
   length allows) for the mechanisms the warehouse's procedure does not know.
3. The audit's rules: a defect's row is on the first metric it moved past the margin (for the warehouse's
   defects, read with the fault undone; for the finders', the metric the finder names), its values the
   dashboard's (observed on the date, baseline the same weekday's median); an incident found on a date and segment
   a defect holds is the defect's doing and dropped, unless the data show it users' beside the defect
   (audit_coinciding); an incident row whose value does not depart from its baseline
   by more than the margin, or moves against its family (a drop that rose), is no finding (and where its values
   are known before the report is chosen, it leaves its date and metric to the next candidate), nor is a date of a
   change that lasts dates (a lasting finder's) with no date beside it that departs too; a lasting change holds
   through a defect's dates where it stands on both sides of them, or on one side where the defect covers part of
   its segment and the dates move alike (bridged, supported); a level shift's run is named by user type over all
   its dates at once (by_user_type), and a block of hours on a date of a level shift's run of a segment overlapping
   its own is the run's (within_shift); a release whose fall an experiment's arm holding its version shows further
   is the arm's (arms_over_versions). A defect's row reports its repaired value: the metric read with its fault
   undone (the warehouse's defects as its procedure undoes them; the finders' by audit_repairs).
"""

from __future__ import annotations

import math
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field, replace
from functools import partial

from metric_tracker_rl.agents.audit_coinciding import (
    DEFECT_METRICS,
    REPAIRED,
    arms_over_versions,
    bridged,
    comes_before,
    left_out,
    met_by,
    read_together,
    users_move,
)
from metric_tracker_rl.agents.audit_finders import Finder, batched_sql
from metric_tracker_rl.agents.audit_incident_scans import FINDERS as INCIDENT_FINDERS
from metric_tracker_rl.agents.audit_lasting import LastingRuns, place, stands
from metric_tracker_rl.agents.audit_repairs import FIXES_OF, fix_of, merged, valued_and_repaired
from metric_tracker_rl.agents.audit_second_incident import CONCURRENCY, nests
from metric_tracker_rl.agents.audit_traces_pipeline import FINDERS as PIPELINE_FINDERS
from metric_tracker_rl.agents.audit_traces_recording import FINDERS as RECORDING_FINDERS
from metric_tracker_rl.agents.audit_traces_sanity import FINDERS as SANITY_FINDERS
from metric_tracker_rl.agents.base import register_agent
from metric_tracker_rl.agents.warehouse_expert import WarehouseExpertAgent
from metric_tracker_rl.agents.warehouse_findings import (
    DATA_QUALITY,
    FUNNEL_BREAK,
    REVENUE,
    Finding,
    Rows,
    Statement,
    arm_segment,
    dedupe,
    in_parts,
    number_or_nan,
    overlaps,
)
from metric_tracker_rl.agents.warehouse_sql import ALL_RULES, NO_FIXES, Fixes, metric_values_sql, wanted_values
from metric_tracker_rl.catalog.tiers import AUDIT_HELD_OUT_DEFECTS, AUDIT_HELD_OUT_KINDS
from metric_tracker_rl.view.observation import SeenObservation
from metric_tracker_rl.world.audit_brief import SPLIT_NOTE, departs, relative_move
from metric_tracker_rl.world.metrics_layer import RATE_COLUMNS, STEP_SESSION_COLUMNS
from metric_tracker_rl.world.segments import Segment

# Every finder the package has: the recording faults', the pipeline's, the sanity checks', then the incidents'.
ALL_FINDERS: tuple[Finder, ...] = (*RECORDING_FINDERS, *PIPELINE_FINDERS, *SANITY_FINDERS, *INCIDENT_FINDERS)
DASHBOARD_FIELDS = ("platform", "app_version", "country")
ECHO_KEPT = 2  # a level shift's fewest dates (one alone is a date's second incident, never a run's part)
LASTING_DATES = 7  # a defect's dates from which it moves its segment's same-weekday baseline
# The tier places a payment failure on a platform alone and leaves almost no payment in its hours: a platform's
# block of five or six orders none of which paid, where nine in ten usually do, is read at a bar lower than the
# warehouse's. A step converting worse all day leaves some paying; a country's blocks keep the warehouse's bar (its
# few orders an hour make false ones at this one).
PLATFORM_BREAK_Z = 4.5
# A defect whose trace another finder's defect leaves too, where both flag one date and platform: that other one
# holds it. An ingestion gap loses every event of its hours, so the users who first came then are never seen (as
# client sampling's are), but sampling drops whole users and cuts no session short of its opening events.
EXPLAINED_BY = {"client_sampling": "ingestion_gap"}


def dashboard_metric(metric: str) -> str:
    """A dashboard metric's value over a group of dashboard rows `t` (a rate: its numerator's sum over its
    denominator's; a count or the revenue: its sum, 0 over none)."""
    if metric in RATE_COLUMNS:
        step = RATE_COLUMNS.index(metric)
        return f"sum(t.{STEP_SESSION_COLUMNS[step + 1]}) / nullif(sum(t.{STEP_SESSION_COLUMNS[step]}), 0)"
    return f"coalesce(sum(t.{metric}), 0)"


def dashboard_values_sql(asked: Sequence[tuple[object, ...]]) -> str:
    """For each row asked (i, date, platform, app_version, country, metric), the dashboard's value of the metric in
    the segment on the date (`value`) and the median over the same weekday's other dates (`peers`), a date without
    a value skipped; as text, which shows every digit (a result's numbers show four: a delta beside a baseline of
    zero is graded to a share of nothing)."""
    cases = " ".join(f"WHEN '{m}' THEN {dashboard_metric(m)}" for m in ("sessions", *RATE_COLUMNS, REVENUE))
    match = " AND ".join(f"(q.{f} IS NULL OR t.{f} = q.{f})" for f in DASHBOARD_FIELDS)
    return (
        f"WITH {wanted_values(asked, 'i, on_date, platform, app_version, country, metric')}, "
        "days AS (SELECT DISTINCT date FROM dashboard), "
        f"by_date AS (SELECT q.i, d.date, any_value(q.on_date) on_date, CASE any_value(q.metric) {cases} END "
        f"value FROM q JOIN days d ON isodow(d.date) = isodow(q.on_date) LEFT JOIN dashboard t ON t.date = "
        f"d.date AND {match} GROUP BY q.i, d.date) "
        "SELECT i, CAST(max(value) FILTER (date = on_date) AS VARCHAR) value, "
        "CAST(median(value) FILTER (date <> on_date) AS VARCHAR) peers "
        "FROM by_date GROUP BY i ORDER BY i"
    )


@dataclass
class AuditInvestigation(LastingRuns):
    """The warehouse's procedure, then the finders, then the audit's rules (the module docstring)."""

    flagged: list[Finding] = field(default_factory=list)  # the finders' candidates (read before the incidents)
    fixes: Fixes = NO_FIXES  # the repairs of the defects the warehouse's procedure undoes
    repairs: bool = False  # whether the brief asks a defect's repaired value (its repaired_value rule)

    def run(self) -> Generator[Statement, Rows, list[Finding]]:
        found = yield from super().run()
        known = [f for f in found if f.anomaly_type == DATA_QUALITY]
        flagged_defects = [
            f for f in self.flagged if f.anomaly_type == DATA_QUALITY and f.date not in {d.date for d in known}
        ]
        chosen = yield from self.most_moved(flagged_defects)
        defects = [*known, *chosen]
        # A defect that lasts weeks takes its segment's baseline of its metric and the next step's with it: no
        # fall or rise of those there on its dates is read as users'.
        lasting = [d for d in defects if sum(e.segment == d.segment for e in defects) >= LASTING_DATES]
        ordered = self.by_precedence(found, self.flagged)
        beside, refuted = yield from self.beside_defects([f for f in ordered if met_by(f, defects)], defects)
        unechoed = self.without_echoes(ordered, defects, beside)
        candidates = [
            f
            for f in unechoed
            if (not met_by(f, defects) or (f.date, f.metric, f.segment) in beside)
            and not any(
                d.date == f.date and overlaps(d.segment, f.segment) and f.step in (d.step, d.step + 1) for d in lasting
            )
            and not (f.kind in self.finder_kinds() and self.intended(f))
        ]
        runs, unread = self.lasting_kinds(), [f for f in unechoed if place(f) not in refuted]
        two_sided = bridged(candidates, unread, runs, self.day)
        candidates = bridged(candidates, unread, runs, self.day, partly=self.partly(defects))
        leaning = {place(f) for f in candidates} - {place(f) for f in two_sided}
        candidates = yield from self.narrowed_to_a_user_type(candidates)
        incidents = dedupe(f for f in candidates if math.isnan(f.observed) or stands(f))
        incidents = yield from self.with_second_incident(incidents, defects)
        defects = yield from self.defect_rows(dedupe(defects))
        incidents = yield from self.values_of_new(incidents)
        kept = self.without_lone_dates(self.without_faint_edges([f for f in incidents if stands(f)]))
        return dedupe([*defects, *self.supported(kept, leaning)])

    def defect_rows(self, defects: list[Finding]) -> Generator[Statement, Rows, list[Finding]]:
        """The defects' dashboard values, and their repaired values where the brief asks them (`repairs`); else
        none, so a report where none is asked reads as it did before the rule."""
        if self.repairs:
            return (yield from valued_and_repaired(self.rules, self.fixes, defects, dashboard_values_sql))
        valued = yield from self.dashboard_values(defects)
        return [replace(f, repaired=math.nan) for f in valued]

    def without_echoes(
        self, incidents: list[Finding], defects: list[Finding], beside: set[tuple[str, str, Segment]]
    ) -> list[Finding]:
        """A run of level shifts (consecutive dates, one metric and segment) that shares a date with a defect whose
        segment overlaps it, and moves on none of those dates in the sessions the defect leaves alone (`beside`:
        beside_defects), is the defect's echo (the scan pooled a neighbouring date's noise into the defect's fall),
        and the run's other dates go too (its shared dates go by the rule of a defect's date). But where the run
        holds ECHO_KEPT dates or more a day or more from the defect's, the scan pooled a level shift there with the
        echo: those stay."""
        dropped: set[tuple[str, str, Segment]] = set()
        for run in self.runs_of([f for f in incidents if f.kind == "level_shift"]):
            held = {self.day(d.date) for d in defects if overlaps(d.segment, run[0].segment)}
            if not held & {self.day(f.date) for f in run} or any((f.date, f.metric, f.segment) in beside for f in run):
                continue
            beyond = {f.date for f in run if min(abs(self.day(f.date) - h) for h in held) > 1}
            kept = beyond if len(beyond) >= ECHO_KEPT else set()
            dropped |= {
                (f.date, f.metric, f.segment) for f in run if f.date not in kept and self.day(f.date) not in held
            }
        return [f for f in incidents if f.kind != "level_shift" or (f.date, f.metric, f.segment) not in dropped]

    def beside_defects(
        self, met: list[Finding], defects: list[Finding]
    ) -> Generator[Statement, Rows, tuple[set[tuple[str, str, Segment]], set[tuple[str, str, Segment]]]]:
        """Of the incidents' candidates on a defect's date in a segment it overlaps, those that are users' beside
        each such defect: where the candidate's metric comes before the defect's in DEFECT_METRICS (a defect's row
        is on the first metric it moves past the margin, so it moved none before it that far); else where the
        metric departs from its same-weekday median the same way, by more than the margin and BESIDE_Z standard
        errors, with the defect undone (one the warehouse's procedure or audit_repairs undoes: the version it
        sends may be most of the segment) or in the sessions it leaves alone (the candidate's segment less the
        defect's, left_out; a candidate the defect covers whole has none): a defect moves only what it records.
        With them, those read with the defect undone that did not move: the whole segment was read there, so no
        lasting change is bridged through them (bridged)."""
        pairs = [
            (f, d)
            for f in met
            for d in defects
            if d.date == f.date and overlaps(d.segment, f.segment) and not comes_before(f, d)
        ]
        moved: dict[tuple[str, str, Segment], bool] = {place(f): True for f in met}
        refuted: set[tuple[str, str, Segment]] = set()
        undoable = REPAIRED | FIXES_OF.keys()
        repaired = [(f, d) for f, d in pairs if d.kind in undoable]
        beside = [(f, d) for f, d in pairs if d.kind not in undoable]
        undone = merged(self.fixes, *(fix_of(d) for _, d in repaired if d.kind in FIXES_OF))
        groups = [(group, excluding) for group, excluding in ((repaired, False), (beside, True)) if group]
        builds = {
            excluding: partial(
                metric_values_sql, self.rules, NO_FIXES if excluding else undone, excluding=excluding, with_entered=True
            )
            for _, excluding in groups
        }
        asked = {
            excluding: [
                (i, f.date, *f.segment.values(), f.step, *(left_out(f, d.segment) if excluding else ()))
                for i, (f, d) in enumerate(group)
            ]
            for group, excluding in groups
        }
        read = yield from read_together(asked, builds)
        for group, excluding in groups:
            values = {row["i"]: row for row in read[excluding]}
            for i, (f, _) in enumerate(group):
                key = place(f)
                moves = users_move(f, values.get(i, {}))
                moved[key] = moved[key] and moves
                if not (moves or excluding):
                    refuted.add(key)
        return {key for key, kept in moved.items() if kept}, refuted

    def level_shifts(self, runs: Rows, found: list[Finding], defects: list[Finding]) -> list[Finding]:
        """The warehouse's runs, but a run on a defect's dates stays a candidate here: whether it is the defect's
        or users' is read in the sessions the defect leaves alone (beside_defects)."""
        return super().level_shifts(runs, found, [])

    def by_precedence(self, found: list[Finding], flagged: list[Finding]) -> list[Finding]:
        """The incidents, the likelier first where two name one date and metric (dedupe keeps the first): a block
        of hours that stopped converting is what a scan of whole days reads as a fall; then the warehouse's
        procedure's; then the other finders'. A block inside a run of whole-day falls is the run's (inside_run), and
        so is an outage's (outage_in_run), and a level shift of a segment holding a finding that stood alone among
        its siblings on its date and metric is that one's change, diluted (diluted)."""
        incidents = [
            f
            for f in found
            if f.anomaly_type != DATA_QUALITY and not self.outage_in_run(f, flagged) and not self.diluted(f, flagged)
        ]
        flagged = [f for f in flagged if f.anomaly_type != DATA_QUALITY]
        blocks = [f for f in flagged if f.anomaly_type == FUNNEL_BREAK]
        days = [f for f in flagged if f.anomaly_type != FUNNEL_BREAK]
        runs = [self.inside_run(block, days) for block in blocks]
        shifts = [f for f in incidents if f.kind == "level_shift"]
        hours = [
            block
            for block, run in zip(blocks, runs, strict=True)
            if run is None and not self.within_shift(block, shifts)
        ]
        return [*(run for run in runs if run is not None), *hours, *incidents, *days]

    def diluted(self, finding: Finding, flagged: list[Finding]) -> bool:
        """Whether a level shift's segment holds a narrower finding of an `alone` finder on its date and metric:
        that one's siblings did not move, so the wider segment moved by it alone."""
        alone = {finder.name for finder in self.finders if finder.alone}
        return finding.kind == "level_shift" and any(
            f.kind in alone
            and (f.date, f.metric) == (finding.date, finding.metric)
            and f.segment != finding.segment
            and nests(f.segment, finding.segment)
            for f in flagged
        )

    def incidents(self, fixes: Fixes, defects: list[Finding]) -> Generator[Statement, Rows, list[Finding]]:
        """The finders first, so that the warehouse's scans read the dates of the incidents they found too."""
        self.fixes = fixes
        rows: Rows = []
        for name, sql in batched_sql(self.finders):
            rows += yield (name, sql)
        self.flagged = self.from_finders(rows)
        return arms_over_versions((yield from super().incidents(fixes, defects)))

    def concurrent(self, found: list[Finding], runs: Rows) -> list[Finding]:
        """None here: the second incident of a date is looked for once every incident is known
        (with_second_incident)."""
        return []

    def takes_every_step(self, finding: Finding) -> bool:
        """A payment failure takes every step up to payment; the audit's other blocks of stopped hours their own
        step only."""
        return finding.kind == "payment_failure"

    def defect_values(self, found: list[Finding], fixes: Fixes) -> Generator[Statement, Rows, list[Finding]]:
        """Each warehouse defect's row on the first metric of DEFECT_METRICS it moved past the margin: every
        metric's value as the dashboard shows it and with the fault undone (the warehouse's procedure reads
        both)."""
        expanded = [replace(f, metric=metric) for f in found for metric in DEFECT_METRICS]
        valued = yield from super().defect_values(expanded, fixes)
        chosen = []
        for i in range(len(found)):
            options = valued[i * len(DEFECT_METRICS) : (i + 1) * len(DEFECT_METRICS)]
            first = next((o for o in options if departs(o.observed, o.baseline)), None)
            if first is not None:
                chosen.append(replace(first, repaired=first.baseline))  # the value with the fault undone
        return chosen

    def most_moved(self, flagged: list[Finding]) -> Generator[Statement, Rows, list[Finding]]:
        """A finder's defect on a date: each finder names the metric its mechanism moves first; where several
        flag one date (two defects never share one), the row whose metric departs most from its baseline in the
        dashboard; a version's counts follow its rollout, so there its finder's row stands. A flag another one
        explains (EXPLAINED_BY) is left out first."""
        flagged = [
            f
            for f in flagged
            if not any(
                g.kind == EXPLAINED_BY.get(f.kind) and g.date == f.date and g.segment.platform == f.segment.platform
                for g in flagged
            )
        ]
        valued = yield from self.dashboard_values(dedupe(flagged))
        best: dict[str, tuple[float, Finding]] = {}
        for finding in valued:
            move = (
                math.inf
                if finding.segment.app_version is not None
                else relative_move(finding.observed, finding.baseline)
            )
            if move > best.get(finding.date, (-1.0, finding))[0]:
                best[finding.date] = (move, finding)
        return [finding for _, finding in best.values()]

    def finder_kinds(self) -> set[str]:
        return {finder.name for finder in self.finders if finder.kind == "incident"}

    def intended(self, finding: Finding) -> bool:
        """Whether an experiment running on the finding's date targets its step in an arm overlapping its segment:
        the experiment's intended effect, a benign change the brief names."""
        return any(
            row["what"] == "experiment"
            and str(row["first"]) <= finding.date <= str(row["last"])
            and row["note"] == finding.metric
            and overlaps(arm_segment(row), finding.segment)
            for row in self.context
        )

    def from_finders(self, rows: Rows) -> list[Finding]:
        families = {finder.name: finder.family for finder in self.finders}
        out = []
        for row in rows:
            date = str(row["date"])
            if date not in self.dates:
                continue
            segment = Segment(
                platform=row.get("platform"),
                country=row.get("country"),
                app_version=row.get("app_version"),
                channel=row.get("channel"),
                user_type=row.get("user_type"),
            ).normalised()
            what = str(row.get("what"))
            family = families.get(what, "") or DATA_QUALITY
            out.append(Finding(date, str(row["metric"]), family, segment, kind=what))
        return out

    def dashboard_values(self, found: list[Finding]) -> Generator[Statement, Rows, list[Finding]]:
        """Each defect row's values as the dashboard shows them."""
        if not found:
            return []
        asked = [
            (i, f.date, f.segment.platform, f.segment.app_version, f.segment.country, f.metric)
            for i, f in enumerate(found)
        ]
        rows = yield from in_parts("dashboard values", asked, dashboard_values_sql)
        values = {row["i"]: row for row in rows}
        return [
            replace(
                f,
                observed=number_or_nan(values.get(i, {}).get("value")),
                baseline=number_or_nan(values.get(i, {}).get("peers")),
            )
            for i, f in enumerate(found)
        ]


class AuditExpertAgent(WarehouseExpertAgent):
    """The audit's procedure through the environment's tools, as the warehouse expert plays its own."""

    name = "audit_expert"

    def __init__(self, rules: frozenset[str] = ALL_RULES, finders: tuple[Finder, ...] | None = None) -> None:
        super().__init__(rules)
        self.finders = ALL_FINDERS if finders is None else finders

    def plan(self, observation: SeenObservation) -> Generator[Statement, Rows, list[Finding]]:
        return self.investigation(observation).run()

    def investigation(self, observation: SeenObservation) -> AuditInvestigation:
        """A train episode (its objective says so) never holds a held-out mechanism: their finders stay unread. A
        brief that states a repaired_value rule asks a defect's repaired value: the expert reads them then."""
        held_out = set(AUDIT_HELD_OUT_KINDS) | set(AUDIT_HELD_OUT_DEFECTS)
        train = SPLIT_NOTE["train"] in observation.text
        finders = tuple(f for f in self.finders if not (train and f.name in held_out))
        return AuditInvestigation(
            self.rules,
            CONCURRENCY,
            narrowed_releases=True,
            payments_rest=True,
            platform_break_z=PLATFORM_BREAK_Z,
            siblings=True,
            finders=finders,
            repairs="repaired_value" in observation.text,
        )


register_agent(AuditExpertAgent.name, AuditExpertAgent)
