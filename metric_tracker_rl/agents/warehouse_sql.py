"""The warehouse expert's SQL: the metrics layer's counted sessions written over the raw events (each standing rule
one clause, so an ablation drops exactly that clause), and the statements built on them.

Every statement starts from the same common table `s`: one row per counted session with its reporting date, its
segment (platform, app_version, country, channel, user_type) and the funnel steps it reached (m0 to m4: app_open,
menu_open, product_added_to_cart, order_placed, payment_successful), as the metrics layer defines them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from metric_tracker_rl.world.events import REPORTING_UTC_OFFSET_HOURS
from metric_tracker_rl.world.metrics_layer import FUNNEL_STEP_NAMES, LATE_CUTOFF_DAYS, RATE_COLUMNS

# The metrics layer's rules, each a clause of the sessions' statement (an ablation leaves one out).
RULES: tuple[str, ...] = ("time_zone", "session", "deduplication", "internal_traffic", "debug_events", "bots",
                          "late_events", "currency", "consent")
ALL_RULES = frozenset(RULES)
OFFSET_US = REPORTING_UTC_OFFSET_HOURS * 3600 * 1_000_000
STEP_COLUMNS = tuple(f"m{i}" for i in range(len(FUNNEL_STEP_NAMES)))
SEGMENT_COLUMNS = ("platform", "country", "app_version", "channel", "user_type")
CHANNEL_OF_MEDIUM = "CASE min(m) WHEN 'cpc' THEN 'paid_search' ELSE min(m) END"  # m: the medium


def param(key: str, kind: str) -> str:
    """An event parameter's value by key (kind: int_value, string_value or double_value)."""
    return f"list_filter(event_params, lambda p: p.key = '{key}')[1].value.{kind}"


def _date(rules: frozenset[str]) -> str:
    """The reporting date: event_date (the reporting zone's), or the UTC date where the time zone is ignored."""
    return "event_date" if "time_zone" in rules else "CAST(make_timestamp(event_timestamp) AS DATE)"


def _excluded(rules: frozenset[str]) -> str:
    """An event that marks its session as standing traffic the rules exclude (FALSE where no rule applies)."""
    tags = []
    if "internal_traffic" in rules:
        tags.append("p.key = 'traffic_type' AND p.value.string_value = 'internal'")
    if "debug_events" in rules:
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


NO_FIXES = Fixes()
DAY_US = 86_400 * 1_000_000
HOUR_US = 3600 * 1_000_000
LAG = "ingestion_timestamp - event_timestamp"


def lag_within(days: int) -> str:
    """An event ingested `days` days after its stamp, within the hour (a skewed clock's or a late load's)."""
    return f"{LAG} BETWEEN {days * DAY_US} AND {days * DAY_US + HOUR_US}"


def events_cte(rules: frozenset[str] = ALL_RULES, fixes: Fixes = NO_FIXES, purchases: bool = False,
               stamped: bool = False) -> str:
    """`e`: the events a session is built from, one row each (its repeats once where de-duplication applies), with
    whether it counts (`ok`: ingested before the cut-off) and whether it excludes its session (`x`); where
    `purchases`, a payment's time, transaction id, value and currency too (t, tx, val, cur); where `stamped`, each
    event's time (t). Without a time, a session's events of one name, date and segment are one row: all a session's
    steps read."""
    stamp = "event_timestamp t, " if purchases or stamped else ""
    date = _date(rules)
    if fixes.skewed:
        date = f"CASE WHEN {lag_within(1)} THEN {date} + 1 ELSE {date} END"
    renamed = " ".join(f"WHEN '{recorded}' THEN '{meant}'" for recorded, meant in fixes.renamed)
    name = f"CASE event_name {renamed} ELSE event_name END" if renamed else "event_name"
    session = param("session_id", "int_value")
    user = "user_pseudo_id" if "session" in rules else "NULL"
    # `d`: the reporting date, named earlier in the same select list (DuckDB reads an alias defined to its left).
    cutoff = (f"ingestion_timestamp < epoch_us((d + {LATE_CUTOFF_DAYS})::TIMESTAMP) - {OFFSET_US}"
              if "late_events" in rules else "TRUE")
    if fixes.late_loaded:
        cutoff = f"({cutoff} OR {lag_within(3)})"
    consent = "WHERE privacy_info.analytics_storage = 'granted'" if "consent" in rules else ""
    # Read on every event; only a payment's are used (its repeats grouped by name, its purchases by payment_successful).
    paid = ", ".join(f"{param(key, kind)} {alias}"
                     for key, kind, alias in (("transaction_id", "string_value", "tx"),
                                              ("value", "double_value", "val"),
                                              ("currency", "string_value", "cur"))) + ", " if purchases else ""
    select = (f"SELECT {user} u, {session} s, {name} n, {date} d, {stamp}platform, "
              f"app_info.version v, geo.country c, traffic_source.medium m, {paid}{cutoff} ok, "
              f"{_excluded(rules)} x FROM events {consent}")
    if "deduplication" in rules:
        # A repeat is a copy of its event: its platform, version, country and medium (m) are the first's.
        kept = "any_value(tx) tx, any_value(val) val, any_value(cur) cur, " if purchases else ""
        kept = ("t, " if stamp else "") + "platform, v, c, m, " + kept
        select = f"SELECT u, s, n, d, {kept}bool_or(ok) ok, bool_or(x) x FROM ({select}) GROUP BY ALL"
    return f"e AS ({select})"


