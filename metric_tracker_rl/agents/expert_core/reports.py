"""What an expert of the segmented tiers reports: a row's key, family and segment (`Report`), and the numbers of
every reported row read back from its segment's own data (the values query, the hourly-mix comparison tool), so
that every number submitted stands in a tool result."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from metric_tracker_rl.agents.expert_core.queries import ALIAS, EVENT_OF, STEPS, sql_text
from metric_tracker_rl.models import MetricSubmissionRow, MetricTrackerRlAction
from metric_tracker_rl.world.segments import CELL_FIELDS, SEGMENT_FIELDS

COLUMN_OF = {
    "app_opens": "app_opens",
    "menu_opens": "menu_opens",
    "orders_placed": "orders_placed",
    "payment_successful": "payment_successful",
}
SQL_CHARS = 4000  # the query tool refuses a longer statement (its error says so)
SEVERITY_BOUNDS = ((0.15, "low"), (0.30, "medium"), (0.60, "high"))  # task_overview's severity_rule
DETECTION_METHOD = {
    "rate_drop_from_median": "compare_rate_to_median",
    "funnel_break": "hourly_rows_for_date",
    "instrumentation_data_quality_issue": "check_impossible_counts",
    "absolute_spike_in_event_count": "compare_count_to_median",
    "absolute_drop_in_event_count": "compare_count_to_median",
    "hourly_traffic_mix_shift": "compare_hourly_mix_to_baseline",
}


@dataclass(frozen=True)
class Report:
    """One row to report: its key, family and segment (its numbers come from the values query)."""

    date: str
    entity_type: str
    entity_name: str
    anomaly_type: str
    platform: str | None = None
    country: str | None = None
    app_version: str | None = None
    channel: str | None = None  # the daily-only dimensions, where a tier has them
    user_type: str | None = None


def segment_of(row: dict[str, Any]) -> tuple[str | None, ...]:
    """A row's segment, as Report's segment fields in order."""
    return tuple(row.get(name) for name in SEGMENT_FIELDS)


def severity_sql(change: str) -> str:
    """The published severity rule as a SQL CASE over `change`, the absolute change of a row's value."""
    bands = " ".join(
        f"WHEN {change} / abs(baseline_value) < {bound} THEN '{label}'" for bound, label in SEVERITY_BOUNDS
    )
    return f"CASE {bands} ELSE 'critical' END"


def values_sql(rows: list[Report], fields: tuple[str, ...] = CELL_FIELDS, labelled: bool = False) -> str:
    """Every reported row read from its segment's own daily data (the segment named by `fields`), with the
    published baseline and severity rules. Each segment, entity and entity type is listed once (g, numbered k),
    each row by
    its date and k (r): a run of dates names its segment once. `labelled`: a row names its segment in one cell,
    its fields between slashes (cuboid_queries.SEGMENT_LABEL), and the statement is shorter: g names its fields by
    one letter ('' for a field a segment does not name), r each date by its days after the first."""

    def key(r: Report) -> tuple[str | None, ...]:
        return (*(getattr(r, name) for name in fields), r.entity_name, r.entity_type)

    keys = list(dict.fromkeys(map(key, rows)))
    segments = ", ".join(
        f"({k}, " + ", ".join(sql_text(value, k == 0) for value in key[:-2]) + f", '{key[-2]}', '{key[-1]}')"
        for k, key in enumerate(keys)
    )
    number = {key: k for k, key in enumerate(keys)}
    wanted = ", ".join(f"({'DATE ' if i == 0 else ''}'{r.date}', {number[key(r)]})" for i, r in enumerate(rows))
    named = {r.entity_name for r in rows}  # a CASE branch for each entity read, no other
    cases = " ".join(f"WHEN '{name}' THEN sum(x.{COLUMN_OF[name]})" for name in COLUMN_OF if name in named)
    cases += " " + " ".join(
        f"WHEN '{name}' THEN sum(x.{EVENT_OF[num]}) / nullif(sum(x.{EVENT_OF[den]}), 0)"
        for name, num, den in STEPS
        if name in named
    )
    listed = ", ".join(fields)
    segment = ", ".join(f"g.{name}" for name in fields)
    inside = " AND ".join(f"(g.{name} IS NULL OR x.{name} = g.{name})" for name in fields)
    listed += ", entity_name, entity_type"
    entity, named_by = "g.entity_type, g.entity_name", "g.entity_name"
    dates = f"r(date, k) AS (VALUES {wanted})"
    if labelled:  # g's columns by one letter, '' for a field a segment does not name; each date by its days after
        alias = {name: ALIAS[name] for name in fields}  # the first row's
        segments = ", ".join(
            f"({k}, " + ", ".join(sql_text(value or "") for value in key[:-2]) + f", '{key[-2]}', '{key[-1]}')"
            for k, key in enumerate(keys)
        )
        listed = ", ".join(alias.values()) + ", n, t"
        segment = "concat(" + ", '/', ".join(f"g.{a}" for a in alias.values()) + ") segment"
        inside = " AND ".join(f"(g.{a} = '' OR x.{name} = g.{a})" for name, a in alias.items())
        entity, named_by = "g.t entity_type, g.n entity_name", "g.n"
        first = min(dt.date.fromisoformat(r.date) for r in rows)
        days = ", ".join(f"({(dt.date.fromisoformat(r.date) - first).days}, {number[key(r)]})" for r in rows)
        dates = f"r AS (SELECT DATE '{first}' + i date, k FROM (VALUES {days}) r(i, k))"
    return (
        f"WITH g(k, {listed}) AS (VALUES {segments}), {dates}, "
        f"d AS (SELECT x.date, g.k, CASE {named_by} {cases} END v FROM daily_by_segment x JOIN g ON {inside} "
        f"GROUP BY x.date, g.k, {named_by}), "
        f"e AS (SELECT r.date, {segment}, {entity}, "
        "median(b.v) baseline_value, any_value(a.v) observed_value FROM r JOIN g USING (k) "
        "JOIN d a ON a.k = r.k AND a.date = r.date "
        "JOIN d b ON b.k = r.k AND isodow(b.date) = isodow(r.date) AND b.date <> r.date GROUP BY ALL) "
        "SELECT *, observed_value - baseline_value delta_value, "
        f"{severity_sql('abs(delta_value)')} severity FROM e ORDER BY date, entity_name"
    )


