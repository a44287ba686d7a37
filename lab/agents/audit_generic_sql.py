"""The generic auditor's statements: checks of every key and parameter of the raw events, per date and cuboid of the
dashboard's fields, each against the cuboid's own other dates. Written from the published text alone (the tables,
the metrics layer, the rules of a finding): a check asks whether the record is in line with itself, never whether
some named fault happened.

Each check is a count per date and cuboid over the events the standing exclusions leave (listed devices, internal
accounts and tagged traffic are the company's own, not a fault), divided by the cuboid's events, app_opens,
sessions or payments of the date: a share. A share that stands far above its usual level in the cuboid (the median
over the window's dates, with a spread of 1.4826 MAD) is a trace of the record changing on that date there.
"""

from __future__ import annotations

from metric_tracker_rl.agents.warehouse_sql import DAY_US, OFFSET_US, param, sql_literal
from metric_tracker_rl.world.metrics_layer import LATE_CUTOFF_DAYS

# The dashboard's cuboids (a version with its platform), as the trace statements group them.
CUBOIDS = "((), (p), (c), (p, c), (p, v))"
TRACE_Z = 6.0  # a share this many spreads above its usual level
TRACE_EXCESS = 0.15  # ... and above it by this much of the cuboid's volume
MIN_EXCESS = 25  # ... and by this many records (events or sessions)
MIN_PAYMENTS = 8  # ... or payments (a cuboid's date holds a few) ...
PAYMENT_EXCESS = 0.5  # ... when most of them are out of line
TRACE_TOP = 90  # the strongest flagged rows a statement returns (a page)

# Events the standing exclusions remove: the company's own traffic, which moves the raw events and not the dashboard.
_STANDING = (
    "coalesce(user_id IN (SELECT user_id FROM internal_accounts) OR device.device_id IN (SELECT device_id FROM "
    "test_devices UNION ALL SELECT device_id FROM known_bots) OR list_filter(event_params, lambda p: "
    "(p.key = 'traffic_type' AND p.value.string_value = 'internal') OR (p.key = 'debug_mode' AND "
    "p.value.int_value = 1)) <> [], FALSE)"
)


def _flagged(shares: str, volume: str, least: int = MIN_EXCESS, excess: float = TRACE_EXCESS) -> str:
    """After `g` (one row per date, cuboid p/c/v and the counts): each share of `shares` (name: numerator) over
    `volume` as a long table, its usual level and spread over the cuboid's dates, and the rows that stand out (by
    `least` records or more, and by `excess` of the volume)."""
    names = [name for name, _ in (part.split(":") for part in shares.split(";"))]
    counts = [count for _, count in (part.split(":") for part in shares.split(";"))]
    labels = ", ".join(f"'{name}'" for name in names)
    return (
        f", x AS (SELECT date, p, c, v, {volume} vol, unnest([{labels}]) what, "
        f"unnest([{', '.join(counts)}]) n FROM g WHERE {volume} > 0), "
        "y AS (SELECT *, n / vol share, median(n / vol) OVER w usual FROM x WINDOW w AS (PARTITION BY p, c, v, what)), "
        "z AS (SELECT *, 1.4826 * median(abs(share - usual)) OVER (PARTITION BY p, c, v, what) spread FROM y) "
        ", hit AS (SELECT *, n - usual * vol ex, (share - usual) / greatest(spread, 0.005) z FROM z "
        f"WHERE share - usual >= {TRACE_Z} * greatest(spread, 0.005) "
        f"AND share - usual >= {excess} AND n - usual * vol >= {least}), "
        # the cuboid that holds the excess: as much of the date's largest excess as it can, as pure as it can
        "fit AS (SELECT *, ex / max(ex) OVER (PARTITION BY date, what) * ex / vol fit FROM hit), "
        "held AS (SELECT *, round(fit / max(fit) OVER (PARTITION BY date, what) * 20) rank FROM fit) "
        "SELECT CAST(date AS VARCHAR) date, p platform, c country, v app_version, what, n, vol, round(share, 3) share, "
        "round(usual, 3) usual, round(z, 1) z FROM held QUALIFY row_number() OVER (PARTITION BY date, what ORDER BY "
        "rank DESC, (p IS NOT NULL)::INT + (c IS NOT NULL)::INT "
        f"+ (v IS NOT NULL)::INT, z DESC) = 1 ORDER BY z DESC LIMIT {TRACE_TOP}"
    )