OPENED = "n = 'app_open' AND ok"  # a session's app_open that the metrics layer counts


def _counted(fixes: Fixes) -> str:
    """The HAVING condition of a counted session (grouped by u, s over events_cte): not excluded, dated by its
    counted app_open, and clear of the faults `fixes` names (re-sent sessions without a session_start, unlisted
    bots)."""
    keep = ["NOT bool_or(x)", "date IS NOT NULL"]
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
    columns += [f"min(v) FILTER ({OPENED}) app_version", f"{CHANNEL_OF_MEDIUM} channel",
                "CASE WHEN s = 1 THEN 'new' ELSE 'returning' END user_type", *steps]
    return (f"WITH {events_cte(rules, fixes, stamped=hours)}, s AS (SELECT {', '.join(columns)} "
            f"FROM e GROUP BY u, s HAVING {_counted(fixes)})")


def step_unnest(steps: Iterable[int]) -> str:
    """The columns k (the step's number, 1 to 4: RATE_COLUMNS' position plus one), n (sessions reaching the step's
    later event) and d (those reaching its earlier one) of one row per session and step."""
    steps = list(steps)
    return (f"unnest([{', '.join(str(k + 1) for k in steps)}]) k, "
            f"unnest([{', '.join(f'm{k + 1}' for k in steps)}]) n, unnest([{', '.join(f'm{k}' for k in steps)}]) d")


RATE_OF_STEP = {k + 1: rate for k, rate in enumerate(RATE_COLUMNS)}


# The searched dimensions (scan aliases): an app version is named with its platform.
DIMENSIONS: dict[str, tuple[str, ...]] = {"platform": ("p",), "country": ("c",), "channel": ("h",),
                                          "user_type": ("u",), "version": ("p", "v")}
ALIASES = {"p": "platform", "c": "country", "v": "app_version", "h": "channel", "u": "user_type"}


def cuboid_sets(max_dims: int = 3) -> list[tuple[str, ...]]:
    """The alias sets of every cuboid of one to `max_dims` dimensions (a version counts as one, with its platform)."""
    import itertools

    sets = []
    for size in range(1, max_dims + 1):
        for combo in itertools.combinations(DIMENSIONS, size):
            if "version" in combo and "platform" in combo:
                continue
            named = {alias for dimension in combo for alias in DIMENSIONS[dimension]}
            sets.append(tuple(alias for alias in "pcvhu" if alias in named))
    return sets


def residuals_ctes(steps: Iterable[int], versions: bool = True, sets: list[tuple[str, ...]] | None = None) -> str:
    """After sessions_cte: `g`, per date, step and cuboid (of `sets`, else every cuboid of one to three dimensions,
    with or without app versions), the residual r of its sessions reaching the step's later event against its
    leaves' baseline (each leaf, platform x country x channel x user type, converting as on the same weekday's other
    dates, pooled), the expected count e and the variance w (binomial, floored for a step converting nearly
    always)."""
    sets = sets if sets is not None else [s for s in cuboid_sets(3) if versions or "v" not in s]
    grouping = ", ".join("(" + ", ".join(s) + ")" for s in sets)
    used = {alias for s in sets for alias in s}
    named = ", ".join(alias if alias in used else f"NULL {alias}" for alias in "pvchu")
    baseline = "(sum(n) OVER w - n) / nullif(sum(d) OVER w - d, 0) q"
    window = "WINDOW w AS (PARTITION BY k, p, c, h, u, isodow(date))"

    def grouped(where: str = "", having: str = "") -> str:
        return (f"g AS (SELECT date, k, {named}, sum(n - q * d) r, sum(q * d) e, "
                f"sum(greatest(q * (1 - q), 0.1 * q) * d) w FROM j {where}GROUP BY date, k, GROUPING SETS ({grouping})"
                f"{having})")

    if "v" not in used:  # the leaves are the baseline's own cells
        return (f", l AS (SELECT date, platform p, country c, channel h, user_type u, {step_unnest(steps)} FROM s), "
                "lv AS (SELECT date, k, p, c, h, u, sum(n) n, sum(d) d FROM l GROUP BY ALL), "
                f"j AS (SELECT *, {baseline} FROM lv {window}), " + grouped(where="WHERE q IS NOT NULL "))
    return (f", l AS (SELECT date, platform p, app_version v, country c, channel h, user_type u, {step_unnest(steps)} "
            "FROM s), lv AS (SELECT date, k, p, v, c, h, u, sum(n) n, sum(d) d FROM l GROUP BY ALL), "
            "t0 AS (SELECT date, k, p, c, h, u, sum(n) n, sum(d) d FROM lv GROUP BY ALL), "
            f"b AS (SELECT date, k, p, c, h, u, {baseline} FROM t0 {window}), "
            "j AS (SELECT lv.*, q FROM lv JOIN b USING (date, k, p, c, h, u) WHERE q IS NOT NULL), "
            + grouped(having=" HAVING NOT (p = 'web' AND v IS NOT NULL)"))


