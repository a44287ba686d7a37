"""Whether every expected row of the audit's eval tasks can be found from what a model reads. A business incident's
row must depart past the published margin from its published baseline and stand beyond its segment's day-to-day
variation (on its own, or in the run of its incident's dates); a data defect's row, which the findings rule measures
against the value without the defect (its repair, which the trace shows), must leave its trace on its date in the
tables the brief says a trace can be in. Written to lab/artifacts/audit_findability.json.

    nice -n 5 uv run python -m lab.calibration.audit_findability --workers 2
    nice -n 5 uv run python -m lab.calibration.audit_findability --version 2 --tasks 40 --out /tmp/findability-v2.json

It knows each row's mechanism, segment and date (from the truth, as the grader does) and reads the data only through
the episode's public tables and the SQL tool's engine, with statements of its own (audit_findability_sql.py): it
shares no code with the audit's expert (an import contract holds it to that).

- A row's clean dates are those no incident or defect touches in its segment (one whose segment shares cells with it).
  The usual value of a date is the median of the metric on the same weekday's clean dates within NEAR_DAYS (all of the
  window's where none is that near), and the day-to-day variation the (robust) standard deviation of each such clean
  date's own departure from its clean peers' median. An incident's row departs when its value moves past the margin
  from the published baseline (the truth's, recomputed here from the public series) and its move from the usual value
  is beyond DEPARTURE_SDS of those deviations, or its run's (the rows of its incident on consecutive dates of one
  metric and segment: the sum of their moves in deviations over the square root of their number) is: a change of
  several dates is found by its run, and which of them are rows is then the margin's test, which the data decide
  exactly.
- A trace is a feature of the date's recorded profile in the defect's segment (audit_findability_sql.py), one of
  those its mechanism moves (TRACE_FEATURES), more than TRACE_SDS (robust) standard deviations from the segment's
  clean dates (every one, or those within TRACE_NEAR_DAYS), or, where it is not, from the same feature of its
  siblings on that date (the segments differing in its most specific field). The control reads the defects'
  segments' clean dates the same way: the share of them showing a trace is the chance a row is confirmed by noise.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lab.calibration import audit_findability_sql as sql
from lab.calibration.audit_findability_traces import (
    TRACE_FEATURES,
    TRACE_SDS,
    PublicTables,
    cached,
    clean_date_traces,
    robust_sd,
    trace_on,
)
from metric_tracker_rl.catalog.task_splits import EVAL_SEEDS_PER_DIFFICULTY, task_range
from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.catalog.tiers import AUDIT
from metric_tracker_rl.generation.audit.truth import audit_rows
from metric_tracker_rl.generation.audit.world import audit_mix, build_audit_world
from metric_tracker_rl.generation.warehouse.truth import DATA_QUALITY, ExpectedRow
from metric_tracker_rl.generation.warehouse.world import WarehouseWorld
from metric_tracker_rl.world.audit_brief import relative_move
from metric_tracker_rl.world.segments import Segment, segments_meet

ARTIFACT = Path(__file__).resolve().parents[2] / "lab" / "artifacts" / "audit_findability.json"
DEPARTURE_SDS = 3.0  # a row's move from the usual value, in standard deviations of the segment's clean dates
# The version whose eval sweep the kept result checks (a run of another writes elsewhere with --out).
KEPT_VERSION = 1
NEAR_DAYS = 21  # the clean dates a row is compared with: those within three weeks (a version's traffic grows)
RATIO = {
    "sessions": ("sessions", None),
    "app_open_to_menu_open": ("menu_sessions", "sessions"),
    "menu_open_to_product_added_to_cart": ("cart_sessions", "menu_sessions"),
    "product_added_to_cart_to_order_placed": ("order_sessions", "cart_sessions"),
    "order_placed_to_payment_successful": ("payment_sessions", "order_sessions"),
    "revenue_usd": ("revenue_usd", None),
}


@dataclass
class RowCheck:
    """One expected row and what the check found of it; `why` is empty when the row is confirmed."""

    seed: int
    mechanism: str
    family: str
    date: str
    metric: str
    segment: str
    value: float
    usual: float
    move: float
    sds: float
    run_sds: float = 0.0
    trace: str = ""
    trace_sds: float = 0.0
    why: list[str] = field(default_factory=list)


def metric_series(counts: dict[str, np.ndarray], metric: str) -> np.ndarray:
    """The metric over the window from a segment's daily counts: a count is 0 on a date with no session counted,
    a rate has no value over no session."""
    numerator, denominator = RATIO[metric]
    top = np.nan_to_num(counts[numerator], nan=0.0)
    if denominator is None:
        return top
    bottom = np.nan_to_num(counts[denominator], nan=0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(bottom > 0, top / np.where(bottom > 0, bottom, 1.0), np.nan)


def clean_peer_median(series: np.ndarray, clean: np.ndarray, day: int) -> float:
    """The median of the series over the clean dates of `day`'s weekday within NEAR_DAYS of it, `day` left out, or
    over all of the window's where none is that near (a segment that other mechanisms cover on those dates)."""
    peers = [d for d in range(day % 7, len(series), 7) if d != day and clean[d] and math.isfinite(series[d])]
    near = [d for d in peers if abs(d - day) <= NEAR_DAYS]
    return float(np.median(series[near or peers])) if peers else math.nan


