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
import statistics
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field, replace
from functools import partial

from metric_tracker_rl.agents.audit_coinciding import (
    DEFECT_METRICS,
    REPAIRED,
    arms_over_versions,
    bridged,
    comes_before,
    its_way,
    left_out,
    met_by,
    observed,
    users_move,
)
from metric_tracker_rl.agents.audit_finders import Finder, batched_sql
from metric_tracker_rl.agents.audit_incident_scans import FINDERS as INCIDENT_FINDERS
from metric_tracker_rl.agents.audit_repairs import valued_and_repaired
from metric_tracker_rl.agents.audit_second_incident import CONCURRENCY, SecondIncidents, nests
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


EDGE_SHARE = 0.5  # a lasting change's date at its run's end moves by this share of the run's median move at least
USER_TYPES = ("new", "returning")  # the events' two user types: one's sibling is the other
OTHER_SHARE = 0.5  # a move is one user type's where the other's moved less than this share of it (the same way)


def stands(finding: Finding) -> bool:
    """Whether an incident row's values depart from its baseline past the margin, the way its family says (a
    candidate whose values are read and do not is no finding, and leaves its date and metric to the next)."""
    return departs(finding.observed, finding.baseline) and its_way(finding)


def user_type_readings(run: Sequence[Finding]) -> tuple[list[Finding], list[Finding]]:
    """The values a level shift's run is named by (by_user_type): its segment's two user types' on each of its
    dates where it names none; else its own and the other user type's."""

    def read_as(f: Finding, user_type: str | None) -> Finding:
        return replace(f, segment=replace(f.segment, user_type=user_type), observed=math.nan, baseline=math.nan)

    own = run[0].segment.user_type
    if own is None:
        return [read_as(f, USER_TYPES[0]) for f in run], [read_as(f, USER_TYPES[1]) for f in run]
    return [read_as(f, own) for f in run], [read_as(f, other_user_type(own)) for f in run]


def pooled_move(read: Sequence[Finding]) -> float:
    """A run's relative move over all its dates: the sum of their departures over the sum of their baselines."""
    valued = [f for f in read if math.isfinite(f.observed) and math.isfinite(f.baseline)]
    total = sum(f.baseline for f in valued)
    return sum(f.observed - f.baseline for f in valued) / total if total else math.nan


def by_user_type(segment: Segment, first: Sequence[Finding], second: Sequence[Finding]) -> Segment:
    """A level shift's segment by the narrowing rule over its run's dates at once (a change that lasts dates moves
    each alike, so their pooled move is far less noisy than a date's): a segment naming no user type is narrowed
    to the one that moved where the other moved less than OTHER_SHARE of it the same way; one naming a user type is
    widened to both where the other moved OTHER_SHARE of it at least."""
    a, b = pooled_move(first), pooled_move(second)
    if not (math.isfinite(a) and math.isfinite(b)):
        return segment
    if segment.user_type is None:
        one, other, user_type = (a, b, USER_TYPES[0]) if abs(a) >= abs(b) else (b, a, USER_TYPES[1])
        alike = math.copysign(1, one) * other >= OTHER_SHARE * abs(one)
        return segment if alike or one == 0 else replace(segment, user_type=user_type)
    alike = a != 0 and math.copysign(1, a) * b >= OTHER_SHARE * abs(a)
    return replace(segment, user_type=None) if alike else segment


def place(finding: Finding) -> tuple[str, str, Segment]:
    """A finding's date, metric and segment."""
    return finding.date, finding.metric, finding.segment


