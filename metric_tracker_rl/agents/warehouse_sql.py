"""The warehouse expert's SQL: the metrics layer's counted sessions written over the raw events (each standing rule
one clause, so an ablation drops exactly that clause), the context it reads first and the metric values it reports.
The statements built on the sessions are in warehouse_traces (the data defects' traces and values) and
warehouse_scans (the incidents' scans).

Every statement starts from the same common table `s`: one row per counted session with its reporting date, its
segment (platform, app_version, country, channel, user_type) and the funnel steps it reached (m0 to m4: app_open,
menu_open, product_added_to_cart, order_placed, payment_successful), as the metrics layer defines them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from metric_tracker_rl.world.events import EVERYDAY_EVENT_NAMES, FUNNEL_EVENT_NAMES, REPORTING_UTC_OFFSET_HOURS
from metric_tracker_rl.world.metrics_layer import FUNNEL_STEP_NAMES, LATE_CUTOFF_DAYS

# The metrics layer's rules, each a clause of the sessions' statement (an ablation leaves one out).
RULES: tuple[str, ...] = (
    "time_zone",
    "session",
    "deduplication",
    "internal_traffic",
    "debug_events",
    "bots",
    "late_events",
    "currency",
    "consent",
)
ALL_RULES = frozenset(RULES)
OFFSET_US = REPORTING_UTC_OFFSET_HOURS * 3600 * 1_000_000
SEGMENT_COLUMNS = ("platform", "country", "app_version", "channel", "user_type")
CHANNEL_OF_MEDIUM = "CASE min(m) WHEN 'cpc' THEN 'paid_search' ELSE min(m) END"  # m: the medium


def param(key: str, kind: str) -> str:
    """An event parameter's value by key (kind: int_value, string_value or double_value)."""
    return f"list_filter(event_params, lambda p: p.key = '{key}')[1].value.{kind}"


def reporting_date(rules: frozenset[str]) -> str:
    """The reporting date: event_date (the reporting zone's), or the UTC date where the time zone is ignored."""
    return "event_date" if "time_zone" in rules else "CAST(make_timestamp(event_timestamp) AS DATE)"


def _excluded(rules: frozenset[str], debug_counted: bool = False) -> str:
    """An event that marks its session as standing traffic the rules exclude (FALSE where no rule applies); with
    `debug_counted`, a debug tag alone excludes nothing (a listed test device still does)."""
    tags = []
    if "internal_traffic" in rules:
        tags.append("p.key = 'traffic_type' AND p.value.string_value = 'internal'")
    if "debug_events" in rules and not debug_counted:
        tags.append("p.key = 'debug_mode' AND p.value.int_value = 1")
    # Whether any parameter is a tag (an event without parameters, as a cookieless ping's open, carries none); AND
    # binds before OR.
    parts = [f"list_filter(event_params, lambda p: {' OR '.join(tags)}) <> []"] if tags else []
    listed = ["user_id IN (SELECT user_id FROM internal_accounts)"] if "internal_traffic" in rules else []
    devices = [table for rule, table in (("debug_events", "test_devices"), ("bots", "known_bots")) if rule in rules]
    if devices:
        listed.append(f"device.device_id IN ({' UNION ALL '.join(f'SELECT device_id FROM {t}' for t in devices)})")
    if listed:  # an unknown user or device is not listed
        parts.append(f"({' OR '.join(listed)}) IS TRUE")
    return " OR ".join(parts) or "FALSE"