def _text(value: object) -> str:
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
    "ORDER BY what, first")

DENIED = "privacy_info.analytics_storage = 'denied'"  # a cookieless ping: no consent
TRACE_SHARE = 0.2  # of a date's events (of a platform, or of all): a share of lagged events past any chance
CONSENT_SHARE = 0.5  # of a country's app_opens on a date without a user id (analytics storage denied)


def _event_traces(rules: frozenset[str]) -> str:
    """The raw events' traces by date: a platform's events ingested a day after their stamp (a clock a day early),
    all events ingested three days after it (a late load), and a country's app_opens without consent (cookieless
    pings)."""
    date = _date(rules)
    return (f"SELECT 'skew' what, {date} first, NULL last, platform, NULL app_version, NULL country, NULL detail, "
            f"NULL meant, count(*) FILTER ({lag_within(1)}) k FROM events GROUP BY ALL HAVING k > {TRACE_SHARE} * "
            f"count(*) UNION ALL SELECT 'late', {date}, NULL, NULL, NULL, NULL, NULL, NULL, count(*) FILTER "
            f"({lag_within(3)}) k FROM events GROUP BY ALL HAVING k > {TRACE_SHARE} * count(*) "
            f"UNION ALL SELECT 'consent', {date}, NULL, NULL, NULL, geo.country, NULL, NULL, count(*) FILTER "
            f"({DENIED}) k FROM events WHERE event_name = 'app_open' GROUP BY ALL HAVING k > {CONSENT_SHARE} * "
            "count(*)")


RETRY_MIN = 5  # sessions of a version on a date with an app_open and no session_start (an SDK re-sent it)
BOT_MIN, BOT_PER_DAY = 4, 2.5  # an unlisted device's idle sessions: at least so many, so many a date it had any


def _session_traces() -> str:
    """After `k`: per date and app version, counted sessions with no session_start (an app_open re-sent under a
    new session id), and each unlisted web device whose many sessions all stopped at the open (a bot: the brief's
    bot farms open web sessions)."""
    return ("SELECT 'retry', date, NULL, platform, app_version, NULL, NULL, NULL, count(*) "
            f"FROM k WHERE NOT started GROUP BY ALL HAVING count(*) >= {RETRY_MIN} "
            "UNION ALL SELECT 'bot', min(date), max(date), min(platform), NULL, "
            f"min(country), u, NULL, count(*) FROM k WHERE platform = 'web' GROUP BY u HAVING count(*) >= {BOT_MIN} "
            "AND NOT bool_or(menu) "
            f"AND count(*) >= {BOT_PER_DAY} * count(DISTINCT date)")


MISLABEL_MIN = 1  # purchases of a date in a currency neither their country's nor USD


def _counted_keys(fixes: Fixes, steps: bool = False) -> str:
    """After events_cte: `k`, each counted session's key (u, s) with its date, platform, country and app version;
    where `steps`, whether it sent a session_start (started) and reached the menu (menu)."""
    started = ", bool_or(n = 'session_start') started, bool_or(n = 'menu_open') menu" if steps else ""
    return (f"k AS (SELECT u, s, min(d) FILTER ({OPENED}) date, min(platform) platform, min(c) country, "
            f"min(v) FILTER ({OPENED}) app_version{started} FROM e GROUP BY u, s HAVING {_counted(fixes)})")


def _purchases(rules: frozenset[str], fixes: Fixes) -> str:
    """After `k`: `pk`, each counted purchase (one per transaction_id where de-duplication applies, else one per
    payment event) with its session's segment, value, currency (`cur`, the meant one where mislabelled) and the
    payment's reporting date (pd)."""
    if "deduplication" in rules:
        paid = ("SELECT u, s, tx, arg_min(val, t) val, arg_min(cur, t) cur, arg_min(d, t) pd, min(t) t FROM e "
                "WHERE n = 'payment_successful' AND ok GROUP BY u, s, tx")
    else:
        paid = "SELECT u, s, tx, val, cur, d pd, t FROM e WHERE n = 'payment_successful' AND ok"
    if fixes.resent:
        paid = f"SELECT * FROM ({paid}) QUALIFY tx = first_value(tx) OVER (PARTITION BY u, s ORDER BY t)"
    dates: dict[tuple[str, ...], list[str]] = {}
    for date, *where in fixes.mislabelled:  # one clause per mislabel, naming its dates
        dates.setdefault(tuple(where), []).append(f"DATE '{date}'")
    meant = " ".join(f"WHEN k.date IN ({', '.join(days)}) AND k.platform = '{platform}' AND k.country = '{country}' "
                     f"AND p.cur = '{sent}' THEN '{right}'" for (platform, country, sent, right), days in dates.items())
    currency = f"CASE {meant} ELSE p.cur END" if meant else "p.cur"
    return (f"p AS ({paid}), pk AS (SELECT k.date, k.platform, k.country, k.app_version, k.u, k.s, p.tx, p.val, "
            f"{currency} cur, p.pd FROM k JOIN p ON k.u IS NOT DISTINCT FROM p.u AND k.s IS NOT DISTINCT FROM p.s)")