# Per event: the same event twice (user, session, name, time), an ingestion after the metrics layer's cut-off or more
# than a day after its stamp, analytics storage denied, no session id, a name outside the usual set (one the export
# carries on fewer than half its dates), a country or platform that disagrees with the user's, a version that is not
# its platform's (web's is web), a time that is not its date's.
EVENT_CHECKS = (
    "WITH ev AS (SELECT event_date date, platform p, geo.country c, app_info.version v, event_name, user_pseudo_id, "
    f"{param('session_id', 'int_value')} sid, event_timestamp, ingestion_timestamp - event_timestamp lag, "
    "ingestion_timestamp >= epoch_us(CAST(event_date + " + str(LATE_CUTOFF_DAYS) + f" AS TIMESTAMP)) - {OFFSET_US} "
    "late, privacy_info.analytics_storage IS DISTINCT FROM 'granted' denied FROM events WHERE NOT " + _STANDING + "), "
    "names AS (SELECT event_name FROM ev GROUP BY ALL HAVING count(DISTINCT date) >= "
    "(SELECT count(DISTINCT date) / 2 FROM ev)), "
    "e AS (SELECT ev.*, count(*) OVER (PARTITION BY user_pseudo_id, sid, event_name, event_timestamp) > 1 twice, "
    "event_name NOT IN (SELECT event_name FROM names) odd, u.country IS DISTINCT FROM c moved, "
    "u.platform IS DISTINCT FROM p switched, (p = 'web') <> (v = 'web') wrong_version, "
    f"CAST(make_timestamp(event_timestamp + {OFFSET_US}) AS DATE) <> date off_date "
    "FROM ev LEFT JOIN users u USING (user_pseudo_id)), "
    "g AS (SELECT date, p, c, v, count(*) events, count(*) FILTER (twice) twice, count(*) FILTER (late) late, "
    f"count(*) FILTER (lag > {DAY_US // 2}) lagged, count(*) FILTER (denied) denied, count(*) FILTER (sid IS NULL) "
    "no_session, count(*) FILTER (odd) odd, count(*) FILTER (moved) moved, count(*) FILTER (switched) switched, "
    "count(*) FILTER (wrong_version) wrong_version, count(*) FILTER (off_date) off_date FROM e "
    f"GROUP BY date, GROUPING SETS {CUBOIDS})"
    + _flagged(
        "twice:twice;late:late;lagged:lagged;denied:denied;no_session:no_session;odd_name:odd;"
        "country_moved:moved;platform_switched:switched;wrong_version:wrong_version;off_date:off_date",
        "events",
    )
)

# Per event: a name outside the usual set (one the export carries on fewer than half its dates), against all events;
# a name's share is small beside every other check's, so its bar is a share of events of its own.
NAME_EXCESS = 0.01
NAME_CHECKS = (
    "WITH ev AS (SELECT event_date date, platform p, geo.country c, app_info.version v, event_name FROM events "
    "WHERE NOT " + _STANDING + "), "
    "names AS (SELECT event_name FROM ev GROUP BY ALL HAVING count(DISTINCT date) >= "
    "(SELECT count(DISTINCT date) / 2 FROM ev)), "
    "g AS (SELECT date, p, c, v, count(*) events, count(*) FILTER (event_name NOT IN (SELECT event_name FROM names)) "
    f"odd FROM ev GROUP BY date, GROUPING SETS {CUBOIDS})" + _flagged("odd_name:odd", "events", MIN_EXCESS, NAME_EXCESS)
)

# Per session (a user's session id, dated and placed by its first event): no app_open, no session_start, several
# app_opens, a user id carried by several pseudo ids that date, a session id beyond the user's next (a gap), a device
# with many sessions that stop at once; and the raw sessions against the dashboard's (a dashboard that loses or gains
# sessions the events hold).
SESSION_CHECKS = (
    "WITH ev AS (SELECT event_date, platform, geo.country country, app_info.version app_version, event_name, "
    f"user_pseudo_id, user_id, device.device_id device_id, {param('session_id', 'int_value')} sid FROM events "
    "WHERE NOT " + _STANDING + "), "
    "s AS (SELECT user_pseudo_id, sid, min(event_date) date, min(platform) p, min(country) c, min(app_version) v, "
    "any_value(user_id) user_id, any_value(device_id) device_id, count(*) FILTER (event_name = 'app_open') opens, "
    "bool_or(event_name = 'session_start') started, count(*) events FROM ev WHERE sid IS NOT NULL GROUP BY ALL), "
    "gap AS (SELECT *, sid - lag(sid) OVER (PARTITION BY user_pseudo_id ORDER BY sid) > 1 gapped, "
    "count(DISTINCT user_pseudo_id) OVER (PARTITION BY user_id, date) > 1 AND user_id IS NOT NULL shared, "
    "count(*) OVER (PARTITION BY device_id, date) >= 4 AND max(events) OVER (PARTITION BY device_id, date) <= 2 "
    "idle FROM s), "
    "d AS (SELECT date, platform p, country c, app_version v, sessions FROM dashboard), "
    "g AS (SELECT date, p, c, v, count(*) sessions, count(*) FILTER (opens = 0) no_open, count(*) FILTER "
    "(NOT started) no_start, count(*) FILTER (opens > 1) reopened, count(*) FILTER (gapped) gapped, count(*) FILTER "
    "(shared) shared, count(*) FILTER (idle) idle, any_value(dash) dash FROM gap LEFT JOIN (SELECT date, p, c, v, "
    f"sum(sessions) dash FROM d GROUP BY date, GROUPING SETS {CUBOIDS}) USING (date, p, c, v) "
    f"GROUP BY date, GROUPING SETS {CUBOIDS}), "
    "g2 AS (SELECT * REPLACE (greatest(dash - sessions, 0) AS dash), greatest(sessions - coalesce(dash, 0), 0) "
    "undash FROM g)"
    + _flagged(
        "no_open:no_open;no_start:no_start;reopened:reopened;id_gap:gapped;shared_login:shared;idle_device:"
        "idle;dashboard_gain:dash;dashboard_loss:undash",
        "sessions",
    ).replace("FROM g WHERE", "FROM g2 WHERE")
)

