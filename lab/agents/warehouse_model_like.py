"""A model-like analyst at warehouse: the method a capable model used on abyss (its transcripts), applied to the
warehouse from what the tools show. Not the expert: it writes its own SQL from the metrics layer's text, scans
first and reasons about each candidate after, with the round bars and volume floors an analyst picks, not tuned
ones.

1. The metrics layer (read once), then one context query (releases, experiments, holidays, campaigns, partner
   notices, tracking deploys, the window).
2. The dashboard scanned for dips: every date and cuboid of its fields (a platform, a country, both, a version)
   against the same weekday's median, sessions and each rate.
3. The dashboard recounted from the raw events by the metrics layer's rules, per date and platform or country,
   beside what the rules leave out or the events disagree on: app_opens denied analytics storage, events ingested
   after the cut-off, events ingested a day after their stamp, sessions without a session_start, idle devices. A
   dip whose date and segment carry such a trace is the data; the tracking changelog names renamed events.
4. The recount's own cuboids (channel and user type, which the dashboard lacks) scanned for dips, and blocks of
   hours whose sessions or payments collapsed.
5. A check on each candidate: its segment's metric on the dates around it by the recount, against the same weekday's
   median; a candidate whose fall does not hold up is dropped, a fall that goes on is followed date by date.
6. The report: incidents' values by the recount, defects' observed value the dashboard's and baseline the same
   weekday's median there.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Generator
from dataclasses import dataclass, field, replace
from typing import Any

from lab.agents.registry import register_lab_agent
from metric_tracker_rl.agents.warehouse_expert import WarehouseExpertAgent
from metric_tracker_rl.agents.warehouse_findings import (
    COUNT_DROP,
    DATA_QUALITY,
    FUNNEL_BREAK,
    RATE_DROP,
    Finding,
    Rows,
    Statement,
    dedupe,
    in_parts,
    overlaps,
)
from metric_tracker_rl.view.observation import SeenObservation
from metric_tracker_rl.world.metrics_layer import RATE_COLUMNS
from metric_tracker_rl.world.segments import Segment

# An analyst's round bars: a dip's z against the same weekday (robust, from the spread of the segment's own dates),
# the volume a cuboid needs to be read, the share of a date's opens a trace must reach, an hour's collapse.
DIP_Z = 4.0
CHECK_Z = 2.5  # a neighbouring date's fall that continues a candidate
MIN_SESSIONS = 40
TRACE_SHARE = 0.15
HOUR_SHARE = 0.4
SCAN_LIMIT = 60
METRICS = ("sessions", *RATE_COLUMNS)
SEGMENT_FIELDS = ("platform", "country", "app_version", "channel", "user_type")
STEPS = ("app_open", "menu_open", "product_added_to_cart", "order_placed", "payment_successful")

CONTEXT = (
    "SELECT 'release' AS what, platform, NULL AS country, app_version AS detail, min(rollout_start) AS first, "
    "NULL::DATE AS last, NULL AS note FROM releases GROUP BY platform, app_version "
    "UNION ALL SELECT 'experiment', platform, country, concat_ws('/', channel, user_type), start_date, end_date, "
    "target_step FROM experiments "
    "UNION ALL SELECT 'holiday', NULL, country, name, date, date, NULL FROM holidays "
    "UNION ALL SELECT 'campaign', NULL, country, channel, start_date, end_date, campaign FROM campaigns "
    "UNION ALL SELECT 'partner', platform, country, concat(start_hour, '-', end_hour), date, date, status "
    "FROM partner_status "
    "UNION ALL SELECT 'tracking', platform, NULL, NULL, date, NULL, change FROM tracking_changelog "
    "UNION ALL SELECT 'window', NULL, NULL, NULL, min(date), max(date), NULL FROM dashboard ORDER BY what, first"
)

# The metrics layer's sessions, as its text defines them: `ev` the events with a user, `excluded` the sessions the
# standing exclusions remove, `counted` each counted event once (ingested before the cut-off), `s` one row per
# counted session (dated and placed by its app_open; its channel, user type and the steps it reached).
RECOUNT = (
    "WITH ev AS (SELECT user_pseudo_id AS uid, list_filter(event_params, lambda p: p.key = 'session_id')[1]"
    ".value.int_value AS sid, event_name, event_date, event_timestamp, ingestion_timestamp, platform, "
    "app_info.version AS app_version, geo.country AS country, traffic_source.medium AS medium, user_id, "
    "device.device_id AS device_id, len(list_filter(event_params, lambda p: (p.key = 'traffic_type' AND "
    "p.value.string_value = 'internal') OR (p.key = 'debug_mode' AND p.value.int_value = 1))) > 0 AS tagged "
    "FROM events WHERE privacy_info.analytics_storage <> 'denied'), "
    "excluded AS (SELECT DISTINCT uid, sid FROM ev WHERE tagged OR user_id IN (SELECT user_id FROM "
    "internal_accounts) OR device_id IN (SELECT device_id FROM test_devices UNION ALL SELECT device_id FROM "
    "known_bots)), "
    "counted AS (SELECT DISTINCT uid, sid, event_name, event_date, event_timestamp, platform, app_version, country, "
    "medium FROM ev ANTI JOIN excluded USING (uid, sid) WHERE ingestion_timestamp < "
    "epoch_us(CAST(event_date + 2 AS TIMESTAMP)) - 32400000000), "
    "s AS (SELECT min(event_date) FILTER (event_name = 'app_open') AS date, min(platform) AS platform, "
    "min(app_version) FILTER (event_name = 'app_open') AS app_version, min(country) AS country, "
    "CASE min(medium) FILTER (event_name = 'app_open') WHEN 'cpc' THEN 'paid_search' ELSE min(medium) FILTER "
    "(event_name = 'app_open') END AS channel, CASE WHEN sid = 1 THEN 'new' ELSE 'returning' END AS user_type, "
    "hour(make_timestamp(min(event_timestamp) FILTER (event_name = 'app_open') + 32400000000)) AS hr, "
    + ", ".join(f"bool_or(event_name = '{step}')::INT AS m{i}" for i, step in enumerate(STEPS[1:], 1))
    + " FROM counted GROUP BY uid, sid HAVING date IS NOT NULL)"
)


def dip_scan(source: str, sets: str, fields: tuple[str, ...]) -> str:
    """Per date, cuboid (grouping `sets` of `fields`) and rate, its value against the median of the same weekday's
    other dates, z by the spread of the cuboid's own deltas (1.4826 MAD): the SCAN_LIMIT strongest falls beyond
    DIP_Z on MIN_SESSIONS or more."""
    named = ", ".join(name if name in fields else f"NULL AS {name}" for name in SEGMENT_FIELDS)
    return (
        f"g AS (SELECT date, {named}, {source} FROM s GROUP BY date, GROUPING SETS ({sets})), "
        "x AS (SELECT *, unnest([1, 2, 3, 4]) AS k, unnest([m1 / nullif(m0, 0), m2 / nullif(m1, 0), "
        "m3 / nullif(m2, 0), m4 / nullif(m3, 0)]) AS value, unnest([m0, m1, m2, m3]) AS volume FROM g), "
        f"b AS (SELECT *, value - median(value) OVER (PARTITION BY {', '.join(fields)}, k, isodow(date) ROWS "
        "BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING EXCLUDE CURRENT ROW) "
        f"AS delta FROM x WHERE volume >= {MIN_SESSIONS}), "
        f"z AS (SELECT *, delta / nullif(1.4826 * median(abs(delta)) OVER (PARTITION BY {', '.join(fields)}, k), "
        "0) AS z FROM b) "
        f"SELECT CAST(date AS VARCHAR) AS date, {', '.join(fields)}, k, round(z, 1) AS z FROM z "
        f"WHERE z <= -{DIP_Z} ORDER BY z LIMIT {SCAN_LIMIT}"
    )


DASHBOARD_SCAN = (
    "WITH s AS (SELECT date, platform, country, app_version, sessions AS c0, menu_sessions AS c1, "
    "cart_sessions AS c2, order_sessions AS c3, payment_sessions AS c4 FROM dashboard), "
    + dip_scan(
        "sum(c0) AS m0, sum(c1) AS m1, sum(c2) AS m2, sum(c3) AS m3, sum(c4) AS m4",
        "(platform), (country), (platform, country), (platform, app_version)",
        ("platform", "country", "app_version"),
    )
)
EVENTS_SCAN = (
    RECOUNT
    + ", "
    + dip_scan(
        "count(*) AS m0, sum(m1) AS m1, sum(m2) AS m2, sum(m3) AS m3, sum(m4) AS m4",
        "(channel), (user_type), (platform, channel), (platform, user_type), (country, channel), (country, user_type), "
        "(channel, user_type)",
        ("platform", "country", "channel", "user_type"),
    )
)

# A grouping's fields as text ('' where it groups over them), so the two tables join on them.
KEYS = "coalesce(platform, '') AS platform, coalesce(country, '') AS country, coalesce(app_version, '') AS app_version"
TRACE_SETS = "((), (platform), (country), (platform, country), (platform, app_version))"
# Per date and segment: the app_opens, and what the rules leave out or the events disagree on.
TRACES = (
    "WITH o AS (SELECT event_date AS date, platform, geo.country AS country, app_info.version AS app_version, "
    "user_pseudo_id AS uid, list_filter(event_params, lambda p: p.key = 'session_id')[1].value.int_value AS sid, "
    "event_name, device.device_id AS device_id, ingestion_timestamp - event_timestamp AS lag, ingestion_timestamp "
    ">= epoch_us(CAST(event_date + 2 AS TIMESTAMP)) - 32400000000 AS late, privacy_info.analytics_storage = "
    "'denied' AS denied FROM events), "
    "ses AS (SELECT date, platform, country, app_version, device_id, bool_or(event_name = 'session_start') AS "
    "started, count(*) AS events FROM o WHERE NOT denied GROUP BY date, platform, country, app_version, "
    "device_id, uid, sid), "
    "idle AS (SELECT date, device_id FROM ses WHERE device_id NOT IN (SELECT device_id FROM known_bots UNION ALL "
    "SELECT device_id FROM test_devices) GROUP BY ALL HAVING count(*) >= 4 AND max(events) <= 2), "
    f"t AS (SELECT date, {KEYS}, count(*) FILTER (event_name = 'app_open') AS opens, "
    "count(*) FILTER (event_name = 'app_open' AND denied) AS denied, "
    "count(*) FILTER (event_name = 'app_open' AND late) AS late, "
    "count(*) FILTER (event_name = 'app_open' AND lag > 72000000000 AND NOT late) AS day_lag FROM o "
    f"GROUP BY date, GROUPING SETS {TRACE_SETS}), "
    f"u AS (SELECT date, {KEYS}, count(*) FILTER (NOT started) AS no_start, "
    "count(*) FILTER (device_id IN (SELECT device_id FROM idle WHERE idle.date = ses.date)) AS idle FROM ses "
    f"GROUP BY date, GROUPING SETS {TRACE_SETS}) "
    "SELECT CAST(date AS VARCHAR) AS date, nullif(platform, '') AS platform, nullif(country, '') AS country, "
    "nullif(app_version, '') AS app_version, opens, denied, late, day_lag, no_start, idle FROM t LEFT JOIN u "
    "USING (date, platform, country, app_version) WHERE denied >= 0.5 * opens OR "
    f"greatest(late, day_lag, no_start, idle) >= {TRACE_SHARE} * opens ORDER BY date, platform, country"
)

HOURS = (
    RECOUNT + ", h AS (SELECT date, hr, coalesce(platform, '') AS platform, coalesce(country, '') AS country, "
    "count(*) AS opens, sum(m3) AS orders, sum(m4) AS paid FROM s GROUP BY date, hr, GROUPING SETS ((platform), "
    "(country), (platform, country))), "
    "grid AS (SELECT * FROM (SELECT DISTINCT platform, country FROM h), (SELECT DISTINCT date FROM s), "
    "(SELECT range AS hr FROM range(24))), "
    "z AS (SELECT date, hr, platform, country, coalesce(opens, 0) AS opens, coalesce(orders, 0) AS orders, "
    "coalesce(paid, 0) AS paid FROM grid LEFT JOIN h USING (date, hr, platform, country)), "
    "b AS (SELECT *, median(opens) OVER w AS usual, sum(paid) OVER w / nullif(sum(orders) OVER w, 0) AS "
    "pay_rate FROM z WINDOW w AS (PARTITION BY platform, country, hr, isodow(date))), "
    f"f AS (SELECT *, usual >= 8 AND opens < {HOUR_SHARE} * usual AS no_opens, orders * pay_rate >= 3 AND paid < "
    f"{HOUR_SHARE} * orders * pay_rate AS no_pay FROM b) "
    "SELECT CAST(date AS VARCHAR) AS date, nullif(platform, '') AS platform, nullif(country, '') AS country, "
    "sum(no_opens::INT) AS opens_hours, "
    "sum(no_pay::INT) AS pay_hours, min(hr) FILTER (no_opens OR no_pay) AS first_hour FROM f GROUP BY ALL "
    "HAVING greatest(opens_hours, pay_hours) >= 3 ORDER BY greatest(opens_hours, pay_hours) DESC LIMIT 30"
)


def candidate_values(asked: list[tuple[Any, ...]]) -> str:
    """For each candidate (i, date, platform, country, app_version, channel, user_type, k), its segment's metric by
    the recount on its date and the three dates either side: value, the same weekday's median and the spread of
    the segment's values about their medians (1.4826 MAD over every date)."""
    body = ", ".join("(" + ", ".join(_literal(v) for v in row) + ")" for row in asked)
    match = " AND ".join(
        f"(q.{f} IS NULL OR s.{f} = q.{f})" for f in ("platform", "country", "app_version", "channel", "user_type")
    )
    return (
        RECOUNT + f", q(i, on_date, platform, country, app_version, channel, user_type, k) AS (VALUES {body}), "
        "v AS (SELECT i, s.date, any_value(q.on_date) AS on_date, CASE any_value(q.k) WHEN 0 THEN count(*) "
        "WHEN 1 THEN sum(m1) / count(*) WHEN 2 THEN sum(m2) / nullif(sum(m1), 0) WHEN 3 THEN sum(m3) / "
        f"nullif(sum(m2), 0) ELSE sum(m4) / nullif(sum(m3), 0) END AS value FROM q JOIN s ON {match} "
        "GROUP BY i, s.date), "
        "w AS (SELECT *, median(value) OVER (PARTITION BY i, isodow(date) ROWS BETWEEN UNBOUNDED PRECEDING AND "
        "UNBOUNDED FOLLOWING EXCLUDE CURRENT ROW) AS usual FROM v), "
        "sp AS (SELECT *, 1.4826 * median(abs(value - usual)) OVER (PARTITION BY i) AS spread FROM w) "
        "SELECT i, CAST(date AS VARCHAR) AS date, round(value, 4) AS value, round(usual, 4) AS usual, "
        "round(spread, 4) AS spread FROM sp "
        "WHERE abs(date - on_date) <= 3 ORDER BY i, date"
    )


