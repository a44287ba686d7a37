"""The audit's second incident of a date: a level shift of one date in a cuboid that keeps one of an incident's values
on that date (its host) and may name up to two fields more. A scan finds its date and step by its strongest
reading; the cuboid is then the one of every nested reading of that fall (its parents and children that keep a
host's value) that explains the date's conversions best: a parent dilutes the fall with users who did not fall, a
child leaves out users who did, so the likelihood of the fall is highest on its own cuboid."""

from __future__ import annotations

import math
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, replace

from metric_tracker_rl.agents.audit_incident_scans import cuboid_falls_sql, host_falls_sql
from metric_tracker_rl.agents.warehouse_expert import PAYMENT_STEP, Investigation
from metric_tracker_rl.agents.warehouse_findings import (
    RATE_DROP,
    Finding,
    Rows,
    Statement,
    kept_by,
    number_or_nan,
    overlaps,
    segment_of,
)
from metric_tracker_rl.world.metrics_layer import RATE_COLUMNS
from metric_tracker_rl.world.segments import Segment

CONCURRENCY = 1  # the tier's dates with a second incident: the expert knows it, no brief says it
SECOND_FALL, SECOND_Z = 0.2, 3.3  # a second incident's fall: its share of the expected, and its z at least
# A date beside it falling this far (its z) makes a fall a lasting change's. Below SECOND_Z a date's strongest fall
# on an incident's date is more often a thin cuboid's noise than the second incident, and a wrong one costs a
# false row beside the missed one.
LASTING_Z = 2.6
NARROWER = 1.0  # a child's rest is read as not fallen where that is this much likelier (log-likelihood) at least
Counts = tuple[float, float, float]  # a cuboid's conversions n, arrivals d and expected conversions e on a date


def fall_likelihood(n: float, d: float, e: float) -> float:
    """How much likelier `n` conversions of `d` arrivals are at their own rate than at the usual one (`e` expected):
    the binomial log-likelihood ratio, 0 where it cannot be read."""
    if not (0 < e < d and 0 <= n <= d):
        return 0.0
    own = n * math.log(n / e) if n > 0 else 0.0
    rest = (d - n) * math.log((d - n) / (d - e)) if d > n else 0.0
    return own + rest


def one_date(row: Mapping[str, object]) -> bool:
    """Whether a host scan's fall is a second incident's: beyond SECOND_Z on its date, and not beyond LASTING_Z on a
    date beside it (a fall that lasts dates is another change's)."""
    beside = number_or_nan(row.get("beside"))
    return number_or_nan(row["z"]) <= -SECOND_Z and not beside <= -LASTING_Z


def nests(inner: Segment, outer: Segment) -> bool:
    """Whether `inner` names every field `outer` does, with its value (a child of it, or itself)."""
    return outer.named().items() <= inner.named().items()


def rest_fell(child: Counts, parent: Counts) -> float:
    """How much likelier the parent's users outside the child converted at the child's share of their usual rate
    than at their usual rate (the log-likelihood's difference; below 0 where they did not fall with it)."""
    (n, d, e), (pn, pd, pe) = child, parent
    rn, rd, re = pn - n, pd - d, pe - e
    if not (e > 0 and 0 < re < rd and rn >= 0):
        return -math.inf
    fell = re * n / e
    if not 0 < fell < rd:
        return -math.inf
    return binomial_log(rn, rd, fell / rd) - binomial_log(rn, rd, re / rd)


def binomial_log(n: float, d: float, p: float) -> float:
    """The log-likelihood of `n` conversions of `d` arrivals at rate `p` (no constant)."""
    return n * math.log(p) + (d - n) * math.log(1 - p)


def nested_cuboid(segment: Segment, counts: dict[Segment, Counts]) -> Segment:
    """The cuboid widened, one field at a time, to the parent whose rest fell likeliest with it while one did; where
    none did, narrowed one field at a time to the child whose fall is likeliest of those whose fall is likelier than
    the cuboid's own (a child that fell furthest by chance explains less of the cuboid's fall) and whose rest was
    clearly likelier not to have fallen (by NARROWER)."""
    widened = step_out(segment, counts)
    if widened != segment:
        return widest(widened, counts)
    while True:
        children = [
            c
            for c in counts
            if nests(c, segment)
            and len(c.named()) == len(segment.named()) + 1
            and fall_likelihood(*counts[c]) > fall_likelihood(*counts[segment])
            and rest_fell(counts[c], counts[segment]) < -NARROWER
        ]
        if not children:
            return segment
        segment = max(children, key=lambda c: fall_likelihood(*counts[c]))