def traces_sql(rules: frozenset[str] = ALL_RULES) -> str:
    """Every trace of a recording fault, one row each (what, its first and last date, segment, detail, meant, k):
    the raw events' (skew, late, consent), the counted sessions' (retry, bot: the device in detail) and the
    purchases': per date and app version, counted sessions with two or more purchases (resend: an SDK re-sending
    payments under new transaction ids), and, where currency is read, per date, platform and country, purchases in
    a currency neither their country's usual one (the one most of its purchases carry) nor USD, when they are most
    of the rest (currency: the one sent in detail, the usual one in meant)."""
    count = "count(DISTINCT tx)" if "deduplication" in rules else "count(*)"
    resend = ("UNION ALL SELECT 'resend', date, NULL, platform, app_version, NULL, NULL, NULL, "
              f"count(*) k FROM (SELECT date, platform, app_version FROM pk "
              f"GROUP BY date, platform, app_version, u, s HAVING {count} >= 2) GROUP BY ALL HAVING k >= {RETRY_MIN} ")
    mislabel = ("UNION ALL SELECT 'currency', date, NULL, platform, NULL, country, "
                "mode(cur) FILTER (cur NOT IN (usual, 'USD')), any_value(usual), "
                "count(*) FILTER (cur NOT IN (usual, 'USD')) k FROM pk JOIN (SELECT country, mode(cur) usual FROM pk "
                f"GROUP BY country) USING (country) GROUP BY date, platform, country HAVING k >= {MISLABEL_MIN} AND "
                "k > 0.5 * count(*) FILTER (cur <> 'USD') ") if "currency" in rules else ""
    return (f"WITH {events_cte(rules, purchases=True)}, {_counted_keys(NO_FIXES, steps=True)}, "
            f"{_purchases(rules, NO_FIXES)} {_event_traces(rules)} UNION ALL {_session_traces()} "
            f"{resend}{mislabel}ORDER BY ALL")


def revenue_values_sql(rules: frozenset[str], fixes: Fixes, asked: Sequence[tuple[object, ...]]) -> str:
    """For each row asked (i, date, platform, country, app_version), its segment's revenue_usd on that date by the
    metrics layer with the faults undone: each counted purchase's value over its currency's units per USD on the
    payment's date (the raw value where currency is not read)."""
    usd = "p.val / r.units_per_usd" if "currency" in rules else "p.val"
    rates = "LEFT JOIN currency_rates r ON r.currency = p.cur AND r.date = p.pd" if "currency" in rules else ""
    match = " AND ".join(f"(q.{f} IS NULL OR p.{f} = q.{f})" for f in ("platform", "country", "app_version"))
    return (f"WITH {events_cte(rules, fixes, purchases=True)}, {_counted_keys(fixes)}, {_purchases(rules, fixes)}, "
            f"{wanted_values(asked, 'i, on_date, platform, country, app_version')} "
            f"SELECT i, coalesce(sum({usd}), 0) value FROM q LEFT JOIN (pk p {rates}) ON p.date = q.on_date AND "
            f"{match} GROUP BY i ORDER BY i")


def wanted_values(rows: Sequence[tuple[object, ...]], columns: str) -> str:
    """The rows asked for (i, on_date, the rest of `columns`) as the common table `q(columns)`, written as runs: a
    VALUES row per run of dates that asks the same rest (the list of its rows' i, its first date: typed in the
    first row only, the later rows' text takes the column's type), one row of q per date."""
    runs: list[tuple[list[object], str, tuple[object, ...]]] = []
    for i, date, *rest in sorted(rows, key=lambda row: (str(row[2:]), str(row[1]))):
        last = runs[-1] if runs else None
        if last and last[2] == tuple(rest) and _next_date(last[1], len(last[0])) == date:
            last[0].append(i)
        else:
            runs.append(([i], str(date), tuple(rest)))
    body = ", ".join("(" + ", ".join(["[" + ", ".join(map(str, run)) + "]", _sql_literal(first, typed=not n),
                                      *(_sql_literal(v) for v in rest)]) + ")"
                     for n, (run, first, rest) in enumerate(runs))
    names = [name.strip() for name in columns.split(",")]
    return (f"qr({columns}) AS (VALUES {body}), q AS (SELECT unnest({names[0]}) {names[0]}, "
            f"{names[1]} + (generate_subscripts({names[0]}, 1) - 1)::INT {names[1]}, {', '.join(names[2:])} FROM qr)")


def _next_date(first: str, days: int) -> str:
    return (dt.date.fromisoformat(first) + dt.timedelta(days=days)).isoformat()


def _sql_literal(value: object, typed: bool = True) -> str:
    if isinstance(value, bool) or value is None:
        return "NULL" if value is None else str(value).upper()
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    if typed and len(text) == 10 and text[4] == "-" and text[7] == "-":
        return f"DATE '{text}'"
    return _text(text)


