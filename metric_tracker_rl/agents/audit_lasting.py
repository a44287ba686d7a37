"""How the audit expert reads changes that last dates (a lasting finder's run, a level shift's run) and names what
it reads: which of a run's dates stand (faint edges, lone dates, dates a defect covers part of), which user type a
run or a date is (the narrowing rule, over a run's dates at once), and which finding holds a block of hours inside a
run. The audit expert's investigation (audit_expert.AuditInvestigation) is one of these."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, replace

from metric_tracker_rl.agents.audit_coinciding import its_way, observed
from metric_tracker_rl.agents.audit_finders import Finder
from metric_tracker_rl.agents.audit_second_incident import SecondIncidents, nests
from metric_tracker_rl.agents.warehouse_findings import Finding, Rows, Statement, in_parts, number_or_nan, overlaps
from metric_tracker_rl.agents.warehouse_sql import NO_FIXES, metric_values_sql
from metric_tracker_rl.world.audit_brief import departs, relative_move
from metric_tracker_rl.world.segments import Segment

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


def moved_alone(one: float, other: float) -> bool:
    """The narrowing rule on two user types' relative moves: `one` moved (no NaN, no zero) and `other` moved less
    than OTHER_SHARE of it the same way."""
    return abs(one) > 0 and not math.copysign(1, one) * other >= OTHER_SHARE * abs(one)


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
        return replace(segment, user_type=user_type) if moved_alone(one, other) else segment
    return replace(segment, user_type=None) if a != 0 and not moved_alone(a, b) else segment


def place(finding: Finding) -> tuple[str, str, Segment]:
    """A finding's date, metric and segment."""
    return finding.date, finding.metric, finding.segment


def other_user_type(user_type: str | None) -> str:
    """The user type beside `user_type` (one of USER_TYPES)."""
    return next(u for u in USER_TYPES if u != user_type)


@dataclass
class LastingRuns(SecondIncidents):
    """The audit expert's reading of runs of dates and of the user type a change is (the module docstring)."""

    finders: tuple[Finder, ...] = ()

    def lasting_kinds(self) -> set[str]:
        """The names of the finders whose change lasts dates (Finder.lasting)."""
        return {finder.name for finder in self.finders if finder.lasting}

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

    def without_faint_edges(self, incidents: list[Finding]) -> list[Finding]:
        """A lasting finder's change is on or off, so each of its dates moves alike: a date at either end of its
        run of three or more that moves less than EDGE_SHARE of the run's median move is a noisy date the run's
        test took in with the change."""
        lasting = self.lasting_kinds()
        faint = set()
        for run in self.runs_of([f for f in incidents if f.kind in lasting]):
            typical = statistics.median(relative_move(f.observed, f.baseline) for f in run)
            for edge in (run[0], run[-1]) if len(run) >= 3 else ():
                if relative_move(edge.observed, edge.baseline) < EDGE_SHARE * typical:
                    faint.add(place(edge))
        return [f for f in incidents if place(f) not in faint]

    def without_lone_dates(self, incidents: list[Finding]) -> list[Finding]:
        """A lasting finder's finding (Finder.lasting) stays where a date beside it holds a finding of its metric
        and segment too: its change departs on each of its dates, and a run's test passes a noisy date with a
        changed neighbour's help, or a noisy pair whose one date departs alone."""
        return [f for f in incidents if not self.alone_in_its_run(f, incidents)]

    def narrowed_to_a_user_type(self, candidates: list[Finding]) -> Generator[Statement, Rows, list[Finding]]:
        """Where one finding names a wider segment and another, on its date and metric, the same segment's users of
        one user type: both user types' values there, read as an incident's. Where the other user type moved less
        than OTHER_SHARE of the one's move (its relative move the same way, pooled over the narrower findings' run of
        dates: pair_runs), the move is the one user type's (the wider segment's is its move diluted) and the
        narrower finding takes the wider one's place; where both moved alike, every user did and the wider one
        stands. A level shift's run is named by the same rule over all its dates at once (by_user_type), in the same
        statement, where no other finder's candidate shares a date and metric with it (that one's segment is read by
        its own rule)."""
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
        ones_read, others_read = read[: len(pairs)], read[len(pairs) : 2 * len(pairs)]
        for together in self.pair_runs([candidates[j] for _, j in pairs]):
            one, other = pooled_move([ones_read[k] for k in together]), pooled_move([others_read[k] for k in together])
            if moved_alone(one, other):
                for k in together:
                    i, j = pairs[k]
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

    def pair_runs(self, narrow: list[Finding]) -> list[list[int]]:
        """The narrower findings of the narrowing rule's pairs, by run (runs_of): the indices of those of one metric
        and segment on consecutive dates together, each run and its indices in order of date (a change that lasts
        dates moves each alike, so the rule reads their pooled moves, as by_user_type does a level shift's)."""
        by_date = sorted(range(len(narrow)), key=lambda k: (narrow[k].date, k))
        runs = [{place(f) for f in run} for run in self.runs_of(list({place(f): f for f in narrow}.values()))]
        return sorted(
            ([k for k in by_date if place(narrow[k]) in run] for run in runs), key=lambda ks: by_date.index(ks[0])
        )

    def alone_in_its_run(self, finding: Finding, candidates: list[Finding]) -> bool:
        """Whether a lasting finder's candidate has no candidate of its metric and segment on a date beside it: the
        report leaves it out (without_lone_dates), so it takes no wider finding's place."""
        lasting = self.lasting_kinds()
        return finding.kind in lasting and not any(
            (g.metric, g.segment) == (finding.metric, finding.segment)
            and abs(self.day(g.date) - self.day(finding.date)) == 1
            for g in candidates
        )

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
        lasting = self.lasting_kinds()
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