@dataclass(frozen=True)
class Fixes:
    """Data defects found in the raw events and undone when the metrics are recomputed without them: renamed events
    read under their funnel name, events stamped a day early (ingested a day after their stamp) dated a day later,
    a late load (events ingested three days after their stamp) counted, sessions re-sent without a session_start
    left out, unlisted bots' sessions left out, a session's purchases after its first transaction left out (an SDK
    re-sending them under new ids), and purchases sent in a wrong currency read in the one meant."""

    renamed: tuple[tuple[str, str], ...] = ()
    skewed: bool = False
    late_loaded: bool = False
    retried: bool = False
    bots: tuple[str, ...] = ()
    resent: bool = False  # a session's purchases after its first transaction are a retrying SDK's
    mislabelled: tuple[tuple[str, str, str, str, str], ...] = ()  # (date, platform, country, sent, meant) currency
    # The audit expert's repairs (agents/audit_repairs.py), each (nearly) harmless where its fault is absent: a
    # debug tag from a device no test list names counted, an event repeated in a later session of its user (same
    # name and time) read once, a menu_open within PREFIRED_US of its session's app_open left out, a currency's
    # rate missing or far from its median read as its median, an unlisted device's sessions on a date it ran the
    # funnel LOAD_SESSIONS times or more, buying one basket each time, left out, sessions that only opened (under
    # a second of engagement) left out, an event stamped after it was ingested dated by its ingestion, one of an
    # app version (platform, version) ingested a whole number of hours (BEHIND_US) after its stamp dated that many
    # hours later, and an event outside the tracking plan on an app version (platform, version, the funnel event it
    # stands for) read as that event; and (`rejoined`) an event whose session id holds no app_open read as part
    # of the session its device opened last before it.
    debug_counted: bool = False
    replayed: bool = False
    prefired: bool = False
    sane_rates: bool = False
    load_devices: bool = False
    idle_left_out: bool = False
    clock_redated: bool = False
    behind: tuple[tuple[str, str], ...] = ()
    rejoined: bool = False
    unplanned: tuple[tuple[str, str, str], ...] = ()


NO_FIXES = Fixes()
PREFIRED_US = 1_000_000  # a menu_open this soon after its session's app_open: logged at launch, not by a user
RATE_FACTOR = 2  # a rate more than this factor from its currency's median is read as the median
LOAD_SESSIONS = 3  # a device's app_opens and same-value payments on a date from which it is a load test's
BEHIND_US = (9 * 3600 * 1_000_000, 15 * 3600 * 1_000_000)  # an event ingested this long after its stamp, stamped behind
WHOLE_HOURS_US = 15 * 60 * 1_000_000  # an ingestion this close past a whole number of hours after the stamp
IDLE_MS = 1000  # a session's engagement under which, with no step past its app_open, it only opened
PLANNED = ", ".join(f"'{name}'" for name in (*FUNNEL_EVENT_NAMES, *EVERYDAY_EVENT_NAMES))
DAY_US = 86_400 * 1_000_000
HOUR_US = 3600 * 1_000_000
LAG = "ingestion_timestamp - event_timestamp"


def lag_within(days: int) -> str:
    """An event ingested `days` days after its stamp, within the hour (a skewed clock's or a late load's)."""
    return f"{LAG} BETWEEN {days * DAY_US} AND {days * DAY_US + HOUR_US}"


def events_cte(
    rules: frozenset[str] = ALL_RULES, fixes: Fixes = NO_FIXES, purchases: bool = False, stamped: bool = False
) -> str:
    """`e`: the events a session is built from, one row each (its repeats once where de-duplication applies), with
    whether it counts (`ok`: ingested before the cut-off) and whether it excludes its session (`x`); where
    `purchases`, a payment's time, transaction id, value and currency too (t, tx, val, cur); where `stamped`, each
    event's time (t). Without a time, a session's events of one name, date and segment are one row: all a session's
    steps read."""
    stamp = "event_timestamp t, " if purchases or stamped else ""
    date = _redated(fixes, reporting_date(rules))
    if fixes.skewed:
        date = f"CASE WHEN {lag_within(1)} THEN {date} + 1 ELSE {date} END"
    renamed = " ".join(f"WHEN '{recorded}' THEN '{meant}'" for recorded, meant in fixes.renamed)
    name = _planned(fixes, f"CASE event_name {renamed} ELSE event_name END" if renamed else "event_name")
    session = param("session_id", "int_value")
    user = "user_pseudo_id" if "session" in rules else "NULL"
    user, joined = _rejoined(fixes, user, session)
    # `d`: the reporting date, named earlier in the same select list (DuckDB reads an alias defined to its left).
    cutoff = (
        f"ingestion_timestamp < epoch_us((d + {LATE_CUTOFF_DAYS})::TIMESTAMP) - {OFFSET_US}"
        if "late_events" in rules
        else "TRUE"
    )
    if fixes.late_loaded:
        cutoff = f"({cutoff} OR {lag_within(3)})"
    where = [*(["privacy_info.analytics_storage = 'granted'"] if "consent" in rules else []), *_load_test(fixes)]
    consent = f"WHERE {' AND '.join(where)}" if where else ""
    if fixes.idle_left_out:
        stamp += f"{param('engagement_time_msec', 'int_value')} g, "
    paid = _paid_columns() if purchases else ""
    select = (
        f"SELECT {user} u, {joined} s, {name} n, {date} d, {stamp}platform, "
        f"app_info.version v, geo.country c, traffic_source.medium m, {paid}{cutoff} ok, "
        f"{_excluded(rules, fixes.debug_counted)} x FROM events {consent}{_repaired_events(fixes, session)}"
    )
    if "deduplication" in rules:
        # A repeat is a copy of its event: its platform, version, country and medium (m) are the first's.
        kept = "any_value(tx) tx, any_value(val) val, any_value(cur) cur, " if purchases else ""
        kept = ("t, " if purchases or stamped else "") + "platform, v, c, m, " + kept
        kept += "any_value(g) g, " if fixes.idle_left_out else ""
        select = f"SELECT u, s, n, d, {kept}bool_or(ok) ok, bool_or(x) x FROM ({select}) GROUP BY ALL"
    return f"e AS ({select})"