def metric_values_sql(rules: frozenset[str], fixes: Fixes, asked: Sequence[tuple[object, ...]]) -> str:
    """For each row asked (i, date, platform, country, app_version, channel, user_type, k: the metric's step, 0 for
    sessions), its segment's metric by the metrics layer on its date (`value`) and the median over the same
    weekday's other dates (`peers`): a count counts sessions, a rate divides sums."""
    metric = ("CASE WHEN any_value(q.k) = 0 THEN count(*) ELSE sum(list_extract([m1, m2, m3, m4], q.k)) / "
              "nullif(sum(list_extract([m0, m1, m2, m3], q.k)), 0) END")
    match = " AND ".join(f"(q.{f} IS NULL OR s.{f} = q.{f})" for f in SEGMENT_COLUMNS)
    columns = "i, on_date, " + ", ".join(SEGMENT_COLUMNS) + ", k"
    return (f"{sessions_cte(rules, fixes)}, {wanted_values(asked, columns)}, "
            f"by_date AS (SELECT i, s.date, any_value(q.on_date) on_date, {metric} value FROM q JOIN s ON {match} "
            "AND isodow(s.date) = isodow(q.on_date) GROUP BY i, s.date) "
            "SELECT i, max(value) FILTER (date = on_date) value, median(value) FILTER (date <> on_date) peers "
            "FROM by_date GROUP BY i ORDER BY i")


REVENUE_STEP = -1  # k of revenue_usd where a row asks for a step (0 sessions, 1 to 4 the rates)


def defect_values_sql(rules: frozenset[str], fixes: Fixes, asked: Sequence[tuple[object, ...]]) -> str:
    """For each row asked (i, date, platform, country, app_version, channel, user_type, k), the dashboard's value
    of the metric on that segment and date (`observed`: a rate from the sums of its rows; revenue_usd where k is
    REVENUE_STEP), the metrics layer's with the faults undone (`value`: a count counts sessions, a rate divides
    sums) and, where a row asks for a country's sessions (a consent drop's), the sessions its app_opens without
    consent stand for (`denied`, see _denied)."""
    metric = ("CASE WHEN any_value(q.k) = 0 THEN count(*) ELSE sum(list_extract([m1, m2, m3, m4], q.k)) / "
              "nullif(sum(list_extract([m0, m1, m2, m3], q.k)), 0) END")
    match = " AND ".join(f"(q.{f} IS NULL OR s.{f} = q.{f})" for f in SEGMENT_COLUMNS)
    columns = ("sessions", "menu_sessions", "cart_sessions", "order_sessions", "payment_sessions")
    listed = "[" + ", ".join(f"sum({c})" for c in columns) + "]"
    board = " AND ".join(f"(q.{f} IS NULL OR d.{f} = q.{f})" for f in ("platform", "country", "app_version"))
    wanted = wanted_values(asked, "i, on_date, " + ", ".join(SEGMENT_COLUMNS) + ", k")
    consent = any(row[-1] == 0 and row[3] is not None for row in asked)
    return (f"{sessions_cte(rules, fixes)}, {wanted}, "
            f"o AS (SELECT i, any_value(k) k, {listed} n, sum(d.revenue_usd) r FROM q LEFT JOIN dashboard d ON "
            f"d.date = q.on_date AND {board} GROUP BY i), "
            f"m AS (SELECT i, {metric} value FROM q JOIN s ON {match} AND s.date = q.on_date GROUP BY i)"
            f"{', ' + _denied(rules) if consent else ''} "
            f"SELECT i, CASE WHEN k = {REVENUE_STEP} THEN coalesce(r, 0) WHEN k = 0 THEN coalesce(n[1], 0) "
            f"ELSE n[k + 1] / nullif(n[k], 0) END observed, value, {'denied' if consent else 'NULL denied'} "
            f"FROM o LEFT JOIN m USING (i) {'LEFT JOIN c USING (i) ' if consent else ''}ORDER BY i")


def _denied(rules: frozenset[str]) -> str:
    """After `q` and `s`: `c`, for each row of a country's sessions, the sessions the metrics layer would count
    without the fault: those it counts on the date, and those its app_opens without consent stand for (those
    app_opens, each once, counted by the cut-off, less the median of the same weekday's other dates: the share that
    always denies), at the share of the country's app_opens with consent it counts on those other dates (the rest
    is traffic the rules exclude)."""
    date = _date(rules)
    cutoff = f"ingestion_timestamp < epoch_us(CAST({date} + {LATE_CUTOFF_DAYS} AS TIMESTAMP)) - {OFFSET_US}"
    return (f"dn AS (SELECT {date} date, geo.country country, count(DISTINCT event_timestamp) FILTER ({DENIED}) k, "
            f"count(DISTINCT event_timestamp) FILTER (NOT {DENIED}) a FROM events WHERE event_name = 'app_open' "
            f"AND {cutoff} GROUP BY ALL), sc AS (SELECT date, country, count(*) n FROM s GROUP BY ALL), "
            "c AS (SELECT i, coalesce(sum(n) FILTER (dn.date = on_date), 0) + (max(dn.k) FILTER (dn.date = on_date) "
            "- median(dn.k) FILTER (dn.date <> on_date)) * sum(n) FILTER (dn.date <> on_date) / sum(a) FILTER "
            "(dn.date <> on_date) denied FROM q JOIN dn ON dn.country = q.country AND isodow(dn.date) = "
            "isodow(q.on_date) LEFT JOIN sc ON sc.date = dn.date AND sc.country = dn.country WHERE q.k = 0 GROUP BY i)")


