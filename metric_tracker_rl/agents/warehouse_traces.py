"""The warehouse expert's SQL for data defects: the traces a recording fault leaves in the raw events, the counted
sessions and their purchases, and the values of the metrics a defect corrupts, as the dashboard shows them and as
the metrics layer counts them with the fault undone."""

from __future__ import annotations

from collections.abc import Sequence

from metric_tracker_rl.agents.warehouse_sql import (
    ALL_RULES,
    NO_FIXES,
    OFFSET_US,
    OPENED,
    RATE_FACTOR,
    REVENUE_STEP,
    SEGMENT_COLUMNS,
    Fixes,
    counted_session,
    events_cte,
    lag_within,
    reporting_date,
    sessions_cte,
    wanted_values,
)
from metric_tracker_rl.world.metrics_layer import LATE_CUTOFF_DAYS

DENIED = "privacy_info.analytics_storage = 'denied'"  # a cookieless ping: no consent
TRACE_SHARE = 0.2  # of a date's events (of a platform, or of all): a share of lagged events past any chance
CONSENT_SHARE = 0.5  # of a country's app_opens on a date without a user id (analytics storage denied)


def _event_traces(rules: frozenset[str]) -> str:
    """The raw events' traces by date: a platform's events ingested a day after their stamp (a clock a day early),
    all events ingested three days after it (a late load), and a country's app_opens without consent (cookieless
    pings)."""
    date = reporting_date(rules)
    return (
        f"SELECT 'skew' what, {date} first, NULL last, platform, NULL app_version, NULL country, NULL detail, "
        f"NULL meant, count(*) FILTER ({lag_within(1)}) k FROM events GROUP BY ALL HAVING k > {TRACE_SHARE} * "
        f"count(*) UNION ALL SELECT 'late', {date}, NULL, NULL, NULL, NULL, NULL, NULL, count(*) FILTER "
        f"({lag_within(3)}) k FROM events GROUP BY ALL HAVING k > {TRACE_SHARE} * count(*) "
        f"UNION ALL SELECT 'consent', {date}, NULL, NULL, NULL, geo.country, NULL, NULL, count(*) FILTER "
        f"({DENIED}) k FROM events WHERE event_name = 'app_open' GROUP BY ALL HAVING k > {CONSENT_SHARE} * "
        "count(*)"
    )


RETRY_MIN = 5  # sessions of a version on a date with an app_open and no session_start (an SDK re-sent it)
BOT_MIN, BOT_PER_DAY = 4, 2.5  # an unlisted device's idle sessions: at least so many, so many a date it had any


def _session_traces() -> str:
    """After `k`: per date and app version, counted sessions with no session_start (an app_open re-sent under a
    new session id), and each unlisted web device whose many sessions all stopped at the open (a bot: the brief's
    bot farms open web sessions)."""
    return (
        "SELECT 'retry', date, NULL, platform, app_version, NULL, NULL, NULL, count(*) "
        f"FROM k WHERE NOT started GROUP BY ALL HAVING count(*) >= {RETRY_MIN} "
        "UNION ALL SELECT 'bot', min(date), max(date), min(platform), NULL, "
        f"min(country), u, NULL, count(*) FROM k WHERE platform = 'web' GROUP BY u HAVING count(*) >= {BOT_MIN} "
        "AND NOT bool_or(menu) "
        f"AND count(*) >= {BOT_PER_DAY} * count(DISTINCT date)"
    )


MISLABEL_MIN = 1  # purchases of a date in a currency neither their country's nor USD


def _counted_keys(fixes: Fixes, steps: bool = False) -> str:
    """After events_cte: `k`, each counted session's key (u, s) with its date, platform, country and app version;
    where `steps`, whether it sent a session_start (started) and reached the menu (menu)."""
    started = ", bool_or(n = 'session_start') started, bool_or(n = 'menu_open') menu" if steps else ""
    return (
        f"k AS (SELECT u, s, min(d) FILTER ({OPENED}) date, min(platform) platform, min(c) country, "
        f"min(v) FILTER ({OPENED}) app_version{started} FROM e GROUP BY u, s HAVING {counted_session(fixes)})"
    )