def values_queries(
    rows: list[Report],
    fields: tuple[str, ...] = CELL_FIELDS,
    measure: Callable[[str], int] = len,
    labelled: bool = False,
) -> list[str]:
    """values_sql over as many rows at a time as the query tool's text limit allows (each statement's length by
    `measure`: as it is sent)."""
    queries: list[str] = []
    batch: list[Report] = []
    for row in rows:
        if batch and measure(values_sql([*batch, row], fields, labelled)) > SQL_CHARS:
            queries.append(values_sql(batch, fields, labelled))
            batch = []
        batch.append(row)
    return [*queries, values_sql(batch, fields, labelled)] if batch else queries


def mix_values_action(report: Report) -> MetricTrackerRlAction:
    """An hourly-mix row's numbers, read from its segment's own hours by the comparison tool."""
    scope = {name: value for name in SEGMENT_FIELDS if (value := getattr(report, name)) is not None}
    return MetricTrackerRlAction(
        analysis_method="compare_hourly_mix_to_baseline",
        analysis_args={"date": report.date, "entity_name": report.entity_name, **scope},
    )


def submitted_rows(
    reports: list[Report], values: list[dict[str, Any]], fields: tuple[str, ...], segment_blind: bool
) -> list[MetricSubmissionRow]:
    """The reported rows as the values query (`values`, its rows) shows them; a row it did not show is left out.
    `segment_blind`: the rows name no segment."""
    shown = {
        (str(r["date"]), r["entity_name"], *(None if r.get(name) is None else str(r[name]) for name in fields)): r
        for r in values
        if "date" in r
    }  # a tool that refused a row shows no date
    rows = []
    for report in reports:
        row = shown.get((report.date, report.entity_name, *(getattr(report, name) for name in fields)))
        if row is None or row.get("baseline_value") is None or row.get("observed_value") is None:
            continue
        segment = {} if segment_blind else {name: getattr(report, name) for name in fields}
        rows.append(
            MetricSubmissionRow(
                date=report.date,
                entity_type=row["entity_type"],
                entity_name=report.entity_name,
                anomaly_type=report.anomaly_type,
                detection_method=DETECTION_METHOD[report.anomaly_type],
                baseline_value=row["baseline_value"],
                observed_value=row["observed_value"],
                delta_value=row["delta_value"],
                severity=row["severity"],
                **segment,
            )
        )
    return rows
