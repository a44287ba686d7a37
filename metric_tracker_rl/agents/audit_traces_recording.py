"""Finders for faults of recording: an SDK or an identity layer that splits, drops, cuts, invents or mislabels
what users did. Each is one statement over the export and its side tables (audit_finders.py states the contract)
that looks for the shape such a fault leaves, wherever it is, and names the date and the widest segment it is
confined to. The thresholds sit above what the standing traffic and ordinary behaviour leave (sessions cut by the
export's end, cookieless pings, test devices, bounces)."""

from __future__ import annotations

from metric_tracker_rl.agents.audit_finders import Finder
from metric_tracker_rl.world.metrics_layer import RATE_COLUMNS

SESSION_ID = "list_filter(event_params, lambda x: x.key = 'session_id')[1].value.int_value"
ENGAGEMENT = "list_filter(event_params, lambda x: x.key = 'engagement_time_msec')[1].value.int_value"
GRANTED = "privacy_info.analytics_storage = 'granted'"
TAGGED = "list_bool_or(list_transform(event_params, lambda x: x.key IN ('debug_mode', 'traffic_type')))"
LISTED = (
    "device.device_id IN (SELECT device_id FROM test_devices UNION ALL SELECT device_id FROM known_bots) "
    "OR user_id IN (SELECT user_id FROM internal_accounts)"
)
FUNNEL_AFTER_OPEN = "('menu_open', 'product_added_to_cart', 'order_placed', 'payment_successful')"


def _row(
    date: str, platform: str, version: str, country: str, metric: str, what: str, *, metric_sql: str | None = None
) -> str:
    """A finder's select list: FINDING_COLUMNS, channel and user type every value; the metric named, or the value of
    `metric_sql` where the rows tell it."""
    named = metric_sql or f"'{metric}'"
    return (
        f"SELECT {date} date, {platform} platform, {version} app_version, {country} country, NULL channel, "
        f"NULL user_type, {named} metric, '{what}' what"
    )


# A session's later events under its user's next session id, which has no app_open, opened the same date.
ORPHANS_MIN = 10  # sessions of a version and date cut this way
SESSION_ID_RESET = Finder(
    "session_id_reset",
    f"""
WITH e AS (SELECT user_pseudo_id u, {SESSION_ID} s, event_name n, event_date d, platform p, app_info.version v
           FROM events WHERE {GRANTED}),
k AS (SELECT u, s, min(d) d, min(p) p, min(v) v, bool_or(n = 'app_open') opened,
             bool_or(n IN {FUNNEL_AFTER_OPEN}) funnel FROM e GROUP BY u, s)
{_row("o.d", "o.p", "o.v", "NULL", "app_open_to_menu_open", "session_id_reset")}
FROM k o JOIN k a ON a.u = o.u AND a.s = o.s - 1 AND a.opened AND a.d = o.d
WHERE NOT o.opened AND o.funnel GROUP BY ALL HAVING count(*) >= {ORPHANS_MIN}""",
)

# A login seen under two pseudonymous ids on one date, one of them without an app_open.
ROTATED_MIN = 5  # such logins of a platform and date
PSEUDO_ID_ROTATION = Finder(
    "pseudo_id_rotation",
    f"""
WITH x AS (SELECT event_date d, user_id l, user_pseudo_id u, min(platform) p, bool_or(event_name = 'app_open') opened
           FROM events WHERE user_id IS NOT NULL GROUP BY ALL),
y AS (SELECT d, l, min(p) p FROM x GROUP BY d, l HAVING count(*) >= 2 AND bool_or(NOT opened))
{_row("d", "p", "NULL", "NULL", "app_open_to_menu_open", "pseudo_id_rotation")}
FROM y GROUP BY d, p HAVING count(*) >= {ROTATED_MIN}""",
)

# Users first seen on a date (the users table's first touch) who sent no event under their id: installs whose
# sessions were never sent. Cookieless pings leave a few; a sampled app, many. The version is the one whose users'
# session ids skip the most numbers that date (the sessions it never sent).
SILENT_MIN, SILENT_SHARE = 8, 0.25
# A user's next session after one never sent shows the gap, often a date or two later: the version is the one whose
# sessions skip the most numbers over the date and the GAP_DAYS after it.
GAP_DAYS = 2
CLIENT_SAMPLING = Finder(
    "client_sampling",
    f"""
WITH seen AS (SELECT DISTINCT user_pseudo_id FROM events),
n AS (SELECT first_touch_date d, platform p, count(*) users, count(*) FILTER (WHERE s.user_pseudo_id IS NULL) silent
      FROM users LEFT JOIN seen s USING (user_pseudo_id)
      WHERE first_touch_date >= (SELECT min(event_date) FROM events) GROUP BY ALL),
k AS (SELECT d, p, v, s - lag(s) OVER (PARTITION BY u ORDER BY s) gap
      FROM (SELECT DISTINCT user_pseudo_id u, {SESSION_ID} s, event_date d, platform p, app_info.version v
            FROM events)),
c AS (SELECT d, p, v, count(*) FILTER (WHERE gap > 1) skipped FROM k GROUP BY ALL),
g AS (SELECT d, p, arg_max(v, skipped) v
      FROM (SELECT a.d, a.p, b.v, sum(b.skipped) skipped
            FROM (SELECT DISTINCT d, p FROM c) a JOIN c b ON b.p = a.p AND b.d BETWEEN a.d AND a.d + {GAP_DAYS}
            GROUP BY ALL)
      GROUP BY d, p)
{_row("d", "p", "v", "NULL", "sessions", "client_sampling")}
FROM n LEFT JOIN g USING (d, p) WHERE silent >= {SILENT_MIN} AND silent > {SILENT_SHARE} * users""",
)