# Per payment: its currency not the one its country pays in most, its value in USD far from its country's usual
# (beyond a factor of three), its transaction id seen before, no order in its session.
PAYMENT_TRACES = ("foreign_currency", "odd_value", "transaction_twice", "no_order")
PAYMENT_CHECKS = (
    "WITH ev AS (SELECT event_date date, platform p, geo.country c, app_info.version v, event_name, user_pseudo_id, "
    f"{param('session_id', 'int_value')} sid, {param('currency', 'string_value')} cur, "
    f"{param('value', 'double_value')} val, {param('transaction_id', 'string_value')} tx FROM events "
    "WHERE event_name IN ('payment_successful', 'order_placed') AND NOT " + _STANDING + "), "
    "pay AS (SELECT ev.*, val / r.units_per_usd usd FROM ev LEFT JOIN currency_rates r ON r.currency = ev.cur AND "
    "r.date = ev.date WHERE event_name = 'payment_successful'), "
    "home AS (SELECT c, mode(cur) home, median(usd) usual FROM pay GROUP BY c), "
    "f AS (SELECT pay.*, cur IS DISTINCT FROM home abroad, usd > 3 * usual OR usd < usual / 3 OR usd IS NULL "
    "odd_value, count(*) OVER (PARTITION BY tx) > 1 tx_twice, (user_pseudo_id, sid) NOT IN (SELECT "
    "(user_pseudo_id, sid) FROM ev WHERE event_name = 'order_placed') unordered FROM pay JOIN home USING (c)), "
    "g AS (SELECT date, p, c, v, count(*) payments, count(*) FILTER (abroad) abroad, count(*) FILTER (odd_value) "
    "odd_value, count(*) FILTER (tx_twice) tx_twice, count(*) FILTER (unordered) unordered FROM f "
    f"GROUP BY date, GROUPING SETS {CUBOIDS})"
    + _flagged(
        ";".join(
            f"{name}:{count}"
            for name, count in zip(PAYMENT_TRACES, ("abroad", "odd_value", "tx_twice", "unordered"), strict=True)
        ),
        "payments",
        MIN_PAYMENTS,
        PAYMENT_EXCESS,
    )
)


DASHBOARD_COUNTS = ("sessions", "menu_sessions", "cart_sessions", "order_sessions", "payment_sessions")


def dashboard_values_sql(asked: list[tuple[object, ...]]) -> str:
    """For each row asked (i, date, platform, country, app_version, traced: the dates its segment carries a trace),
    the dashboard's metrics of its segment on its date (a count where it has no row: 0), their medians over the same
    weekday's other dates (`usual`, the baseline rule's) and the spread of those, and their median over the dates
    without a trace (`clean`: what the record shows where nothing changed it); a rate divides the sums of its rows.
    k 0 sessions, 1 to 4 the rates, 5 revenue_usd."""

    def literal(value: object) -> str:
        if isinstance(value, list | tuple):
            return "[" + ", ".join(sql_literal(v) for v in value) + "]::DATE[]"
        return sql_literal(value)

    body = ", ".join("(" + ", ".join(literal(v) for v in row) + ")" for row in asked)
    match = " AND ".join(f"(q.{f} IS NULL OR d.{f} = q.{f})" for f in ("platform", "country", "app_version"))
    sums = ", ".join(f"sum({c}) {c}" for c in DASHBOARD_COUNTS)
    rates = ", ".join(f"{DASHBOARD_COUNTS[k]} / nullif({DASHBOARD_COUNTS[k - 1]}, 0)" for k in range(1, 5))
    peers = "date <> on_date AND isodow(date) = isodow(on_date)"
    return (
        f"WITH q(i, on_date, platform, country, app_version, traced) AS (VALUES {body}), "
        f"v AS (SELECT i, d.date, any_value(q.on_date) on_date, any_value(traced) traced, {sums}, "
        f"sum(revenue_usd) revenue FROM q JOIN dashboard d ON {match} GROUP BY i, d.date), "
        "m AS (SELECT i, date, on_date, traced, unnest([0, 1, 2, 3, 4, 5]) k, "
        f"unnest([sessions, {rates}, revenue]) value FROM v) "
        "SELECT i, k, round(coalesce(max(value) FILTER (date = on_date), CASE WHEN k IN (0, 5) THEN 0 "
        f"END), 4) value, round(median(value) FILTER ({peers}), 4) usual, round(1.4826 * mad(value) FILTER "
        f"({peers}), 4) spread, round(median(value) FILTER (NOT list_contains(traced, date)), 4) clean "
        "FROM m GROUP BY i, k ORDER BY i, k"
    )