def departure(series: np.ndarray, clean: np.ndarray, day: int, scale: str) -> tuple[float, float, float]:
    """The usual value of `day`, the relative move of its value from it, and that move in standard deviations of
    the moves of the clean dates within NEAR_DAYS from their own peers (on a log scale for a count or the revenue,
    whose spread grows with their size)."""
    usual = clean_peer_median(series, clean, day)
    near = [d for d in np.flatnonzero(clean) if abs(d - day) <= NEAR_DAYS]
    shift = np.log1p if scale == "log" else (lambda x: x)
    own = [shift(series[d]) - shift(clean_peer_median(series, clean, int(d))) for d in near]
    spread = np.array([x for x in own if math.isfinite(x)])
    sd = robust_sd(spread) if len(spread) > 2 else math.nan
    gap = abs(shift(series[day]) - shift(usual))
    sds = gap / sd if sd > 0 else (math.inf if gap > 0 else 0.0)
    return usual, relative_move(float(series[day]), usual), float(sds)


def clean_days(world: WarehouseWorld, segment: Segment) -> np.ndarray:
    """The dates no incident or defect of the world touches in `segment` (one whose segment shares cells with it)."""
    clean = np.ones(world.log.num_days, dtype=bool)
    for incident in world.incidents:
        if segments_meet(incident.segment, segment):
            clean[incident.record.day] = False
    for defect in world.defects:
        if segments_meet(defect.segment, segment):
            for day in defect.days:
                if 0 <= day < len(clean):
                    clean[day] = False
    return clean


def published_baseline(series: np.ndarray, day: int) -> float:
    """The baseline rule's value of `day`: the median of the metric on its weekday's other dates of the window
    that have one."""
    peers = series[[d for d in range(day % 7, len(series), 7) if d != day]]
    peers = peers[np.isfinite(peers)]
    return float(np.median(peers)) if len(peers) else math.nan


def normalised_series(row: ExpectedRow, tables: PublicTables, cache: dict[str, Any]) -> tuple[np.ndarray, str]:
    """The row's metric over the window, and the scale its spread is read on: a rate as it is; the revenue per
    counted session of the segment; a version's sessions as its share of its platform's (its traffic grows with
    its rollout); other sessions on a log scale."""
    segment = row.segment.normalised()
    counts = cached(
        tables, cache, sql.dashboard_sql(segment) if row.family == DATA_QUALITY else sql.segment_counts_sql(segment)
    )
    series = metric_series(counts, row.metric)
    if RATIO[row.metric][1] is not None:
        return series, "linear"
    if row.metric == "revenue_usd":
        sessions = np.nan_to_num(counts["sessions"], nan=0.0)
        return np.where(sessions > 0, series / np.maximum(sessions, 1.0), np.nan), "log"
    if segment.app_version is not None:
        whole = cached(tables, cache, sql.dashboard_sql(Segment(platform=segment.platform)))
        platform = np.nan_to_num(whole["sessions"], nan=0.0)
        return np.where(platform > 0, series / np.maximum(platform, 1.0), np.nan), "log"
    return series, "log"