def _purchases(rules: frozenset[str], fixes: Fixes) -> str:
    """After `k`: `pk`, each counted purchase (one per transaction_id where de-duplication applies, else one per
    payment event) with its session's segment, value, currency (`cur`, the meant one where mislabelled) and the
    payment's reporting date (pd)."""
    if "deduplication" in rules:
        paid = (
            "SELECT u, s, tx, arg_min(val, t) val, arg_min(cur, t) cur, arg_min(d, t) pd, min(t) t FROM e "
            "WHERE n = 'payment_successful' AND ok GROUP BY u, s, tx"
        )
    else:
        paid = "SELECT u, s, tx, val, cur, d pd, t FROM e WHERE n = 'payment_successful' AND ok"
    if fixes.resent:
        paid = f"SELECT * FROM ({paid}) QUALIFY tx = first_value(tx) OVER (PARTITION BY u, s ORDER BY t)"
    dates: dict[tuple[str, ...], list[str]] = {}
    for date, *where in fixes.mislabelled:  # one clause per mislabel, naming its dates
        dates.setdefault(tuple(where), []).append(f"DATE '{date}'")
    meant = " ".join(
        f"WHEN k.date IN ({', '.join(days)}) AND k.platform = '{platform}' AND k.country = '{country}' "
        f"AND p.cur = '{sent}' THEN '{right}'"
        for (platform, country, sent, right), days in dates.items()
    )
    currency = f"CASE {meant} ELSE p.cur END" if meant else "p.cur"
    return (
        f"p AS ({paid}), pk AS (SELECT k.date, k.platform, k.country, k.app_version, k.u, k.s, p.tx, p.val, "
        f"{currency} cur, p.pd FROM k JOIN p ON k.u IS NOT DISTINCT FROM p.u AND k.s IS NOT DISTINCT FROM p.s)"
    )


def traces_sql(rules: frozenset[str] = ALL_RULES) -> str:
    """Every trace of a recording fault, one row each (what, its first and last date, segment, detail, meant, k):
    the raw events' (skew, late, consent), the counted sessions' (retry, bot: the device in detail) and the
    purchases': per date and app version, counted sessions with two or more purchases (resend: an SDK re-sending
    payments under new transaction ids), and, where currency is read, per date, platform and country, purchases in
    a currency neither their country's usual one (the one most of its purchases carry) nor USD, when they are most
    of the rest (currency: the one sent in detail, the usual one in meant)."""
    count = "count(DISTINCT tx)" if "deduplication" in rules else "count(*)"
    resend = (
        "UNION ALL SELECT 'resend', date, NULL, platform, app_version, NULL, NULL, NULL, "
        f"count(*) k FROM (SELECT date, platform, app_version FROM pk "
        f"GROUP BY date, platform, app_version, u, s HAVING {count} >= 2) GROUP BY ALL HAVING k >= {RETRY_MIN} "
    )
    mislabel = (
        (
            "UNION ALL SELECT 'currency', date, NULL, platform, NULL, country, "
            "mode(cur) FILTER (cur NOT IN (usual, 'USD')), any_value(usual), "
            "count(*) FILTER (cur NOT IN (usual, 'USD')) k FROM pk JOIN (SELECT country, mode(cur) usual FROM pk "
            f"GROUP BY country) USING (country) GROUP BY date, platform, country HAVING k >= {MISLABEL_MIN} AND "
            "k > 0.5 * count(*) FILTER (cur <> 'USD') "
        )
        if "currency" in rules
        else ""
    )
    return (
        f"WITH {events_cte(rules, purchases=True)}, {_counted_keys(NO_FIXES, steps=True)}, "
        f"{_purchases(rules, NO_FIXES)} {_event_traces(rules)} UNION ALL {_session_traces()} "
        f"{resend}{mislabel}ORDER BY ALL"
    )


def revenue_values_sql(rules: frozenset[str], fixes: Fixes, asked: Sequence[tuple[object, ...]]) -> str:
    """For each row asked (i, date, platform, country, app_version), its segment's revenue_usd on that date by the
    metrics layer with the faults undone: each counted purchase's value over its currency's units per USD on the
    payment's date (the raw value where currency is not read)."""
    usd = "p.val / r.units_per_usd" if "currency" in rules else "p.val"
    rates = "LEFT JOIN currency_rates r ON r.currency = p.cur AND r.date = p.pd" if "currency" in rules else ""
    if fixes.sane_rates and "currency" in rules:
        rate = (
            f"coalesce(CASE WHEN r.units_per_usd BETWEEN md.m / {RATE_FACTOR} AND md.m * {RATE_FACTOR} "
            "THEN r.units_per_usd END, md.m)"
        )
        usd = f"p.val / {rate}"
        rates += (
            " LEFT JOIN (SELECT currency, median(units_per_usd) m FROM currency_rates GROUP BY currency) md "
            "ON md.currency = p.cur"
        )
    match = " AND ".join(f"(q.{f} IS NULL OR p.{f} = q.{f})" for f in ("platform", "country", "app_version"))
    return (
        f"WITH {events_cte(rules, fixes, purchases=True)}, {_counted_keys(fixes)}, {_purchases(rules, fixes)}, "
        f"{wanted_values(asked, 'i, on_date, platform, country, app_version')} "
        f"SELECT i, coalesce(sum({usd}), 0) value FROM q LEFT JOIN (pk p {rates}) ON p.date = q.on_date AND "
        f"{match} GROUP BY i ORDER BY i"
    )