SPREAD = 0.04  # a cuboid's conversion varies from date to date by about this share of it, beyond sampling
MIN_EXPECTED = 5  # expected conversions a cuboid needs on a date to be read
RUN_DAYS = 5  # consecutive dates a run scan pools, at most (a level shift's longest)
RUN_TOP = 12
HOST_Z = 3.0  # a single date's fall where a concurrent incident may lie: read by the expert against its host


def z_of(r: str, e: str, w: str) -> str:
    return f"{r} / sqrt({w} + ({SPREAD} * {e}) ^ 2)"


def pooled_sql() -> str:
    """After `y` (lists by date of a cuboid's last RUN_DAYS dates) and `n` (a run's length): the run's residual rs,
    expected es and variance vs pooled over its last n dates: each date's spread of conversion is its own, so the
    variances add (a run's weaker first and last dates add to its evidence)."""
    return (f"list_sum(rl[-n:]) rs, list_sum(el[-n:]) es, list_sum(wl[-n:]) + {SPREAD ** 2:g} * "
            "list_sum(list_transform(el[-n:], lambda x: x * x)) vs")


def run_scan_sql(rules: frozenset[str], fixes: Fixes, steps: tuple[int, ...], bars: dict[int, float],
                 hosts: Sequence[str] = ()) -> str:
    """Per step and cuboid of one or two fields (no app version: a version's falls are the releases'), its falls
    pooled over one to RUN_DAYS consecutive dates (scaled by the cuboid's own spread of a date's z over the window,
    where wider than the model's) beyond the bar of a cuboid naming so many fields (`bars`), and the falls of a
    single date beyond HOST_Z on a date where a concurrent incident may lie (one of `hosts`, an incident's dates,
    or a date of a run of several dates beyond the lowest bar): of those, each one no stronger run overlaps (on its
    step, in its dates and cuboid: one fall seen from several cuboids and lengths is its strongest), the RUN_TOP
    strongest with its first date, length, z and the parent its fall ripples through (`wider`, see _ripple)."""
    sets = [s for s in cuboid_sets(2) if "v" not in s]
    fields = " + ".join(f"({a} IS NOT NULL)::INT" for a in "pchu")
    bar = f"CASE {fields} " + " ".join(f"WHEN {named} THEN {z:g}" for named, z in sorted(bars.items())) + " END"
    same = " AND ".join(f"coalesce(a.{x} = b.{x}, TRUE)" for x in "pchu")  # a field either leaves open: any value
    listed = "".join(f"first = {_sql_literal(a)} OR " if a == b else f"first BETWEEN {_sql_literal(a)} AND '{b}' OR "
                     for a, b in date_runs(hosts))
    return (sessions_cte(rules, fixes) + residuals_ctes(steps, sets=sets)
            + ", y AS (SELECT *, list(r) OVER x rl, list(e) OVER x el, list(w) OVER x wl, list(date) OVER x dl, "
            f"greatest(1, 1.4826 * mad({z_of('r', 'e', 'w')}) OVER (PARTITION BY k, p, c, h, u)) sd "
            f"FROM g WINDOW x AS (PARTITION BY k, p, c, h, u ORDER BY date ROWS {RUN_DAYS - 1} PRECEDING)), "
            f"runs AS (SELECT k, p, c, h, u, dl[-n] first, date last, n, {pooled_sql()}, rs / sqrt(vs) / sd z "
            f"FROM y, range(1, {RUN_DAYS + 1}) t(n) WHERE len(rl) >= n AND date - dl[-n] = n - 1 "
            f"AND es >= {MIN_EXPECTED}), "
            f"clear AS (SELECT * FROM runs a WHERE z <= -({bar}) OR n = 1 AND z <= -{HOST_Z:g} AND ({listed}"
            f"EXISTS (SELECT 1 FROM runs b WHERE b.n > 1 AND b.z <= -{min(bars.values()):g} AND a.first BETWEEN "
            "b.first AND b.last))), "
            "top AS (SELECT *, row_number() OVER (ORDER BY z) i FROM clear a WHERE NOT EXISTS (SELECT 1 FROM clear b "
            "WHERE b.k = a.k AND b.z < a.z AND "
            f"b.first <= a.last AND a.first <= b.last AND {same}) ORDER BY z LIMIT {RUN_TOP}), {_ripple()} "
            "SELECT k, p platform, c country, h channel, u user_type, first, n, round(z, 2) z, wider "
            "FROM top LEFT JOIN wide USING (i) ORDER BY z")


RIPPLE_Z, RIPPLE_SHARE = 2.0, 0.5  # the rest of a parent fell beyond this z, by this share of the run's own fall


