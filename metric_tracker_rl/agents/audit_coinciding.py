"""Findings that coincide: whether an incident's candidate on a defect's date, in a segment the defect's overlaps,
is users' or the defect's echo, by what the data show with the defect set aside (its metric's place in the order a
defect's row is named by, the defect undone, or the sessions it leaves alone); whether a release's fall is its
version's or an experiment's arm's that holds it; whether a row moved the way its family says; and a lasting
change's dates a defect sits on, between dates of it that stand."""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import Any

from metric_tracker_rl.agents.warehouse_findings import (
    FUNNEL_BREAK,
    REVENUE,
    Finding,
    Rows,
    Statement,
    fits,
    in_parts,
    number_or_nan,
    overlaps,
)
from metric_tracker_rl.world.audit_brief import departs
from metric_tracker_rl.world.metrics_layer import RATE_COLUMNS
from metric_tracker_rl.world.segments import Segment

# The metrics a defect's row may name, in the order a tie goes (the brief's, with sessions for app_opens).
DEFECT_METRICS = ("sessions", *RATE_COLUMNS, REVENUE)
BESIDE_Z = 3.0  # a move in the sessions a defect leaves alone, in standard errors, that no day's noise makes
# The defects the warehouse's procedure undoes when it reads the metrics again (warehouse_sql.Fixes).
REPAIRED = frozenset(
    {
        "clock_skew",
        "late_load",
        "retry_duplicates",
        "tracking_stopped",
        "transaction_retries",
        "currency_mislabel",
        "bot_farm",
    }
)


def met_by(finding: Finding, defects: Sequence[Finding]) -> bool:
    """Whether a defect on the finding's date covers a segment that overlaps its own."""
    return any(d.date == finding.date and overlaps(d.segment, finding.segment) for d in defects)


def move_z(finding: Finding, value: float, peers: float, entered: float) -> float:
    """How far a date's value stands from its usual one in standard errors of sampling: a count's (Poisson) or a
    rate's over the sessions it is over (binomial); 0 where either has no value."""
    if not all(math.isfinite(x) for x in (value, peers)) or peers <= 0 or (finding.step and not entered > 0):
        return 0.0
    # a rate's variance, floored where its usual value sits at 0 or 1: a few sessions cannot show it is exact
    spread = math.sqrt(peers) if finding.step == 0 else math.sqrt(max(peers * (1 - peers), 1 / (entered + 1)) / entered)
    return (value - peers) / spread


def left_out(finding: Finding, defect: Segment) -> tuple[str | None, str | None, str | None]:
    """The dashboard fields of the sessions a defect's segment covers, as a check beside it leaves them out: a
    version's whole platform where the finding is a count (a version's share of its platform's sessions follows its
    rollout from date to date, so the rest of the platform is no steady reference), else the defect's own."""
    version = None if finding.step == 0 else defect.app_version
    return defect.platform, defect.country, version


def users_move(finding: Finding, row: Mapping[str, object]) -> bool:
    """Whether a row of values (value, peers and the sessions a rate is over, `entered`) moves as the finding
    says: past the margin, its way, by BESIDE_Z standard errors at least."""
    value, peers = observed(finding, row), number_or_nan(row.get("peers"))
    entered = number_or_nan(row.get("entered"))
    return (
        departs(value, peers)
        and (value < peers) == falls(finding)
        and abs(move_z(finding, value, peers, entered)) >= BESIDE_Z
    )


def comes_before(finding: Finding, defect: Finding) -> bool:
    """Whether the finding's metric comes before the defect's row's in DEFECT_METRICS (sessions, the rates down the
    funnel, the revenue)."""
    return DEFECT_METRICS.index(finding.metric) < DEFECT_METRICS.index(defect.metric)


def falls(finding: Finding) -> bool:
    """Whether the finding's family is a fall (a drop, or a step that stopped converting)."""
    return "drop" in finding.anomaly_type or finding.anomaly_type == FUNNEL_BREAK