def defect_values_sql(rules: frozenset[str], fixes: Fixes, asked: Sequence[tuple[object, ...]]) -> str:
    """For each row asked (i, date, platform, country, app_version, channel, user_type, k), the dashboard's value
    of the metric on that segment and date (`observed`: a rate from the sums of its rows; revenue_usd where k is
    REVENUE_STEP), the metrics layer's with the faults undone (`value`: a count counts sessions, a rate divides
    sums) and, where a row asks for a country's sessions (a consent drop's), the sessions its app_opens without
    consent stand for (`denied`, see _denied)."""
    metric = (
        "CASE WHEN any_value(q.k) = 0 THEN count(*) ELSE sum(list_extract([m1, m2, m3, m4], q.k)) / "
        "nullif(sum(list_extract([m0, m1, m2, m3], q.k)), 0) END"
    )
    match = " AND ".join(f"(q.{f} IS NULL OR s.{f} = q.{f})" for f in SEGMENT_COLUMNS)
    columns = ("sessions", "menu_sessions", "cart_sessions", "order_sessions", "payment_sessions")
    listed = "[" + ", ".join(f"sum({c})" for c in columns) + "]"
    board = " AND ".join(f"(q.{f} IS NULL OR d.{f} = q.{f})" for f in ("platform", "country", "app_version"))
    wanted = wanted_values(asked, "i, on_date, " + ", ".join(SEGMENT_COLUMNS) + ", k")
    consent = any(row[-1] == 0 and row[3] is not None for row in asked)
    return (
        f"{sessions_cte(rules, fixes)}, {wanted}, "
        f"o AS (SELECT i, any_value(k) k, {listed} n, sum(d.revenue_usd) r FROM q LEFT JOIN dashboard d ON "
        f"d.date = q.on_date AND {board} GROUP BY i), "
        f"m AS (SELECT i, {metric} value FROM q JOIN s ON {match} AND s.date = q.on_date GROUP BY i)"
        f"{', ' + _denied(rules) if consent else ''} "
        f"SELECT i, CASE WHEN k = {REVENUE_STEP} THEN coalesce(r, 0) WHEN k = 0 THEN coalesce(n[1], 0) "
        f"ELSE n[k + 1] / nullif(n[k], 0) END observed, value, {'denied' if consent else 'NULL denied'} "
        f"FROM o LEFT JOIN m USING (i) {'LEFT JOIN c USING (i) ' if consent else ''}ORDER BY i"
    )


def _denied(rules: frozenset[str]) -> str:
    """After `q` and `s`: `c`, for each row of a country's sessions, the sessions the metrics layer would count
    without the fault: those it counts on the date, and those its app_opens without consent stand for (those
    app_opens, each once, counted by the cut-off, less the median of the same weekday's other dates: the share that
    always denies), at the share of the country's app_opens with consent it counts on those other dates (the rest
    is traffic the rules exclude)."""
    date = reporting_date(rules)
    cutoff = f"ingestion_timestamp < epoch_us(CAST({date} + {LATE_CUTOFF_DAYS} AS TIMESTAMP)) - {OFFSET_US}"
    return (
        f"dn AS (SELECT {date} date, geo.country country, count(DISTINCT event_timestamp) FILTER ({DENIED}) k, "
        f"count(DISTINCT event_timestamp) FILTER (NOT {DENIED}) a FROM events WHERE event_name = 'app_open' "
        f"AND {cutoff} GROUP BY ALL), sc AS (SELECT date, country, count(*) n FROM s GROUP BY ALL), "
        "c AS (SELECT i, coalesce(sum(n) FILTER (dn.date = on_date), 0) + (max(dn.k) FILTER (dn.date = on_date) "
        "- median(dn.k) FILTER (dn.date <> on_date)) * sum(n) FILTER (dn.date <> on_date) / sum(a) FILTER "
        "(dn.date <> on_date) denied FROM q JOIN dn ON dn.country = q.country AND isodow(dn.date) = "
        "isodow(q.on_date) LEFT JOIN sc ON sc.date = dn.date AND sc.country = dn.country WHERE q.k = 0 GROUP BY i)"
    )