def _ripple() -> str:
    """After `top` (a run scan's strongest runs) and `runs`: `wide`, for each run of two fields, the value of the one
    whose cuboid (its parent) the fall ripples through: the rest of the parent fell too over the run's dates, beyond
    RIPPLE_Z and by RIPPLE_SHARE of the run's own fall or as much as its noise cannot tell from it (a fall seen
    strongest in a part of its cuboid by chance belongs to the whole). Of two such parents, the one whose rest fell
    further. The rest's variance is the parent's less the run's (no smaller than its own)."""
    parent = " AND ".join(f"(o.{y} IS NULL OR o.{y} = t.{y})" for y in "pchu")
    return ("rest AS (SELECT i, coalesce(o.p, o.c, o.h, o.u) x, o.rs - t.rs r, o.es - t.es e, o.vs - t.vs v, "
            f"t.rs / t.es own FROM top t JOIN runs o ON o.k = t.k AND o.last = t.last AND o.n = t.n AND {parent} "
            "WHERE o.es > t.es), "
            "wide AS (SELECT i, arg_min(x, r / sqrt(v)) wider FROM rest "
            f"WHERE r / sqrt(v) <= -{RIPPLE_Z:g} AND (r / e <= {RIPPLE_SHARE:g} * own "
            "OR abs(r / e - own) <= 2 * sqrt(v) / e) GROUP BY ALL)")


def date_runs(dates: Iterable[str]) -> list[tuple[str, str]]:
    """The dates as runs of consecutive dates: (first, last) each."""
    runs: list[tuple[str, str]] = []
    for date in sorted(set(dates)):
        if runs and _next_date(runs[-1][1], 1) == date:
            runs[-1] = (runs[-1][0], date)
        else:
            runs.append((date, date))
    return runs


CONTEXT_DATES = 7  # dates from a release's first (or over an experiment) whose residuals are read
FIRST_DATES = 3  # the dates a regression or breakage lasts at least, from its first


def _context_tests(floor: float) -> tuple[str, str]:
    """After sessions_cte: the common tables and the SELECT of each release's version (a release breaks a step on
    its new version) on the two late steps over its first CONTEXT_DATES dates, and each experiment's arm on every
    step over its dates: per date the residual r, the expected e and the variance w (lists by date from the first;
    an experiment's with its dates' offsets from its start), where the pooled fall over them or over the first
    FIRST_DATES reaches `floor`."""
    sets = [("p", "v"), ("p",), ("c",), ("p", "c"), ("p", "h"), ("p", "u"), ("c", "h"), ("c", "u")]
    same = " AND ".join(f"g.{a} IS NOT DISTINCT FROM a.{a}" for a in "pchu")
    first = [f"sum({x}) FILTER (dd < {FIRST_DATES})" for x in "rew"]  # a regression's shortest run
    ctes = (residuals_ctes(range(4), sets=sets)
            + ", rel AS (SELECT platform p, app_version v, min(rollout_start) f FROM releases GROUP BY ALL), "
            "a AS (SELECT experiment, platform p, country c, channel h, user_type u, target_step, start_date f, "
            "end_date l FROM experiments), t AS (SELECT 'release' what, rel.v detail, g.date - rel.f dd, g.* "
            f"FROM g JOIN rel USING (p, v) WHERE g.k >= 3 AND g.date BETWEEN rel.f AND rel.f + {CONTEXT_DATES - 1} "
            "UNION ALL SELECT 'experiment', a.experiment, g.date - a.f, g.* FROM g JOIN a ON " + same
            + " AND g.v IS NULL AND g.date BETWEEN a.f AND a.l)")
    select = ("SELECT what, detail, k, p platform, c country, v app_version, h channel, u user_type, min(date) first, "
              "list(round(r, 1) ORDER BY dd) r, list(round(e, 1) ORDER BY dd) e, list(round(w, 1) ORDER BY dd) w, "
              "list(dd ORDER BY dd) FILTER (what = 'experiment') offsets FROM t GROUP BY ALL "
              f"HAVING least({z_of('sum(r)', 'sum(e)', 'sum(w)')}, {z_of(*first)}) <= -{floor} ORDER BY ALL")
    return ctes, select


BLOCK = 3  # hours of a block: every outage or payment failure (three hours or more) holds one whole
OUTAGE_RATIO, BREAK_RATIO = 0.35, 0.3  # a block's sessions (conversions) at most this share of its baseline
# A block's fall as the signed root of its likelihood ratio (Poisson for sessions, binomial for payments): sampling
# of a few sessions an hour is far from normal.


def poisson_z(o: str, b: str) -> str:
    """The signed root of the likelihood ratio of `o` sessions against `b` expected."""
    return f"-sqrt(2 * (coalesce({o} * ln(nullif({o}, 0) / {b}), 0) + {b} - {o}))"




def binomial_z(n: str, d: str, e: str) -> str:
    """The signed root of the likelihood ratio of `n` conversions of `d` arrivals against `e` expected."""
    return (f"-sqrt(2 * (coalesce({n} * ln(nullif({n}, 0) / {e}), 0) + coalesce(({d} - {n}) * ln(nullif({d} - {n}, 0) "
            f"/ ({d} - {e})), 0)))")


OUTAGE_Z, BREAK_Z = 5.5, 5.5
REST_SHARE = 0.75  # an outage leaves the rest of the day's sessions at this share of their baseline or more
# Hours of the longest outage or payment failure: each is read over a block of BLOCK hours and over one this long, and
# an outage's rest of the day outside as many hours either side of its block as make one this long.
LONGEST_BLOCK = 7
HOURS_TOP = 10