# Sessions without their closing user_engagement, cut at one length: the longest a platform sent that date. The
# metric is the first rate down the funnel whose arrivals lost a clear share to the cut (the sessions cut at that
# step: the conversions they took away).
CUT_MIN, CUT_SHARE, LOST_SHARE = 10, 0.3, 0.1
STAGE = (
    "CASE n WHEN 'menu_open' THEN 1 WHEN 'product_added_to_cart' THEN 2 WHEN 'order_placed' THEN 3 "
    "WHEN 'payment_successful' THEN 4 ELSE 0 END"
)


def _first_cut_rate() -> str:
    """After `k JOIN m`: the first rate whose arrivals (sessions reaching its step) lost LOST_SHARE to the cut, the
    cart's by default."""
    cut = "len = longest AND NOT closed"
    whens = " ".join(
        f"WHEN count(*) FILTER (WHERE {cut} AND reached = {i}) > {LOST_SHARE} * count(*) FILTER "
        f"(WHERE reached >= {i}) THEN '{rate}'"
        for i, rate in enumerate(RATE_COLUMNS)
    )
    return f"CASE {whens} ELSE '{RATE_COLUMNS[2]}' END"


TRUNCATED_BATCHES = Finder(
    "truncated_batches",
    f"""
WITH e AS (SELECT DISTINCT user_pseudo_id u, {SESSION_ID} s, event_name n, event_timestamp t, event_date d, platform p
           FROM events WHERE {GRANTED}),
k AS (SELECT u, s, min(d) d, min(p) p, count(*) len, bool_or(n = 'user_engagement') closed, max({STAGE}) reached
      FROM e GROUP BY u, s),
m AS (SELECT d, p, max(len) longest FROM k GROUP BY d, p)
{_row("d", "p", "NULL", "NULL", "", "truncated_batches", metric_sql=_first_cut_rate())}
FROM k JOIN m USING (d, p) GROUP BY d, p
HAVING count(*) FILTER (WHERE len = longest AND NOT closed) >= greatest({CUT_MIN}, {CUT_SHARE} * count(*) FILTER
       (WHERE len = longest))""",
)

# Sessions that opened and did nothing for under a second, by date, platform and hour (reporting time), far above
# that platform's usual count at that hour (its mean over the other dates); a country when nearly all of them are
# one country's.
WAKE_MIN, WAKE_FACTOR, ONE_COUNTRY = 15, 4, 0.8
BACKGROUND_OPENS = Finder(
    "background_opens",
    f"""
WITH e AS (SELECT user_pseudo_id u, {SESSION_ID} s, event_name n, event_date d, event_timestamp t, platform p,
                  geo.country c, {ENGAGEMENT} g, coalesce({TAGGED} OR {LISTED}, FALSE) x FROM events WHERE {GRANTED}),
k AS (SELECT min(d) d, min(p) p, min(c) c, hour(make_timestamp(min(t)) + INTERVAL 9 HOUR) h FROM e GROUP BY u, s
      HAVING bool_and(n IN ('first_open', 'session_start', 'app_open', 'user_engagement'))
         AND bool_or(n = 'app_open') AND coalesce(sum(g), 0) < 1000 AND NOT bool_or(x)),
b AS (SELECT d, p, h, c, count(*) k FROM k GROUP BY ALL),
z AS (SELECT d, p, h, sum(k) k, max(k) top, arg_max(c, k) c FROM b GROUP BY d, p, h),
w AS (SELECT *, (sum(k) OVER (PARTITION BY p, h) - k) / (SELECT count(DISTINCT event_date) - 1 FROM events) usual
      FROM z)
{_row("d", "p", "NULL", f"CASE WHEN top >= {ONE_COUNTRY} * k THEN c END", "sessions", "background_opens")}
FROM w WHERE k >= {WAKE_MIN} AND k > {WAKE_FACTOR} * usual""",
)

# A device under several pseudonymous ids on one date, each but its first holding one event and no app_open.
PAGE_IDS_MIN, DEVICES_MIN = 3, 5
COOKIE_RESET = Finder(
    "cookie_reset",
    f"""
WITH x AS (SELECT event_date d, device.device_id dev, user_pseudo_id u, min(platform) p,
                  bool_or(event_name = 'app_open') opened, count(DISTINCT event_timestamp) events
           FROM events WHERE device.device_id IS NOT NULL GROUP BY ALL),
y AS (SELECT d, dev, min(p) p FROM x GROUP BY d, dev
      HAVING count(*) FILTER (WHERE NOT opened AND events = 1) >= {PAGE_IDS_MIN})
{_row("d", "p", "NULL", "NULL", "app_open_to_menu_open", "cookie_reset")}
FROM y GROUP BY d, p HAVING count(*) >= {DEVICES_MIN}""",
)

# debug_mode on devices that no test list names, many of them on one version and date.
DEBUG_DEVICES_MIN = 10
DEBUG_BUILD = Finder(
    "debug_build",
    f"""
{_row("event_date", "platform", "app_info.version", "NULL", "sessions", "debug_build")}
FROM events WHERE list_contains(list_transform(event_params, lambda x: x.key), 'debug_mode')
  AND device.device_id NOT IN (SELECT device_id FROM test_devices)
GROUP BY ALL HAVING count(DISTINCT device.device_id) >= {DEBUG_DEVICES_MIN}""",
)

FINDERS: tuple[Finder, ...] = (
    SESSION_ID_RESET,
    PSEUDO_ID_ROTATION,
    CLIENT_SAMPLING,
    TRUNCATED_BATCHES,
    BACKGROUND_OPENS,
    COOKIE_RESET,
    DEBUG_BUILD,
)