def check_row(
    seed: int,
    row: ExpectedRow,
    tables: PublicTables,
    clean: np.ndarray,
    margin: float,
    cache: dict[str, Any],
    hours: tuple[int, int] = (0, 24),
) -> RowCheck:
    """One row's departure (its own, on the whole date or, for an incident of some `hours`, in them where it stands
    further; a run's is added by confirm_runs) and, for a defect's, its trace."""
    segment = row.segment.normalised()
    source = sql.dashboard_sql(segment) if row.family == DATA_QUALITY else sql.segment_counts_sql(segment)
    raw = metric_series(cached(tables, cache, source), row.metric)
    value = float(raw[row.day])
    series, scale = normalised_series(row, tables, cache)
    usual, move, sds = departure(series, clean, row.day, scale)
    if hours != (0, 24):  # a change of some hours is read in them, as the families' definitions say
        block = metric_series(cached(tables, cache, sql.segment_counts_sql(segment, hours)), row.metric)
        sds = max(sds, departure(block, clean, row.day, "linear" if RATIO[row.metric][1] else "log")[2])
    check = RowCheck(
        seed, row.kind, row.family, tables.dates[row.day], row.metric, segment.label(), value, usual, move, sds
    )
    if not math.isclose(value, row.observed, rel_tol=1e-6, abs_tol=1e-9):
        check.why.append(f"the public data give {value:.6g}, the truth {row.observed:.6g}")
    if row.family == DATA_QUALITY:  # measured against its repair, which its trace shows: found by the trace
        check.trace, check.trace_sds = trace_on(segment, TRACE_FEATURES[row.kind], tables, clean, cache, row.day)
        if check.trace_sds <= TRACE_SDS:
            check.why.append(f"no trace: the strongest ({check.trace}) {check.trace_sds:.1f} sd")
        return check
    baseline = published_baseline(raw, row.day)
    if not math.isclose(baseline, row.baseline, rel_tol=1e-6, abs_tol=1e-9):
        check.why.append(f"the public data give a baseline of {baseline:.6g}, the truth {row.baseline:.6g}")
    if not math.isfinite(usual):
        check.why.append("no clean date of its weekday near it has a value")
    elif (moved := relative_move(value, baseline)) <= margin:
        check.why.append(f"moves {moved:.1%} from its baseline, within the margin {margin:.0%}")
    return check


def confirm_runs(checks: list[RowCheck], days: dict[str, int]) -> None:
    """Each incident row's departure against the variation: its own beyond DEPARTURE_SDS, or, in a run of its
    mechanism's rows on consecutive dates of one metric and segment, the run's pooled departure (the sum of its
    rows' over the square root of their number) beyond it: a change of several dates is found by its run, and which
    of the run's dates are rows is then the findings rule's margin, which the data decide exactly (check_row holds
    each row to it)."""
    runs: dict[tuple[str, str, str], list[RowCheck]] = {}
    for check in sorted(checks, key=lambda c: days[c.date]):
        key = (check.mechanism, check.metric, check.segment)
        last = runs.get(key, [])
        runs[key] = last
        last.append(check)
    for run in runs.values():
        for group in _consecutive(run, days):
            pooled = sum(min(c.sds, 1e6) for c in group) / math.sqrt(len(group))
            for check in group:
                check.run_sds = pooled
                if (
                    check.family == DATA_QUALITY
                    or not math.isfinite(check.usual)
                    or check.sds > DEPARTURE_SDS
                    or (len(group) > 1 and pooled > DEPARTURE_SDS)
                ):
                    continue
                check.why.append(
                    f"moves {check.sds:.1f} sd from the usual {check.usual:.4g} (its run of {len(group)} "
                    f"{pooled:.1f} sd), within {DEPARTURE_SDS:g} sd"
                )