def _hours() -> tuple[str, str]:
    """After sessions_cte (with `hours`): the common tables and the SELECT of the falls per date and cuboid of
    platform, country or both, by blocks of BLOCK and of LONGEST_BLOCK hours:

    - `outage`: the block whose sessions fell most against the same weekday's other dates (their mean that hour),
      where they fell to OUTAGE_RATIO of that or less beyond OUTAGE_Z, the day lost at least half of the block's
      loss (hours moved to others are a timing shift) and the rest of the day (outside the longest outage that
      holds the block) kept REST_SHARE of its sessions (a whole day's fall is demand);
    - `payments`: the block whose payments fell most against its orders (at the cuboid's rate on the same weekday's
      other dates), where they fell to BREAK_RATIO of that or less beyond BREAK_Z.

    Each row: what, its date (first, as the tests name theirs), cuboid, z; by what, strongest first."""
    cuboid = "nullif(p, '') platform, nullif(c, '') country"
    both = ", ".join(f"[sum({x}) OVER x, sum({x}) OVER l] {name}"
                     for x, name in (("o", "lo"), ("b", "lb"), ("n", "ln"), ("d", "ld"), ("q * d", "le")))
    ctes = (", hh AS (SELECT date, hr, coalesce(platform, '') p, "
            "coalesce(country, '') c, count(*) o, sum(m4) n, sum(m3) d FROM s "
            "GROUP BY date, hr, GROUPING SETS ((platform), (country), (platform, country))), "
            "grid AS (SELECT * FROM (SELECT DISTINCT p, c FROM hh) CROSS JOIN (SELECT DISTINCT date FROM s) "
            "CROSS JOIN (SELECT range hr FROM range(24))), "
            "z AS (SELECT grid.*, coalesce(o, 0) o, coalesce(n, 0) n, coalesce(d, 0) d FROM grid LEFT JOIN hh "
            "USING (p, c, date, hr)), "
            "bb AS (SELECT *, (sum(o) OVER w - o) / (count(*) OVER w - 1) b, "
            "least((sum(n) OVER v - sum(n) OVER u) / nullif(sum(d) OVER v - sum(d) OVER u, 0), 0.95) q FROM z "
            "WINDOW w AS (PARTITION BY p, c, isodow(date), hr), v AS (PARTITION BY p, c, isodow(date)), "
            "u AS (PARTITION BY p, c, date)), "
            f"blk AS (SELECT *, sum(o) OVER y dayo, sum(b) OVER y dayb, sum(o) OVER m mo, sum(b) OVER m mb, {both} "
            f"FROM bb WINDOW x AS (PARTITION BY p, c, date ORDER BY hr ROWS {BLOCK - 1} PRECEDING), "
            f"m AS (PARTITION BY p, c, date ORDER BY hr ROWS BETWEEN {LONGEST_BLOCK - 1} PRECEDING AND "
            f"{LONGEST_BLOCK - BLOCK} FOLLOWING), l AS (PARTITION BY p, c, date ORDER BY hr ROWS "
            f"{LONGEST_BLOCK - 1} PRECEDING), y AS (PARTITION BY p, c, date)), "
            "bl AS (SELECT *, unnest(lo) bo, unnest(lb) bbk, unnest(ln) bn, unnest(ld) bd, unnest(le) be FROM blk "
            f"WHERE hr >= {BLOCK - 1}), "
            f"zz AS (SELECT *, CASE WHEN bo <= {OUTAGE_RATIO} * bbk THEN {poisson_z('bo', 'bbk')} END oz, "
            f"CASE WHEN bn <= {BREAK_RATIO} * be THEN {binomial_z('bn', 'bd', 'be')} END bz FROM bl), "
            f"hit AS (SELECT 'outage' what, *, oz v FROM zz WHERE oz <= -{OUTAGE_Z} "
            f"AND dayb - dayo >= 0.5 * (bbk - bo) AND dayo - mo >= {REST_SHARE} * (dayb - mb) "
            "UNION ALL SELECT 'payments', *, bz FROM zz "
            f"WHERE bz <= -{BREAK_Z})")
    select = (f"SELECT * FROM (SELECT what, date first, {cuboid}, round(v, 2) z FROM hit "
              "QUALIFY row_number() OVER (PARTITION BY what, p, c, date ORDER BY v) = 1) "
              f"QUALIFY row_number() OVER (PARTITION BY what ORDER BY z) <= {HOURS_TOP} ORDER BY what, z")
    return ctes, select


HOURS_WHAT = ("outage", "payments")  # the rows of context_tests_and_hours_sql that are the hours'


def context_tests_and_hours_sql(rules: frozenset[str], fixes: Fixes, floor: float) -> str:
    """The releases' and experiments' tests (_context_tests: what 'release' or 'experiment') and the blocks of hours
    that collapsed (_hours: what 'outage' or 'payments') in one statement over the same sessions, each part with its
    own order (the hours' date named `first` like the tests', so their rows share every column they can)."""
    tests, tested = _context_tests(floor)
    hours, blocks = _hours()
    return f"{sessions_cte(rules, fixes, hours=True)}{tests}{hours} ({tested}) UNION ALL BY NAME ({blocks})"