def _paid_columns() -> str:
    """A payment's transaction id, value and currency (tx, val, cur), read on every event: only a payment's are used
    (its repeats grouped by name, its purchases by payment_successful)."""
    columns = (
        ("transaction_id", "string_value", "tx"),
        ("value", "double_value", "val"),
        ("currency", "string_value", "cur"),
    )
    return ", ".join(f"{param(key, kind)} {alias}" for key, kind, alias in columns) + ", "


def _redated(fixes: Fixes, date: str) -> str:
    """The reporting date with a device clock's fault undone (Fixes.clock_redated, Fixes.behind)."""
    whens = []
    if fixes.clock_redated:
        ingested = f"CAST(make_timestamp(ingestion_timestamp + {OFFSET_US}) AS DATE)"
        whens.append(f"WHEN ingestion_timestamp < event_timestamp THEN {ingested}")
    if fixes.behind:
        shifted = f"CAST(make_timestamp(event_timestamp + ({LAG}) // {HOUR_US} * {HOUR_US} + {OFFSET_US}) AS DATE)"
        versions = " OR ".join(f"(platform = '{p}' AND app_info.version = '{v}')" for p, v in fixes.behind)
        lagged = f"{LAG} BETWEEN {BEHIND_US[0]} AND {BEHIND_US[1]} AND ({LAG}) % {HOUR_US} < {WHOLE_HOURS_US}"
        whens.append(f"WHEN ({versions}) AND {lagged} THEN {shifted}")
    return f"CASE {' '.join(whens)} ELSE {date} END" if whens else date


def _rejoined(fixes: Fixes, user: str, session: str) -> tuple[str, str]:
    """An event's user and session, read as those of its device's last app_open before it where its own session
    holds none (Fixes.rejoined)."""
    if not fixes.rejoined:
        return user, session
    opened = f"bool_or(event_name = 'app_open') OVER (PARTITION BY user_pseudo_id, {session})"

    def last_opened(value: str) -> str:
        return (
            f"last_value(CASE WHEN event_name = 'app_open' THEN {value} END IGNORE NULLS) OVER (PARTITION BY "
            "device.device_id ORDER BY event_timestamp ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
        )

    return tuple(  # type: ignore[return-value]
        f"CASE WHEN {opened} THEN {value} ELSE coalesce({last_opened(value)}, {value}) END" for value in (user, session)
    )


def _planned(fixes: Fixes, name: str) -> str:
    """An event's name with an app version's unplanned name read as the funnel event it stands for."""
    whens = " ".join(
        f"WHEN platform = '{platform}' AND app_info.version = '{version}' AND event_name NOT IN ({PLANNED}) "
        f"THEN '{meant}'"
        for platform, version, meant in fixes.unplanned
    )
    return f"CASE {whens} ELSE {name} END" if whens else name


def _load_test(fixes: Fixes) -> list[str]:
    """The condition that leaves out a load test's events (an unlisted device that ran LOAD_SESSIONS sessions or
    more on a date), where Fixes.load_devices asks it."""
    if not fixes.load_devices:
        return []
    value = param("value", "double_value")
    busy = (
        "SELECT device.device_id dev, event_date bd FROM events WHERE event_name IN ('app_open', "
        "'payment_successful') GROUP BY ALL HAVING count(DISTINCT event_timestamp) FILTER (event_name = 'app_open') "
        f">= {LOAD_SESSIONS} AND count({value}) >= {LOAD_SESSIONS} AND count(DISTINCT {value}) = 1"
    )
    return [f"NOT EXISTS (SELECT 1 FROM ({busy}) b WHERE b.dev = events.device.device_id AND b.bd = events.event_date)"]