def dashboard_values(asked: list[tuple[Any, ...]]) -> str:
    """For each defect row (i, date, platform, country, app_version, k), the dashboard's metric on its date and the
    median of its weekday's other dates."""
    body = ", ".join("(" + ", ".join(_literal(v) for v in row) + ")" for row in asked)
    match = " AND ".join(f"(q.{f} IS NULL OR d.{f} = q.{f})" for f in ("platform", "country", "app_version"))
    counts = ["sessions", "menu_sessions", "cart_sessions", "order_sessions", "payment_sessions"]
    value = (
        "CASE any_value(q.k) WHEN 0 THEN sum(sessions) "
        + " ".join(f"WHEN {k} THEN sum({counts[k]}) / nullif(sum({counts[k - 1]}), 0)" for k in range(1, 5))
        + " END"
    )
    return (
        f"WITH q(i, on_date, platform, country, app_version, k) AS (VALUES {body}), "
        f"v AS (SELECT i, d.date, any_value(q.on_date) AS on_date, {value} AS value FROM q JOIN dashboard d ON "
        f"{match} AND isodow(d.date) = isodow(q.on_date) GROUP BY i, d.date) "
        "SELECT i, round(max(value) FILTER (date = on_date), 4) AS value, round(median(value) FILTER "
        "(date <> on_date), 4) AS usual FROM v GROUP BY i ORDER BY i"
    )


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    return f"DATE '{text}'" if re.fullmatch(r"\d{4}-\d\d-\d\d", text) else "'" + text.replace("'", "''") + "'"