def widest(segment: Segment, counts: dict[Segment, Counts]) -> Segment:
    """The cuboid widened by step_out while that moves it."""
    while (wider := step_out(segment, counts)) != segment:
        segment = wider
    return segment


def step_out(segment: Segment, counts: dict[Segment, Counts]) -> Segment:
    """The parent (one field fewer) whose rest fell likeliest with the cuboid, where one did; else the cuboid."""
    parents = [p for p in counts if nests(segment, p) and len(p.named()) == len(segment.named()) - 1]
    gains = {p: rest_fell(counts[segment], counts[p]) for p in parents}
    best = max(gains, key=lambda p: gains[p], default=None)
    return segment if best is None or gains[best] <= 0 else best


@dataclass
class SecondIncidents(Investigation):
    """The second incident's search and its cuboid (the module docstring)."""

    def with_second_incident(
        self, found: list[Finding], defects: Sequence[Finding] = ()
    ) -> Generator[Statement, Rows, list[Finding]]:
        """The incidents with the tier's second incident: the one the scans found (its cuboid read again), else the
        strongest fall of a step the date's incidents and experiments leave alone on an incident's date, in a
        cuboid that keeps one of an incident's values and agrees with it on every field both name, on a step no
        defect of that date overlapping it moves (its metric's, or the next after sessions): a defect's fall there
        is its echo."""
        known = self.second_known(found)
        if known is not None:
            rest = [f for f in found if f is not known]
            return [*rest, (yield from self.own_cuboid(known, rest))]
        free = {f.date: [k for k in range(1, PAYMENT_STEP + 1) if k not in self.taken(f.date, found)] for f in found}
        if not any(free.values()):
            return found
        rows = yield ("second incidents", host_falls_sql(free, SECOND_FALL))
        for row in rows:  # strongest first
            segment, date, step = segment_of(row), str(row["date"]), int(row["k"])
            if (
                one_date(row)
                and any(f.date == date and kept_by(segment, f.segment) for f in found)
                and not any(
                    d.date == date and overlaps(d.segment, segment) and step in (d.step, d.step + 1) for d in defects
                )
            ):
                anchor = Finding(date, RATE_COLUMNS[step - 1], RATE_DROP, segment, kind="level_shift")
                return [*found, (yield from self.own_cuboid(anchor, found))]
        return found

    def own_cuboid(self, anchor: Finding, found: list[Finding]) -> Generator[Statement, Rows, Finding]:
        """The second incident on its cuboid: from the anchor's (the scans'), of the cuboids that keep one of a
        host's values (an incident of its date), widened to a parent while the rest of one fell with it, else
        narrowed to a child while the rest of its own did not (nested_cuboid)."""
        hosts = [f.segment for f in found if f.date == anchor.date]
        rows = yield ("second incident's cuboid", cuboid_falls_sql(anchor.date, anchor.step, anchor.segment.named()))
        counts = {
            segment_of(row): (number_or_nan(row["n"]), number_or_nan(row["d"]), number_or_nan(row["e"])) for row in rows
        }
        kept = {s: c for s, c in counts.items() if any(kept_by(s, host) for host in hosts)}
        if anchor.segment not in kept:
            return anchor
        return replace(anchor, segment=nested_cuboid(anchor.segment, kept))

    def second_known(self, found: list[Finding]) -> Finding | None:
        """The tier's second incident where the scans already found it: a level shift of one date alone (no date
        beside it in its metric and segment) on a date another incident holds, on another step."""
        for run in self.runs_of([f for f in found if f.kind == "level_shift"]):
            if len(run) == 1 and any(g.date == run[0].date and g.metric != run[0].metric for g in found):
                return run[0]
        return None

    def runs_of(self, findings: list[Finding]) -> list[list[Finding]]:
        """The findings as runs of consecutive dates of one metric and segment."""
        runs: list[list[Finding]] = []
        for f in sorted(findings, key=lambda f: (f.metric, str(f.segment.values()), f.date)):
            last = runs[-1][-1] if runs else None
            if (
                last is not None
                and (last.metric, last.segment) == (f.metric, f.segment)
                and self.day(f.date) == self.day(last.date) + 1
            ):
                runs[-1].append(f)
            else:
                runs.append([f])
        return runs