def _repaired_events(fixes: Fixes, session: str) -> str:
    """The QUALIFY clause that leaves out the events the audit expert's repairs undo (none: empty)."""
    keep = []
    if fixes.replayed:
        first = f"min({session}) OVER (PARTITION BY user_pseudo_id, event_name, event_timestamp)"
        keep.append(f"{session} IS NOT DISTINCT FROM {first}")
    if fixes.prefired:
        opened = f"min(event_timestamp) FILTER (event_name = 'app_open') OVER (PARTITION BY user_pseudo_id, {session})"
        launched = f"event_name = 'menu_open' AND event_timestamp - {opened} BETWEEN 0 AND {PREFIRED_US}"
        keep.append(f"NOT coalesce({launched}, FALSE)")  # a session without an app_open keeps its events
    return f" QUALIFY {' AND '.join(keep)}" if keep else ""


OPENED = "n = 'app_open' AND ok"  # a session's app_open that the metrics layer counts


def counted_session(fixes: Fixes) -> str:
    """The HAVING condition of a counted session (grouped by u, s over events_cte): not excluded, dated by its
    counted app_open, and clear of the faults `fixes` names (re-sent sessions without a session_start, unlisted
    bots)."""
    keep = ["NOT bool_or(x)", "date IS NOT NULL"]
    if fixes.idle_left_out:
        only_opened = "bool_and(n IN ('first_open', 'session_start', 'app_open', 'user_engagement'))"
        keep.append(f"NOT ({only_opened} AND coalesce(sum(g), 0) < {IDLE_MS})")
    if fixes.retried:
        keep.append("bool_or(n = 'session_start')")
    if fixes.bots:
        keep.append("u NOT IN (" + ", ".join(f"'{bot}'" for bot in fixes.bots) + ")")
    return " AND ".join(keep)


def sessions_cte(rules: frozenset[str] = ALL_RULES, fixes: Fixes = NO_FIXES, hours: bool = False) -> str:
    """`e` and `s`: one row per counted session (a counted app_open, no excluding event), dated and placed by its
    app_open, with the steps it reached (m0 to m4); where `hours`, its app_open's hour of the reporting zone (hr)
    too (read off each event's time, which `e` then keeps)."""
    # Every counted session reached the first step: its date is its counted app_open's.
    steps = ["1 m0", *(f"bool_or(n = '{step}' AND ok)::INT m{i}" for i, step in enumerate(FUNNEL_STEP_NAMES) if i)]
    columns = [f"min(d) FILTER ({OPENED}) date", "min(platform) platform", "min(c) country"]
    if hours:
        columns.append(f"CAST(((min(t) FILTER ({OPENED}) + {OFFSET_US}) // {HOUR_US}) % 24 AS INT) hr")
    columns += [
        f"min(v) FILTER ({OPENED}) app_version",
        f"{CHANNEL_OF_MEDIUM} channel",
        "CASE WHEN s = 1 THEN 'new' ELSE 'returning' END user_type",
        *steps,
    ]
    return (
        f"WITH {events_cte(rules, fixes, stamped=hours)}, s AS (SELECT {', '.join(columns)} "
        f"FROM e GROUP BY u, s HAVING {counted_session(fixes)})"
    )


def step_unnest(steps: Iterable[int]) -> str:
    """The columns k (the step's number, 1 to 4: RATE_COLUMNS' position plus one), n (sessions reaching the step's
    later event) and d (those reaching its earlier one) of one row per session and step."""
    steps = list(steps)
    return (
        f"unnest([{', '.join(str(k + 1) for k in steps)}]) k, "
        f"unnest([{', '.join(f'm{k + 1}' for k in steps)}]) n, unnest([{', '.join(f'm{k}' for k in steps)}]) d"
    )


def sql_text(value: object) -> str:
    return "NULL" if value is None else "'" + str(value).replace("'", "''") + "'"


# The context rows the expert reads, as text: what each is, its segment, its dates and what it says (the releases
# its tests read from their own table; partner notices and campaigns explain nothing it reports).
CONTEXT_SQL = (
    "SELECT 'window' what, NULL platform, NULL country, NULL detail, min(date) first, "
    "max(date) last, NULL note FROM dashboard "
    "UNION ALL SELECT 'experiment', platform, country, concat_ws('/', channel, user_type), "
    "start_date, "
    "end_date, target_step FROM experiments "
    "UNION ALL SELECT 'holiday', NULL, country, name, date, date, NULL FROM holidays "
    "UNION ALL SELECT 'tracking', platform, NULL, NULL, date, NULL, change FROM tracking_changelog "
    "ORDER BY what, first"
)