def other_user_type(user_type: str | None) -> str:
    """The user type beside `user_type` (one of USER_TYPES)."""
    return next(u for u in USER_TYPES if u != user_type)


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
class AuditInvestigation(SecondIncidents):
    """The warehouse's procedure, then the finders, then the audit's rules (the module docstring)."""

    finders: tuple[Finder, ...] = ()
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
        beside = yield from self.beside_defects([f for f in ordered if met_by(f, defects)], defects)
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
        runs = {finder.name for finder in self.finders if finder.lasting}
        two_sided = bridged(candidates, unechoed, runs, self.day)
        candidates = bridged(candidates, unechoed, runs, self.day, partly=self.partly(defects))
        leaning = {place(f) for f in candidates} - {place(f) for f in two_sided}
        candidates = yield from self.narrowed_to_a_user_type(candidates)
        incidents = dedupe(f for f in candidates if math.isnan(f.observed) or stands(f))
        incidents = yield from self.with_second_incident(incidents, defects)
        defects = yield from self.defect_rows(dedupe(defects))
        incidents = yield from self.values_of_new(incidents)
        kept = self.without_lone_dates(self.without_faint_edges([f for f in incidents if stands(f)]))
        return dedupe([*defects, *self.supported(kept, leaning)])

    def supported(self, incidents: list[Finding], leaning: set[tuple[str, str, Segment]]) -> list[Finding]:
        """The incidents, less each `leaning` one (a date of a lasting change that a defect covers part of, kept
        for a date of its run beside it: bridged's `partly`) that no date of its run outside `leaning` still
        supports by moving EDGE_SHARE of its own move at least: an on-or-off change moves its dates alike, and a
        date that moved far more than the dates that stand is the defect's."""
        dropped = set()
        for run in self.runs_of(incidents):
            standing = [relative_move(g.observed, g.baseline) for g in run if place(g) not in leaning]
            for f in run:
                own = relative_move(f.observed, f.baseline)
                if place(f) in leaning and not any(move >= EDGE_SHARE * own for move in standing):
                    dropped.add(place(f))
        return [f for f in incidents if place(f) not in dropped]

    def partly(self, defects: list[Finding]) -> Callable[[Finding], bool]:
        """Whether every defect on a finding's date that overlaps its segment covers only part of it (names a
        field the finding's segment leaves open, or another value): the finding's sessions outside it moved too."""

        def covers_part(finding: Finding) -> bool:
            return not any(d.date == finding.date and nests(finding.segment, d.segment) for d in defects)

        return covers_part

    def defect_rows(self, defects: list[Finding]) -> Generator[Statement, Rows, list[Finding]]:
        """The defects' dashboard values, and their repaired values where the brief asks them (`repairs`); else
        none, so a report where none is asked reads as it did before the rule."""
        if self.repairs:
            return (yield from valued_and_repaired(self.rules, self.fixes, defects, dashboard_values_sql))
        valued = yield from self.dashboard_values(defects)
        return [replace(f, repaired=math.nan) for f in valued]

    def without_faint_edges(self, incidents: list[Finding]) -> list[Finding]:
        """A lasting finder's change is on or off, so each of its dates moves alike: a date at either end of its
        run of three or more that moves less than EDGE_SHARE of the run's median move is a noisy date the run's
        test took in with the change."""
        lasting = {finder.name for finder in self.finders if finder.lasting}
        faint = set()
        for run in self.runs_of([f for f in incidents if f.kind in lasting]):
            typical = statistics.median(relative_move(f.observed, f.baseline) for f in run)
            for edge in (run[0], run[-1]) if len(run) >= 3 else ():
                if relative_move(edge.observed, edge.baseline) < EDGE_SHARE * typical:
                    faint.add((edge.date, edge.metric, edge.segment))
        return [f for f in incidents if (f.date, f.metric, f.segment) not in faint]

    def without_lone_dates(self, incidents: list[Finding]) -> list[Finding]:
        """A lasting finder's finding (Finder.lasting) stays where a date beside it holds a finding of its metric
        and segment too: its change departs on each of its dates, and a run's test passes a noisy date with a
        changed neighbour's help, or a noisy pair whose one date departs alone."""
        lasting = {finder.name for finder in self.finders if finder.lasting}
        return [
            f
            for f in incidents
            if f.kind not in lasting
            or any(
                (g.metric, g.segment) == (f.metric, f.segment) and abs(self.day(g.date) - self.day(f.date)) == 1
                for g in incidents
            )
        ]

    def narrowed_to_a_user_type(self, candidates: list[Finding]) -> Generator[Statement, Rows, list[Finding]]:
        """Where one finding names a wider segment and another, on its date and metric, the same segment's users of
        one user type: both user types' values there, read as an incident's. Where the other user type moved less
        than OTHER_SHARE of the one's move (its relative move the same way), the move is the one user type's (the
        wider segment's is its move diluted) and the narrower finding takes the wider one's place; where both
        moved alike, every user did and the wider one stands. A level shift's run is named by the same rule over
        all its dates at once (by_user_type), in the same statement, where no other finder's candidate shares a date
        and metric with it (that one's segment is read by its own rule)."""
        pairs = [
            (i, j)
            for i, wide in enumerate(candidates)
            for j, narrow in enumerate(candidates)
            if (wide.date, wide.metric) == (narrow.date, narrow.metric)
            and wide.segment.user_type is None
            and narrow.segment.user_type in USER_TYPES
            and replace(narrow.segment, user_type=None).normalised() == wide.segment.normalised()
            and not self.alone_in_its_run(narrow, candidates)
        ]
        paired = {place(candidates[k]) for pair in pairs for k in pair}
        shifts = [
            run
            for run in self.runs_of([f for f in candidates if f.kind == "level_shift"])
            if not paired & {place(f) for f in run}
            and not any(g.kind != f.kind and (g.date, g.metric) == (f.date, f.metric) for f in run for g in candidates)
        ]
        if not pairs and not shifts:
            return candidates
        ones = [replace(candidates[j], observed=math.nan, baseline=math.nan) for _, j in pairs]
        others = [replace(f, segment=replace(f.segment, user_type=other_user_type(f.segment.user_type))) for f in ones]
        types = [user_type_readings(run) for run in shifts]
        read = yield from self.values_of_new(
            [*ones, *others, *(f for first, second in types for f in (*first, *second))]
        )
        narrowed = list(candidates)
        for (i, j), one, other in zip(pairs, read[: len(pairs)], read[len(pairs) : 2 * len(pairs)], strict=True):
            move = (one.observed - one.baseline) / one.baseline if one.baseline else math.nan
            beside = (other.observed - other.baseline) / other.baseline if other.baseline else math.nan
            if abs(move) > 0 and not math.copysign(1, move) * beside >= OTHER_SHARE * abs(move):
                narrowed[i] = candidates[j] if narrowed[i] is candidates[i] else narrowed[i]
        at = 2 * len(pairs)
        named: dict[tuple[str, str, Segment], Segment] = {}
        for run, (first, _) in zip(shifts, types, strict=True):
            width = len(first)
            segment = by_user_type(run[0].segment, read[at : at + width], read[at + width : at + 2 * width])
            at += 2 * width
            named |= {place(f): segment for f in run if segment != f.segment}
        return [
            replace(f, segment=named[place(f)], observed=math.nan, baseline=math.nan)
            if f.kind == "level_shift" and place(f) in named
            else f
            for f in narrowed
        ]

    def alone_in_its_run(self, finding: Finding, candidates: list[Finding]) -> bool:
        """Whether a lasting finder's candidate has no candidate of its metric and segment on a date beside it: the
        report leaves it out (without_lone_dates), so it takes no wider finding's place."""
        lasting = {finder.name for finder in self.finders if finder.lasting}
        return finding.kind in lasting and not any(
            (g.metric, g.segment) == (finding.metric, finding.segment)
            and abs(self.day(g.date) - self.day(finding.date)) == 1
            for g in candidates
        )

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
    ) -> Generator[Statement, Rows, set[tuple[str, str, Segment]]]:
        """Of the incidents' candidates on a defect's date in a segment it overlaps, those that are users' beside
        each such defect: where the candidate's metric comes before the defect's in DEFECT_METRICS (a defect's row
        is on the first metric it moves past the margin, so it moved none before it that far); else where the
        metric departs from its same-weekday median the same way, by more than the margin and BESIDE_Z standard
        errors, with the defect undone (one the warehouse's procedure repairs) or in the sessions it leaves alone
        (the candidate's segment less the defect's, left_out; a candidate the defect covers whole has none): a
        defect moves only what it records."""
        pairs = [
            (f, d)
            for f in met
            for d in defects
            if d.date == f.date and overlaps(d.segment, f.segment) and not comes_before(f, d)
        ]
        moved: dict[tuple[str, str, Segment], bool] = {(f.date, f.metric, f.segment): True for f in met}
        repaired = [(f, d) for f, d in pairs if d.kind in REPAIRED]
        beside = [(f, d) for f, d in pairs if d.kind not in REPAIRED]
        for group, excluding in ((repaired, False), (beside, True)):
            if not group:
                continue
            fixes = NO_FIXES if excluding else self.fixes
            asked = [
                (i, f.date, *f.segment.values(), f.step, *(left_out(f, d.segment) if excluding else ()))
                for i, (f, d) in enumerate(group)
            ]
            rows = yield from in_parts(
                "beside defects" if excluding else "defects undone",
                asked,
                partial(metric_values_sql, self.rules, fixes, excluding=excluding, with_entered=True),
            )
            values = {row["i"]: row for row in rows}
            for i, (f, _) in enumerate(group):
                key = (f.date, f.metric, f.segment)
                moved[key] = moved[key] and users_move(f, values.get(i, {}))
        return {key for key, kept in moved.items() if kept}

    def level_shifts(self, runs: Rows, found: list[Finding], defects: list[Finding]) -> list[Finding]:
        """The warehouse's runs, but a run on a defect's dates stays a candidate here: whether it is the defect's
        or users' is read in the sessions the defect leaves alone (beside_defects)."""
        return super().level_shifts(runs, found, [])

    def by_precedence(self, found: list[Finding], flagged: list[Finding]) -> list[Finding]:
        """The incidents, the likelier first where two name one date and metric (dedupe keeps the first): a block
        of hours that stopped converting is what a scan of whole days reads as a fall; then the warehouse's
        procedure's; then the other finders'. A block inside a run of whole-day falls is the run's (inside_run), and
        so is an outage's (outage_in_run)."""
        incidents = [f for f in found if f.anomaly_type != DATA_QUALITY and not self.outage_in_run(f, flagged)]
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

    def within_shift(self, block: Finding, shifts: list[Finding]) -> bool:
        """Whether a block of hours lies on a date of a level shift's run of its step in a segment that overlaps its
        own, the run holding a date beside it that stands on its own values too: a fall of whole days of many users
        leaves some hours of each part of them far below their usual, and the run's own row on the date is the
        finding (a run whose neighbouring date does not stand took that date's noise in with the block's fall)."""
        if block.date not in self.dates:
            return False
        day = self.day(block.date)
        runs: dict[Segment, set[int]] = {}
        standing: dict[Segment, set[int]] = {}
        for f in shifts:
            if f.metric == block.metric and overlaps(f.segment, block.segment) and f.segment != block.segment:
                runs.setdefault(f.segment, set()).add(self.day(f.date))
                if stands(f):
                    standing.setdefault(f.segment, set()).add(self.day(f.date))
        return any(day in days and {day - 1, day + 1} & standing.get(segment, set()) for segment, days in runs.items())

    def outage_in_run(self, finding: Finding, flagged: list[Finding]) -> bool:
        """Whether an outage (the warehouse's block of hours whose sessions collapsed) lies on a date of a lasting
        finder's run of fallen sessions in a segment overlapping its own but not within it, the run holding a date
        beside it too: a change that lasts dates takes some hours more than others, and an outage lasts hours of one
        date (one within the outage's segment is the outage's echo)."""
        if finding.kind != "segment_outage":
            return False
        lasting = {finder.name for finder in self.finders if finder.lasting}
        near = {
            self.day(f.date)
            for f in flagged
            if f.kind in lasting
            and f.metric == finding.metric
            and overlaps(f.segment, finding.segment)
            and not nests(f.segment, finding.segment)
        }
        day = self.day(finding.date)
        return day in near and bool({day - 1, day + 1} & near)

    def inside_run(self, block: Finding, days: list[Finding]) -> Finding | None:
        """A block of hours inside a run of whole-day falls of its step and segment (the run holds the dates on
        either side of the block's, or its date and one beside it) is that fall's date read in hours: a fall of
        several dates does not pause for one, and a run's few converting hours look like a block. The fall's
        finding on the date; else None."""
        if block.date not in self.dates:
            return None
        index = self.dates.index(block.date)
        run = {
            self.day(f.date): f
            for f in days
            if f.metric == block.metric and f.segment == block.segment and f.date in self.dates
        }
        if not ({index - 1, index + 1} <= run.keys() or index in run and {index - 1, index + 1} & run.keys()):
            return None
        return replace(run.get(index) or run[index - 1], date=block.date)

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

    def values_of_new(self, found: list[Finding]) -> Generator[Statement, Rows, list[Finding]]:
        """The incident rows' values: those the warehouse's procedure read keep theirs; the finders' are read as
        it reads them (the metrics layer's value and the same weekday's median)."""
        unread = [f for f in found if math.isnan(f.observed)]
        if not unread:
            return found
        asked = [(i, f.date, *f.segment.values(), f.step) for i, f in enumerate(unread)]
        rows = yield from in_parts("incident values", asked, lambda part: metric_values_sql(self.rules, NO_FIXES, part))
        values = {row["i"]: row for row in rows}
        read = [
            replace(f, observed=observed(f, values.get(i, {})), baseline=number_or_nan(values.get(i, {}).get("peers")))
            for i, f in enumerate(unread)
        ]
        return [f for f in found if not math.isnan(f.observed)] + read


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
