"""Tools that show the data as it is: overview, calendar, raw rows, hourly rows, summaries."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np

from metric_tracker_rl.analysis_tools.arguments import (
    AnyMetricArgs,
    DailyScopedDateArgs,
    LimitArgs,
    NoArgs,
    PreviewArgs,
    RawDataArgs,
    ScopedDateArgs,
)
from metric_tracker_rl.analysis_tools.registry import (
    REFERENCE_API,
    ToolError,
    cap_rows,
    derived,
    finite_or_none,
    register_tool,
)
from metric_tracker_rl.spec.plain_types import MetricSubmissionRow
from metric_tracker_rl.spec.published import (
    BASELINE_RULE,
    CONVERSION_METRICS,
    COUNT_COLUMNS,
    ENTITY_NAMES,
    ENTITY_VALUE_DEFINITIONS,
    GRADING_RULE,
    OVERLAP_CREDIT_RULE,
    SEVERITY_RULE,
    incident_count_statement,
)
from metric_tracker_rl.spec.tiers import TIERS
from metric_tracker_rl.spec.validation import describe_validation_error, validate_rows
from metric_tracker_rl.world.daily_panel import COLUMN_INDEX, nanmedian_last_axis, safe_ratio
from metric_tracker_rl.world.public_episode import PublicEpisode


def daily_row(episode: PublicEpisode, day: int, daily: np.ndarray | None = None) -> dict[str, Any]:
    """One date's counts and rates: of the whole funnel, or of `daily` (a segment's (D, 5) counts)."""
    data = episode.data
    counts = (data.daily if daily is None else daily)[day].tolist()
    row: dict[str, Any] = {"date": data.dates[day], "weekday": data.weekdays[day]}
    row.update(zip(COUNT_COLUMNS, counts, strict=True))
    for metric in CONVERSION_METRICS:
        den = counts[COLUMN_INDEX[metric.denominator]]
        row[metric.name] = counts[COLUMN_INDEX[metric.numerator]] / den if den else None
    return row


def metric_series(episode: PublicEpisode, metric: str) -> tuple[str, np.ndarray, int]:
    entity_type = "event_count" if metric in COUNT_COLUMNS else "conversion_rate"
    k = episode.panel.index(entity_type, metric)
    return entity_type, episode.panel.values[k], k


def grading_rule(difficulty: str) -> str:
    """The grading rule a model reads: at a tier that credits segments by overlap (deep), with that credit."""
    tier = TIERS.get(difficulty)
    if tier is None or tier.segment_credit != "overlap":
        return GRADING_RULE
    return f"{GRADING_RULE} At {difficulty} every row may name a segment, and its quality is multiplied by its " \
           f"segment credit. {OVERLAP_CREDIT_RULE}"


@register_tool("task_overview", "Rules the brief leaves out: entity values, baseline, severity, grading.", NoArgs)
def task_overview(episode: PublicEpisode, args: NoArgs) -> dict[str, Any]:
    """What the brief does not already say (it carries the objective, config, window and families), with no
    setting that is not set: worth its step."""
    return {
        "entities": [{"entity_type": t, "entity_names": ",".join(n), "value": ENTITY_VALUE_DEFINITIONS[t]}
                     for t, n in ENTITY_NAMES.items()],
        "row_fields": list(MetricSubmissionRow.model_fields),
        "baseline_rule": BASELINE_RULE,
        "severity_rule": SEVERITY_RULE,
        "grading": grading_rule(str(episode.task["config"].get("difficulty", ""))),
        "incidents": incident_count_statement(episode.task["config"]),
        "annotation_count": len(episode.annotations),
    }


@register_tool("list_dates", "Every date with its weekday and whether it has a calendar note.", NoArgs,
               kept_for=f"{REFERENCE_API} and the debugger; a model reads the window in its brief and the noted "
                        "dates from get_annotations")
def list_dates(episode: PublicEpisode, args: NoArgs) -> dict[str, Any]:
    noted = {a.date for a in episode.annotations}
    data = episode.data
    return {"dates": [{"date": d, "weekday": w, "is_weekend": bool(e), "has_annotation": d in noted}
                      for d, w, e in zip(data.dates, data.weekdays, data.weekend, strict=True)]}


@register_tool("list_entities", "Entity types, their valid entity names and what each value measures.", NoArgs,
               kept_for=f"{REFERENCE_API} and the debugger; a model reads the entities from task_overview")
def list_entities(episode: PublicEpisode, args: NoArgs) -> dict[str, Any]:
    return {"entities": [{"entity_type": t, "entity_names": list(n), "value": ENTITY_VALUE_DEFINITIONS[t]}
                         for t, n in ENTITY_NAMES.items()]}


@register_tool("get_annotations", "Calendar notes: a campaign, holiday or late data explains its date; a "
               "release does not.", NoArgs)
def get_annotations(episode: PublicEpisode, args: NoArgs) -> dict[str, Any]:
    return {"annotations": [a.as_dict() for a in episode.annotations]}


@register_tool("rows_for_date", "Daily event counts and conversion rates of one date.", DailyScopedDateArgs,
               example={"date": "2026-03-10"},
               kept_for=f"{REFERENCE_API} and the debugger; a model reads a date's daily row with show_raw_data")
def rows_for_date(episode: PublicEpisode, args: DailyScopedDateArgs) -> dict[str, Any]:
    try:
        daily = episode.segment_daily(args.segment())
    except ValueError as exc:
        raise ToolError(str(exc)) from None
    return {"row": daily_row(episode, episode.data.date_index(args.date), daily)}


@register_tool("hourly_rows_for_date", "One date's hourly counts and step conversions.", ScopedDateArgs,
               example={"date": "2026-03-10"})
def hourly_rows_for_date(episode: PublicEpisode, args: ScopedDateArgs) -> dict[str, Any]:
    day = episode.data.date_index(args.date)
    hourly = episode.data.hourly[day]
    rates = safe_ratio(hourly[:, 1:].astype(float), hourly[:, :-1].astype(float))
    cells = rates.astype(object)
    cells[np.isnan(rates)] = None  # an hour with no earlier event has no rate
    rates = cells.tolist()
    counts = hourly.tolist()
    step_metrics = [m.name for m in CONVERSION_METRICS[:4]]
    rows = []
    for hour in range(hourly.shape[0]):
        row: dict[str, Any] = {"hour": hour}
        row.update(zip(COUNT_COLUMNS, counts[hour], strict=True))
        row.update(zip(step_metrics, rates[hour], strict=True))
        rows.append(row)
    return {"date": args.date, "rows": rows}


@register_tool("show_raw_data", "Daily counts and conversion rates from a date on.", RawDataArgs)
def show_raw_data(episode: PublicEpisode, args: RawDataArgs) -> dict[str, Any]:
    days = range(args.offset, min(args.offset + args.limit, len(episode.data.dates)))
    return {"rows": [daily_row(episode, d) for d in days], "total_rows": len(episode.data.dates)}


# The kinds of signal a date is ranked by, each shown with its strongest entity. Counts and rates move either way;
# an hourly mix is a distance from the usual hours, so only its rise counts.
SUSPICIOUS_KINDS: tuple[str, ...] = ("conversion_rate", "event_count", "hourly_mix")
ONE_SIDED_KINDS = frozenset({"hourly_mix"})


@register_tool("list_suspicious_dates", "Dates by largest |robust z|, each kind's strongest shown; hourly mixes "
               "rank by rises only, null if none rose.", LimitArgs)
def list_suspicious_dates(episode: PublicEpisode, args: LimitArgs) -> dict[str, Any]:
    ranking = derived(episode, suspicious_date_ranking)
    return {"dates": [dict(entry) for entry in ranking[args.offset:args.offset + args.limit]]}


def suspicious_date_ranking(episode: PublicEpisode) -> list[dict[str, Any]]:
    """Every date, most suspicious first. A date's max_abs_robust_z is the largest |z| of its counts and rates
    and the largest positive z of its hourly mixes; each kind shows its strongest entity and that entity's z (for
    hourly mixes the largest rise, and null for both when no mix rose: a distance below its usual is no signal)."""
    panel = episode.panel
    strongest: dict[str, tuple[list[str | None], list[float | None]]] = {}
    scores = np.zeros(len(episode.data.dates))
    for kind in SUSPICIOUS_KINDS:
        rows = [k for k, (t, _) in enumerate(panel.keys) if t == kind]
        z = panel.filled_z[rows]
        strength = np.maximum(z, 0.0) if kind in ONE_SIDED_KINDS else np.abs(z)
        best = (z if kind in ONE_SIDED_KINDS else strength).argmax(axis=0)
        scores = np.maximum(scores, strength.max(axis=0))
        shown = (strength.max(axis=0) > 0).tolist() if kind in ONE_SIDED_KINDS else [True] * len(scores)
        chosen = [rows[i] if rose else None for i, rose in zip(best.tolist(), shown, strict=True)]
        strongest[kind] = ([None if k is None else panel.keys[k][1] for k in chosen],
                           [None if k is None else finite_or_none(panel.z[k, day]) for day, k in enumerate(chosen)])
    ranking = []
    for day in np.argsort(-scores, kind="stable").tolist():
        entry: dict[str, Any] = {"date": episode.data.dates[day], "max_abs_robust_z": float(scores[day])}
        for kind in SUSPICIOUS_KINDS:
            names, zs = strongest[kind]
            entry[kind], entry[f"{kind}_z"] = names[day], zs[day]
        ranking.append(entry)
    return ranking


@lru_cache(maxsize=8)
def _weekday_positions(weekdays: tuple[str, ...]) -> tuple[tuple[str, ...], np.ndarray]:
    """The weekdays in window order and, per weekday, the positions of its dates padded with -1 (read-only)."""
    names = tuple(dict.fromkeys(weekdays))
    groups = [[d for d, w in enumerate(weekdays) if w == name] for name in names]
    width = max(len(group) for group in groups)
    positions = np.array([group + [-1] * (width - len(group)) for group in groups])
    positions.setflags(write=False)
    return names, positions


@register_tool("get_metric_median", "Median of metrics over the window, overall and per weekday.",
               AnyMetricArgs, example={"metric_name": "app_opens"},
               kept_for=f"{REFERENCE_API} and the debugger; get_metric_std_dev_from_median gives a model the same "
                        "medians")
def get_metric_median(episode: PublicEpisode, args: AnyMetricArgs) -> dict[str, Any]:
    weekdays, padded = _weekday_positions(episode.data.weekdays)
    metrics = args.selected()
    series = np.vstack([metric_series(episode, metric)[1] for metric in metrics])  # (M, D)
    # One sort for every metric and weekday: padding is NaN, which the median skips like a missing value.
    by_weekday = nanmedian_last_axis(np.where(padded >= 0, series[:, padded], np.nan)).tolist()  # (M, weekdays)
    overall = nanmedian_last_axis(series).tolist()
    return {"metrics": [{"metric": metric, "median": finite_or_none(median),
                         "median_by_weekday": {w: m if math.isfinite(m) else None
                                               for w, m in zip(weekdays, medians, strict=True)}}
                        for metric, median, medians in zip(metrics, overall, by_weekday, strict=True)]}


@register_tool("get_metric_std_dev_from_median", "Each metric's median and robust spread (the z-score unit): "
               "how large a normal move is.", AnyMetricArgs,
               example={"metric_names": ["app_open_to_order_placed"]})
def get_metric_std_dev_from_median(episode: PublicEpisode, args: AnyMetricArgs) -> dict[str, Any]:
    out = []
    for metric in args.selected():
        _, values, k = metric_series(episode, metric)
        median = float(np.nanmedian(values))
        out.append({"metric": metric, "median": finite_or_none(median),
                    "robust_std_from_baseline": finite_or_none(episode.panel.spread[k]),
                    "std_dev_from_median": finite_or_none(np.sqrt(np.nanmean((values - median) ** 2)))})
    return {"metrics": out}


@register_tool("preview_submission", "Check rows without grading them (format, dates, entities, repeated "
               "keys); uses no submission.", PreviewArgs,
               kept_for=f"{REFERENCE_API} and the debugger's report preview; a model's submit_report refuses invalid "
                        "rows without using a submission",
               example={"rows": [{"date": "2026-03-10", "entity_type": "event_count", "entity_name": "app_opens",
                                  "anomaly_type": "absolute_spike_in_event_count",
                                  "detection_method": "compare_count_to_median", "baseline_value": 40000.0,
                                  "observed_value": 60000.0, "delta_value": 20000.0, "severity": "high"}]})
def preview_submission(episode: PublicEpisode, args: PreviewArgs) -> dict[str, Any]:
    from pydantic import ValidationError

    valid_rows: list[tuple[int, MetricSubmissionRow]] = []
    issues: list[dict[str, Any]] = []
    for i, raw in enumerate(args.rows):
        try:
            valid_rows.append((i, MetricSubmissionRow.model_validate(raw)))
        except ValidationError as exc:
            issues.append({"row_index": i, "code": "invalid_row", "message": describe_validation_error(exc)})
    row_issues = validate_rows([r for _, r in valid_rows], episode.data.dates, episode.segment_values())
    for position, issue in row_issues.items():
        issues.append({"row_index": valid_rows[position][0], "code": issue.code, "message": issue.message})
    issues.sort(key=lambda item: item["row_index"])
    return {"row_count": len(args.rows), "valid_row_count": len(valid_rows) - len(row_issues),
            "issues": issues, **cap_rows([r.model_dump(exclude_none=True) for _, r in valid_rows])}