def _consecutive(run: list[RowCheck], days: dict[str, int]) -> list[list[RowCheck]]:
    groups: list[list[RowCheck]] = []
    for check in run:
        if groups and days[check.date] - days[groups[-1][-1].date] == 1:
            groups[-1].append(check)
        else:
            groups.append([check])
    return groups


def hours_of(world: WarehouseWorld, row: ExpectedRow) -> tuple[int, int]:
    """The block of hours an incident's row changed (the whole date for a defect's, or an incident of every hour)."""
    if row.family == DATA_QUALITY:
        return (0, 24)
    for incident in world.incidents:
        if (incident.kind, incident.record.day) == (row.kind, row.day) and incident.record.hours is not None:
            return (int(incident.record.hours[0]), int(incident.record.hours[1]))
    return (0, 24)


def check_task(task: dict[str, Any]) -> tuple[list[RowCheck], tuple[int, int]]:
    """Every expected row of one audit task, and the control over its defects' segments' clean dates."""
    config = resolve_episode_config(**task)
    world = build_audit_world(config.tier, config)  # at the task's version
    mix = audit_mix(config.tier)
    tables = PublicTables(world)
    try:
        cache: dict[str, Any] = {}
        checks = [
            check_row(config.seed, row, tables, clean_days(world, row.segment), mix.margin, cache, hours_of(world, row))
            for row in audit_rows(world, mix)
        ]
        confirm_runs(checks, {date: day for day, date in enumerate(tables.dates)})
        defects = {
            d.segment.normalised(): (TRACE_FEATURES[d.kind], clean_days(world, d.segment)) for d in world.defects
        }
        return checks, clean_date_traces(defects, tables, cache)
    finally:
        tables.close()


def eval_tasks(count: int, version: int = KEPT_VERSION) -> list[dict[str, Any]]:
    """The audit's eval split tasks at `version` (its sweep of that version), as the split lists them: the first
    `count`."""
    return [t for t in task_range("eval") if t.get("difficulty") == "audit" and t["version"] == version][:count]


def run(tasks: list[dict[str, Any]], workers: int) -> dict[str, Any]:
    checks: list[RowCheck] = []
    by_seed: dict[str, list[int]] = {}
    control = [0, 0]
    with multiprocessing.Pool(workers) as pool:
        for n, (rows, (clean_checked, clean_traced)) in enumerate(pool.imap(check_task, tasks), 1):
            checks += rows
            control[0] += clean_checked
            control[1] += clean_traced
            by_seed[str(tasks[n - 1]["seed"])] = [len(rows), sum(bool(c.why) for c in rows)]
            lost = sum(bool(c.why) for c in rows)
            print(f"{n}/{len(tasks)} seed {tasks[n - 1]['seed']}: {len(rows)} rows, {lost} unconfirmed", flush=True)
    unconfirmed = [c for c in checks if c.why]
    return {
        "tasks": {
            "first_seed": tasks[0]["seed"],
            "last_seed": tasks[-1]["seed"],
            "count": len(tasks),
            "version": tasks[0]["version"],
        },
        "departure_sds": DEPARTURE_SDS,
        "trace_sds": TRACE_SDS,
        "margin": audit_mix(AUDIT).margin,
        "rows_checked": len(checks),
        # the control: the defects' segments' clean dates read as a defect's date is, and those a trace stood on
        "clean_dates_checked": control[0],
        "clean_dates_with_trace": control[1],
        "unconfirmed_rows": len(unconfirmed),
        "rows_by_mechanism": dict(sorted(Counter(c.mechanism for c in checks).items())),
        "traces_by_feature": dict(sorted(Counter(c.trace for c in checks if c.family == DATA_QUALITY).items())),
        "least_confirmed_sds": round(min((max(c.sds, c.run_sds) for c in checks if not c.why), default=0.0), 3),
        "by_seed": by_seed,  # each task's rows and unconfirmed rows
        "unconfirmed": [rounded(asdict(c)) for c in unconfirmed],
    }