def observed(finding: Finding, row: Mapping[str, object]) -> float:
    """A row's value on its date: a count on a date its segment holds no session (the statement groups none) is
    zero, where its same weekday's other dates hold some; a rate there has no value."""
    value = number_or_nan(row.get("value"))
    if math.isnan(value) and finding.step == 0 and not math.isnan(number_or_nan(row.get("peers"))):
        return 0.0
    return value


def arms_over_versions(found: list[Finding]) -> list[Finding]:
    """Without a release whose version's fall an experiment's arm holding it shows on the same step and a date of
    the release's, standing out further: a version's own fall shows in its arm diluted by the arm's other users,
    so there the arm stands out less; an arm's fall shows in the version with the version's fewer users, so there
    the version does."""
    arms = [f for f in found if f.kind == "experiment_breakage"]
    released: dict[tuple[str, Segment], set[str]] = {}
    for f in found:
        if f.kind == "release_regression":
            released.setdefault((f.metric, f.segment), set()).add(f.date)
    return [
        f
        for f in found
        if f.kind != "release_regression"
        or not any(
            a.metric == f.metric
            and a.z < f.z
            and overlaps(a.segment, f.segment)
            and a.date in released[(f.metric, f.segment)]
            for a in arms
        )
    ]


def its_way(finding: Finding) -> bool:
    """Whether an incident row moved the way its family says: a drop or a break fell, a spike rose (a date the
    procedure holds by its run, or a release by its first dates, may have moved the other way)."""
    if falls(finding):
        return finding.observed < finding.baseline
    return "spike" not in finding.anomaly_type or finding.observed > finding.baseline


def bridged(
    kept: Sequence[Finding],
    every: Sequence[Finding],
    lasting: set[str],
    day: Callable[[str], int],
    partly: Callable[[Finding], bool] = lambda f: False,
) -> list[Finding]:
    """`every`'s findings that are kept, or of a lasting finder's run of consecutive dates (one finder, metric and
    segment) with a kept date of it before and after: a change that stands on both sides of a defect's dates holds
    through them, though the defect leaves no sessions beside it to read it in. A date that `partly` holds (the
    defects on it cover part of the finding's segment) needs a kept date on one side only: the run passed its
    finder's test with those dates in it, and no defect there moves the whole segment. In `every`'s order."""
    kept_set = set(kept)
    runs: dict[tuple[str, str, Segment], set[int]] = {}
    for f in every:
        if f.kind in lasting:
            runs.setdefault((f.kind, f.metric, f.segment), set()).add(day(f.date))
    standing = {(f.kind, f.metric, f.segment, day(f.date)) for f in kept}

    def between(f: Finding) -> bool:
        days, at = runs[(f.kind, f.metric, f.segment)], day(f.date)
        block = {at}
        for step in (-1, 1):
            d = at + step
            while d in days:
                block.add(d)
                d += step
        stands = {d for d in block if (f.kind, f.metric, f.segment, d) in standing}
        before, after = any(d < at for d in stands), any(d > at for d in stands)
        return (before and after) or ((before or after) and partly(f))

    return [f for f in every if f in kept_set or (f.kind in lasting and between(f))]


Asked = Sequence[tuple[Any, ...]]


def read_together(
    asked: Mapping[bool, Asked], builds: Mapping[bool, Callable[[Asked], str]]
) -> Generator[Statement, Rows, dict[bool, Rows]]:
    """The rows of the check beside defects, by whether it reads the sessions a defect leaves alone (True) or the
    metrics with the defects undone (False): both in one statement where the query tool's length allows (each row
    tagged with its part), else each in as few as it takes (in_parts)."""
    parts = {excluding: builds[excluding](rows) for excluding, rows in asked.items()}
    union = " UNION ALL BY NAME ".join(
        f"SELECT {int(excluding)} part, * FROM ({sql})" for excluding, sql in parts.items()
    )
    if len(parts) > 1 and fits(union):
        rows = yield ("beside defects", union)
        return {excluding: [row for row in rows if bool(row["part"]) == excluding] for excluding in parts}
    read: dict[bool, Rows] = {}
    for excluding, wanted in asked.items():
        name = "beside defects" if excluding else "defects undone"
        read[excluding] = yield from in_parts(name, wanted, builds[excluding])
    return read