def _segment(row: dict[str, Any]) -> Segment:
    return Segment(*(row.get(name) for name in ("platform", "country", "app_version", "channel", "user_type")))


@dataclass
class Analysis:
    """The module docstring's method as a generator of statements (as the expert's: sent each statement's rows,
    returning the findings)."""

    dates: list[str] = field(default_factory=list)
    context: Rows = field(default_factory=list)

    def run(self) -> Generator[Statement, Rows, list[Finding]]:
        self.context = yield ("context", CONTEXT)
        window = next(row for row in self.context if row["what"] == "window")
        first, last = dt.date.fromisoformat(str(window["first"])), dt.date.fromisoformat(str(window["last"]))
        self.dates = [(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
        dips = yield ("dashboard dips", DASHBOARD_SCAN)
        traces = yield ("recount traces", TRACES)
        dips += yield ("recount dips", EVENTS_SCAN)
        hours = yield ("hours", HOURS)
        defects = self.defects(traces)
        candidates = self.candidates(dips, hours, defects)
        incidents = yield from self.checked(candidates)
        defects = yield from self.defect_values(defects)
        return dedupe([*defects, *incidents])

    def shift(self, date: str, days: int) -> str:
        return (dt.date.fromisoformat(date) + dt.timedelta(days=days)).isoformat()

    def defects(self, traces: Rows) -> list[Finding]:
        """Each trace as the data defect it is, one row per date; a renamed event from the changelog."""
        found: list[Finding] = []
        for row in traces:
            date, opens, segment = str(row["date"]), float(row["opens"] or 0), _segment(row)
            if not opens:
                continue
            share = {name: float(row[name] or 0) / opens for name in ("denied", "late", "day_lag", "no_start", "idle")}
            named = segment.named()
            if share["late"] >= TRACE_SHARE and not named:
                found.append(Finding(date, "sessions", DATA_QUALITY, Segment(), kind="late_load"))
            if share["denied"] >= 0.5 and set(named) == {"country"}:
                found.append(Finding(date, "sessions", DATA_QUALITY, segment, kind="consent_drop"))
            if share["day_lag"] >= TRACE_SHARE and set(named) == {"platform"}:
                found += [
                    Finding(d, "sessions", DATA_QUALITY, segment, kind="clock_skew")
                    for d in (date, self.shift(date, 1))
                ]
            if share["idle"] >= TRACE_SHARE and set(named) == {"platform", "country"}:
                found.append(Finding(date, RATE_COLUMNS[0], DATA_QUALITY, segment, kind="bot_farm"))
            if share["no_start"] >= TRACE_SHARE and set(named) == {"platform", "app_version"}:
                found.append(Finding(date, RATE_COLUMNS[0], DATA_QUALITY, segment, kind="retry_duplicates"))
        for row in self.context:
            renamed = re.match(r"(\w+) is sent as (\w+)", str(row.get("note") or ""))
            if row["what"] == "tracking" and renamed and renamed.group(1) in STEPS[1:3]:
                metric = RATE_COLUMNS[STEPS.index(renamed.group(1)) - 1]
                found += [
                    Finding(d, metric, DATA_QUALITY, Segment(platform=row["platform"]), kind="tracking")
                    for d in self.dates
                    if d >= str(row["first"])
                ]
        return [f for f in found if f.date in self.dates]

    def candidates(self, dips: Rows, hours: Rows, defects: list[Finding]) -> list[Finding]:
        """Dips and collapsed hours no defect, holiday or experiment's intended effect explains, strongest first:
        one per date and metric."""
        found = []
        for row in hours:
            segment = _segment(row)
            if int(row["pay_hours"] or 0) >= int(row["opens_hours"] or 0):
                found.append(Finding(str(row["date"]), RATE_COLUMNS[3], FUNNEL_BREAK, segment, kind="hours"))
            else:
                found.append(Finding(str(row["date"]), "sessions", COUNT_DROP, segment, kind="hours"))
        for row in sorted(dips, key=lambda r: float(r["z"])):
            k = int(row["k"])
            found.append(
                Finding(str(row["date"]), METRICS[k], COUNT_DROP if k == 0 else RATE_DROP, _segment(row), kind="dip")
            )
        kept: list[Finding] = []
        for f in found:
            if any(d.date == f.date and overlaps(d.segment, f.segment) for d in defects) or self.explained(f):
                continue
            if f.metric == "sessions" and f.kind == "dip":
                continue  # a whole day's fall of traffic is demand, not an incident (the brief)
            if any(k.date == f.date and k.metric == f.metric for k in kept):
                continue
            kept.append(f)
        return kept

    def explained(self, f: Finding) -> bool:
        """A holiday on the date (in its country, or everywhere), or an experiment's arm on its target step."""
        for row in self.context:
            on = str(row["first"] or "") <= f.date <= str(row["last"] or row["first"] or "")
            if (
                row["what"] == "holiday"
                and on
                and f.metric == "sessions"
                and (row["country"] is None or row["country"] == f.segment.country)
            ):
                return True
            if row["what"] == "experiment" and on and row["note"] == f.metric:
                return True
        return False

    def checked(self, candidates: list[Finding]) -> Generator[Statement, Rows, list[Finding]]:
        """Each candidate's segment around its date: kept where its date fell by a tenth and CHECK_Z spreads or
        more, followed over the neighbouring dates that fell by half as much; its values are the recount's."""
        if not candidates:
            return []
        asked = [(i, f.date, *f.segment.values(), METRICS.index(f.metric)) for i, f in enumerate(candidates)]
        rows = yield from in_parts("candidate checks", asked, lambda part: candidate_values(list(part)))
        series: dict[int, dict[str, tuple[float, float, float]]] = {}
        for row in rows:
            if None not in (row["value"], row["usual"], row["spread"]):
                series.setdefault(int(row["i"]), {})[str(row["date"])] = (
                    float(row["value"]),
                    float(row["usual"]),
                    float(row["spread"]),
                )
        kept = []
        for i, f in enumerate(candidates):
            days = series.get(i, {})
            drop = fall(days.get(f.date))
            if drop < CHECK_Z:
                continue
            run = [f.date]
            for step in (-1, 1):
                date = self.shift(f.date, step)
                while f.kind == "dip" and fall(days.get(date)) >= max(drop / 2, CHECK_Z / 2):
                    run.append(date)
                    date = self.shift(date, step)
            kept += [replace(f, date=d, baseline=days[d][1], observed=days[d][0]) for d in sorted(run)]
        return kept

    def defect_values(self, defects: list[Finding]) -> Generator[Statement, Rows, list[Finding]]:
        """Observed: the dashboard's; baseline: its same weekday's median (what the metric usually is there)."""
        if not defects:
            return []
        defects = dedupe(defects)
        asked = [
            (i, f.date, f.segment.platform, f.segment.country, f.segment.app_version, METRICS.index(f.metric))
            for i, f in enumerate(defects)
        ]
        rows = yield from in_parts("defect values", asked, lambda part: dashboard_values(list(part)))
        values = {int(row["i"]): row for row in rows}
        return [
            replace(f, observed=_float(values.get(i, {}).get("value")), baseline=_float(values.get(i, {}).get("usual")))
            for i, f in enumerate(defects)
        ]


def fall(value: tuple[float, float, float] | None) -> float:
    """A date's fall in spreads where it is under its usual by a tenth or more, else 0."""
    if value is None or value[1] <= 0 or value[0] > 0.9 * value[1]:
        return 0.0
    return (value[1] - value[0]) / max(value[2], 1e-9)


def _float(value: Any) -> float:
    return float(value) if value is not None else float("nan")


class WarehouseModelLikeAgent(WarehouseExpertAgent):
    """The method above through the tools: the metrics layer read once, each statement through the query tool (every
    page of its result), then the report."""

    name = "warehouse_model_like"

    def plan(self, observation: SeenObservation) -> Generator[Statement, Rows, list[Finding]]:
        return Analysis().run()


register_lab_agent(WarehouseModelLikeAgent.name, WarehouseModelLikeAgent)