def rounded(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 4) if isinstance(v, float) and math.isfinite(v) else v for k, v in entry.items()}


LISTED_ROWS = 30  # unconfirmed rows the page lists one by one (the artifact lists every one)
REASONS = {  # why a row is unconfirmed, by the first words of its first reason
    "moves": "within the variation",
    "no clean": "no clean peer",
    "no trace": "no trace",
    "the public": "values differ",
}


def reason(why: list[str]) -> str:
    first = why[0]
    if "within the margin" in first:
        return "within the margin"
    return next(text for start, text in REASONS.items() if first.startswith(start))


def table(report: dict[str, Any]) -> str:
    """The check's figures, per mechanism its rows and unconfirmed rows by reason, and each unconfirmed row with
    why where they are few, for lab/docs/audit.md."""
    tasks = report["tasks"]
    reasons = ["within the margin", *REASONS.values()]
    lines = [
        f"Rows checked: {report['rows_checked']} (every expected row of the eval split's {tasks['count']} audit tasks, "
        f"seeds {tasks['first_seed']}-{tasks['last_seed']}); unconfirmed: {report['unconfirmed_rows']}. An incident's "
        f"row departs past the margin ({report['margin']:.0%}) from its baseline and {report['departure_sds']:g} "
        "standard deviations of its segment's clean dates (on its own or in its run); a defect's row, measured against "
        f"its repair, leaves a trace {report['trace_sds']:g} standard deviations from its segment's clean dates or its "
        f"siblings'. The control: {report['clean_dates_with_trace']} of {report['clean_dates_checked']} clean dates of "
        f"the defects' segments ({report['clean_dates_with_trace'] / max(report['clean_dates_checked'], 1):.1%}) show "
        "a trace when read the same way.",
        "",
        f"| mechanism | rows | unconfirmed | {' | '.join(reasons)} |",
        f"| --- | --- | --- | {' | '.join('---' for _ in reasons)} |",
    ]
    lost: dict[str, Counter[str]] = {}
    for row in report["unconfirmed"]:
        lost.setdefault(row["mechanism"], Counter())[reason(row["why"])] += 1
    for mechanism, rows in report["rows_by_mechanism"].items():
        counts = lost.get(mechanism, Counter())
        cells = " | ".join(str(counts[r]) for r in reasons)
        lines.append(f"| {mechanism} | {rows} | {sum(counts.values())} | {cells} |")
    if 0 < len(report["unconfirmed"]) <= LISTED_ROWS:
        lines += ["", "| seed | mechanism | date | metric | segment | why |", "| --- | --- | --- | --- | --- | --- |"]
        for row in report["unconfirmed"]:
            lines.append(
                f"| {row['seed']} | {row['mechanism']} | {row['date']} | {row['metric']} | {row['segment']} | "
                f"{'; '.join(row['why'])} |"
            )
    lines += ["", "Traces found, by the feature that stood furthest from its clean dates:", ""]
    lines.append(", ".join(f"{name} {n}" for name, n in report["traces_by_feature"].items() if name) + ".")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=EVAL_SEEDS_PER_DIFFICULTY, help="eval tasks to check")
    parser.add_argument("--version", type=int, default=KEPT_VERSION, help="the version whose eval sweep is checked")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ARTIFACT)
    args = parser.parse_args(argv)
    tasks = eval_tasks(args.tasks, args.version)
    if not tasks:
        parser.error(f"the eval split has no audit task at version {args.version}")
    report = run(tasks, args.workers)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"{report['rows_checked']} rows checked, {report['unconfirmed_rows']} unconfirmed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