def wanted_values(rows: Sequence[tuple[object, ...]], columns: str) -> str:
    """The rows asked for (i, on_date, the rest of `columns`) as the common table `q(columns)`, written as runs: a
    VALUES row per run of dates that asks the same rest (the list of its rows' i, its first date: typed in the
    first row only, the later rows' text takes the column's type), one row of q per date."""
    runs: list[tuple[list[object], str, tuple[object, ...]]] = []
    for i, date, *rest in sorted(rows, key=lambda row: (str(row[2:]), str(row[1]))):
        last = runs[-1] if runs else None
        if last and last[2] == tuple(rest) and next_date(last[1], len(last[0])) == date:
            last[0].append(i)
        else:
            runs.append(([i], str(date), tuple(rest)))
    body = ", ".join(
        "("
        + ", ".join(
            ["[" + ", ".join(map(str, run)) + "]", sql_literal(first, typed=not n), *(sql_literal(v) for v in rest)]
        )
        + ")"
        for n, (run, first, rest) in enumerate(runs)
    )
    names = [name.strip() for name in columns.split(",")]
    return (
        f"qr({columns}) AS (VALUES {body}), q AS (SELECT unnest({names[0]}) {names[0]}, "
        f"{names[1]} + (generate_subscripts({names[0]}, 1) - 1)::INT {names[1]}, {', '.join(names[2:])} FROM qr)"
    )


def next_date(first: str, days: int) -> str:
    return (dt.date.fromisoformat(first) + dt.timedelta(days=days)).isoformat()


def sql_literal(value: object, typed: bool = True) -> str:
    if isinstance(value, bool) or value is None:
        return "NULL" if value is None else str(value).upper()
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    if typed and len(text) == 10 and text[4] == "-" and text[7] == "-":
        return f"DATE '{text}'"
    return sql_text(text)


EXCLUDED_COLUMNS = ("x_platform", "x_country", "x_app_version")  # a segment of the dashboard's fields left out


def metric_values_sql(
    rules: frozenset[str],
    fixes: Fixes,
    asked: Sequence[tuple[object, ...]],
    excluding: bool = False,
    with_entered: bool = False,
) -> str:
    """For each row asked (i, date, platform, country, app_version, channel, user_type, k: the metric's step, 0 for
    sessions), its segment's metric by the metrics layer on its date (`value`) and the median over the same
    weekday's other dates (`peers`): a count counts sessions, a rate divides sums. `excluding`: each row asked ends
    with a segment of the dashboard's fields (EXCLUDED_COLUMNS; all None: every session) whose sessions are left
    out. `with_entered`: each answer holds the sessions its value is over on the date too (`entered`: a rate's
    denominator)."""
    metric = (
        "CASE WHEN any_value(q.k) = 0 THEN count(*) ELSE sum(list_extract([m1, m2, m3, m4], q.k)) / "
        "nullif(sum(list_extract([m0, m1, m2, m3], q.k)), 0) END"
    )
    match = " AND ".join(f"(q.{f} IS NULL OR s.{f} = q.{f})" for f in SEGMENT_COLUMNS)
    columns = "i, on_date, " + ", ".join(SEGMENT_COLUMNS) + ", k"
    entered, counted = "", ""
    if excluding:
        inside = " AND ".join(f"(q.{x} IS NULL OR s.{x[2:]} = q.{x})" for x in EXCLUDED_COLUMNS)
        match += f" AND NOT ({inside})"
        columns += ", " + ", ".join(EXCLUDED_COLUMNS)
    if with_entered:
        entered = ", CASE WHEN any_value(q.k) = 0 THEN count(*) ELSE sum(list_extract([m0, m1, m2, m3], q.k)) END n"
        counted = ", max(n) FILTER (date = on_date) entered"
    return (
        f"{sessions_cte(rules, fixes)}, {wanted_values(asked, columns)}, "
        f"by_date AS (SELECT i, s.date, any_value(q.on_date) on_date, {metric} value{entered} FROM q JOIN s ON "
        f"{match} AND isodow(s.date) = isodow(q.on_date) GROUP BY i, s.date) "
        f"SELECT i, max(value) FILTER (date = on_date) value, median(value) FILTER (date <> on_date) peers{counted} "
        "FROM by_date GROUP BY i ORDER BY i"
    )


REVENUE_STEP = -1  # k of revenue_usd where a row asks for a step (0 sessions, 1 to 4 the rates)
