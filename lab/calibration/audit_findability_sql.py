"""The statements of the audit's findability check (audit_findability.py), written from the published text alone
(the brief's tables and the metrics layer's definitions), never from an agent's: a segment's daily counts by the
metrics layer over the events, split by every field a finding may name, and a segment's daily profile of what the
export recorded, in the tables the brief says a defect's trace can be in (events, users, currency_rates,
tracking_changelog).
"""

from __future__ import annotations

from metric_tracker_rl.world.events import REPORTING_UTC_OFFSET_HOURS
from metric_tracker_rl.world.metrics_layer import LATE_CUTOFF_DAYS
from metric_tracker_rl.world.segments import Segment

OFFSET_US = REPORTING_UTC_OFFSET_HOURS * 3600 * 1_000_000
# The channel a session's app_open names by its traffic_source.medium (the metrics layer's
# session_channel_and_user_type).
CHANNEL_OF_MEDIUM = "CASE medium WHEN 'cpc' THEN 'paid_search' ELSE medium END"
# The event names of the tracking plan as a clean export holds them: any other name is a trace.
PLAN_NAMES = (
    "session_start",
    "first_open",
    "app_open",
    "screen_view",
    "menu_open",
    "product_added_to_cart",
    "order_placed",
    "payment_successful",
    "user_engagement",
    "app_exception",
)


def _param(key: str, kind: str) -> str:
    return f"list_filter(event_params, lambda p: p.key = '{key}')[1].value.{kind}"


def _where(segment: Segment, fields: dict[str, str]) -> str:
    """A filter on the fields of `segment` that name a value, each read by its column in `fields`."""
    named = {field: value for field, value in segment.normalised().named().items() if value is not None}
    return " AND ".join([f"{fields[field]} = '{value}'" for field, value in named.items()] or ["TRUE"])


def segment_counts_sql(segment: Segment, hours: tuple[int, int] = (0, 24)) -> str:
    """One row per reporting date on which `segment` counts a session: its counted sessions and the sessions reaching
    each later step, by the metrics layer (standing exclusions, the late cut-off, a session on its app_open's date
    and segment, channel by the app_open's medium, new when its session_id is 1); with `hours`, of the sessions
    whose app_open is in that block of the reporting date's hours."""
    flagged = (
        "list_bool_or(list_transform(event_params, lambda p: (p.key = 'traffic_type' AND p.value.string_value = "
        "'internal') OR (p.key = 'debug_mode' AND p.value.int_value = 1)))"
    )
    where = _where(
        segment,
        {
            "platform": "platform",
            "app_version": "app_version",
            "country": "country",
            "channel": "channel",
            "user_type": "user_type",
        },
    )
    return f"""
WITH e AS (
  SELECT event_date, event_name, user_pseudo_id AS pid, user_id, device.device_id AS device_id, platform,
         app_info.version AS app_version, geo.country AS country, traffic_source.medium AS medium,
         {_param("session_id", "int_value")} AS sid, {flagged} AS flagged, ingestion_timestamp,
         CAST(((event_timestamp + {OFFSET_US}) // 3600000000) % 24 AS INTEGER) AS hour
  FROM events WHERE privacy_info.analytics_storage = 'granted'),
dropped AS (
  SELECT DISTINCT pid, sid FROM e
  WHERE flagged OR user_id IN (SELECT user_id FROM internal_accounts)
     OR device_id IN (SELECT device_id FROM test_devices) OR device_id IN (SELECT device_id FROM known_bots)),
kept AS (
  SELECT * FROM e ANTI JOIN dropped USING (pid, sid)
  WHERE ingestion_timestamp < epoch_us(CAST(event_date + {LATE_CUTOFF_DAYS} AS TIMESTAMP)) - {OFFSET_US}),
s AS (
  SELECT pid, sid, min(event_date) FILTER (WHERE event_name = 'app_open') AS day,
         min(platform) AS platform, min(app_version) FILTER (WHERE event_name = 'app_open') AS app_version,
         min(country) AS country, min({CHANNEL_OF_MEDIUM}) FILTER (WHERE event_name = 'app_open') AS channel,
         CASE WHEN sid = 1 THEN 'new' ELSE 'returning' END AS user_type,
         min(hour) FILTER (WHERE event_name = 'app_open') AS hour,
         bool_or(event_name = 'menu_open') AS menu, bool_or(event_name = 'product_added_to_cart') AS cart,
         bool_or(event_name = 'order_placed') AS ordered, bool_or(event_name = 'payment_successful') AS paid
  FROM kept GROUP BY pid, sid)
SELECT day, count(*) AS sessions, count(*) FILTER (WHERE menu) AS menu_sessions,
       count(*) FILTER (WHERE cart) AS cart_sessions, count(*) FILTER (WHERE ordered) AS order_sessions,
       count(*) FILTER (WHERE paid) AS payment_sessions
FROM s WHERE day IS NOT NULL AND {where} AND hour >= {hours[0]} AND hour < {hours[1]} GROUP BY day ORDER BY day
"""


def dashboard_sql(segment: Segment) -> str:
    """The dashboard's rows of `segment`, summed per date (a rate is then its numerator's sum over its
    denominator's, as the findings rule reads it)."""
    where = _where(segment, {"platform": "platform", "app_version": "app_version", "country": "country"})
    return f"""
SELECT date AS day, sum(sessions) AS sessions, sum(menu_sessions) AS menu_sessions,
       sum(cart_sessions) AS cart_sessions, sum(order_sessions) AS order_sessions,
       sum(payment_sessions) AS payment_sessions, sum(revenue_usd) AS revenue_usd
FROM dashboard WHERE {where} GROUP BY date ORDER BY date
"""


# Each feature of a date's recorded profile: what an export that recorded users faithfully keeps steady from date to
# date, whatever the users did.
PROFILE_FEATURES = (
    "denied_share",
    "flagged_share",
    "unplanned_share",
    "twin_share",
    "lag_hours",
    "ahead_share",
    "behind_share",
    "late_share",
    "no_sid_share",
    "no_open_share",
    "open_only_share",
    "no_engagement_share",
    "multi_transaction_share",
    "prefire_share",
    "top_device_share",
    "log_value",
    "eur_share",
    "skipped_sid_share",
    "new_share",
    "peak_hour_share",
    "least_hour_share",
    "first_touch_per_new",
    "restamped_share",
)
SIDE_FEATURES = ("rate_rows", "rate_jump", "changelog_entries")


def profile_sql(segment: Segment) -> str:
    """One row per reporting date: the features (PROFILE_FEATURES) of the events `segment` holds, read from the
    events and users tables; no feature reads the metrics layer."""
    names = ", ".join(f"'{name}'" for name in PLAN_NAMES)
    where = _where(segment, {"platform": "platform", "app_version": "app_info.version", "country": "geo.country"})
    users_where = _where(
        Segment(platform=segment.platform, country=segment.country), {"platform": "platform", "country": "country"}
    )
    return f"""
WITH e AS (
  SELECT event_date AS day, event_name AS name, event_timestamp AS ts, ingestion_timestamp AS ing,
         user_pseudo_id AS pid, device.device_id AS device_id, {_param("session_id", "int_value")} AS sid,
         privacy_info.analytics_storage = 'denied' AS denied,
         list_bool_or(list_transform(event_params, lambda p: (p.key = 'traffic_type' AND p.value.string_value =
           'internal') OR (p.key = 'debug_mode' AND p.value.int_value = 1))) AS flagged,
         {_param("transaction_id", "string_value")} AS tx, {_param("value", "double_value")} AS value,
         {_param("currency", "string_value")} AS currency,
         CAST(((event_timestamp + {OFFSET_US}) // 3600000000) % 24 AS INTEGER) AS hour
  FROM events WHERE {where}),
usual_values AS (
  SELECT currency, median(ln(value)) AS usual_log_value FROM (
    SELECT {_param("currency", "string_value")} AS currency, {_param("value", "double_value")} AS value
    FROM events WHERE event_name = 'payment_successful') WHERE value > 0 GROUP BY currency),
twins AS (SELECT pid, name, ts, count(DISTINCT sid) > 1 AS twin FROM e WHERE NOT denied GROUP BY ALL),
s AS (
  SELECT pid, sid, coalesce(min(day) FILTER (WHERE name = 'app_open'), min(day)) AS day,
         bool_or(name = 'app_open') AS opened, bool_or(name = 'user_engagement') AS engaged,
         bool_and(name IN ('session_start', 'first_open', 'app_open', 'user_engagement')) AS open_only,
         count(DISTINCT tx) AS transactions, min(device_id) AS device_id,
         min(ts) FILTER (WHERE name = 'app_open') AS opened_at, min(ts) FILTER (WHERE name = 'menu_open') AS menu_at
  FROM e WHERE NOT denied AND sid IS NOT NULL GROUP BY pid, sid),
every_sid AS (
  SELECT DISTINCT user_pseudo_id AS pid, {_param("session_id", "int_value")} AS sid FROM events
  WHERE privacy_info.analytics_storage = 'granted' AND user_pseudo_id IN (SELECT pid FROM s)),
steps AS (SELECT pid, sid, sid - lag(sid) OVER (PARTITION BY pid ORDER BY sid) AS step FROM every_sid),
gaps AS (SELECT * FROM s LEFT JOIN steps USING (pid, sid)),
per_session AS (
  SELECT day, avg(CAST(NOT opened AS DOUBLE)) AS no_open_share,
         avg(CAST(open_only AS DOUBLE)) FILTER (WHERE opened) AS open_only_share,
         avg(CAST(NOT engaged AS DOUBLE)) FILTER (WHERE opened) AS no_engagement_share,
         avg(CAST(transactions > 1 AS DOUBLE)) FILTER (WHERE transactions > 0) AS multi_transaction_share,
         avg(CAST(menu_at - opened_at < 1000000 AS DOUBLE)) FILTER (WHERE menu_at IS NOT NULL) AS prefire_share,
         avg(CAST(step > 1 AS DOUBLE)) FILTER (WHERE opened AND sid > 1) AS skipped_sid_share,
         avg(CAST(sid = 1 AS DOUBLE)) FILTER (WHERE opened) AS new_share,
         count(*) FILTER (WHERE opened AND sid = 1) AS new_sessions
  FROM gaps GROUP BY day),
devices AS (
  SELECT day, max(n) / sum(n) AS top_device_share
  FROM (SELECT day, device_id, count(*) AS n FROM s WHERE opened GROUP BY ALL) GROUP BY day),
hours AS (
  SELECT day, max(n) / sum(n) AS peak_hour_share, min(n) / sum(n) AS least_hour_share
  FROM (SELECT day, hour, count(*) AS n FROM e WHERE name = 'app_open' GROUP BY ALL) GROUP BY day),
ingested AS (
  SELECT CAST(to_timestamp((ing + {OFFSET_US}) / 1e6) AS DATE) AS day, avg(CAST(e.day <> CAST(to_timestamp((ing +
         {OFFSET_US}) / 1e6) AS DATE) AS DOUBLE)) AS restamped_share
  FROM e GROUP BY 1),
first_touch AS (SELECT first_touch_date AS day, count(*) AS first_touches FROM users WHERE {users_where} GROUP BY ALL),
per_event AS (
  SELECT day, avg(CAST(denied AS DOUBLE)) AS denied_share, coalesce(avg(CAST(flagged AS DOUBLE)), 0) AS flagged_share,
         avg(CAST(name NOT IN ({names}) AS DOUBLE)) AS unplanned_share,
         median((ing - ts) / 3600e6) AS lag_hours, avg(CAST(ing < ts AS DOUBLE)) AS ahead_share,
         avg(CAST(ing - ts > 3 * 3600e6 AS DOUBLE)) AS behind_share,
         avg(CAST(ing >= epoch_us(CAST(day + {LATE_CUTOFF_DAYS} AS TIMESTAMP)) - {OFFSET_US} AS DOUBLE)) AS late_share,
         avg(CAST(sid IS NULL AND NOT denied AS DOUBLE)) AS no_sid_share,
         median(ln(value) - usual_log_value) FILTER (WHERE name = 'payment_successful' AND value > 0) AS log_value,
         avg(CAST(currency = 'EUR' AS DOUBLE)) FILTER (WHERE name = 'payment_successful') AS eur_share
  FROM e LEFT JOIN usual_values USING (currency) GROUP BY day),
twin_days AS (
  SELECT e.day, avg(CAST(coalesce(twin, FALSE) AS DOUBLE)) AS twin_share
  FROM e LEFT JOIN twins USING (pid, name, ts) GROUP BY e.day)
SELECT day, denied_share, flagged_share, unplanned_share, coalesce(twin_share, 0) AS twin_share, lag_hours,
       ahead_share, behind_share, late_share, no_sid_share, no_open_share, open_only_share, no_engagement_share,
       multi_transaction_share, prefire_share, top_device_share, log_value, eur_share, skipped_sid_share, new_share,
       peak_hour_share, least_hour_share,
       coalesce(first_touches, 0) / greatest(new_sessions, 1) AS first_touch_per_new, restamped_share
FROM per_event FULL JOIN ingested USING (day) LEFT JOIN per_session USING (day) LEFT JOIN devices USING (day)
LEFT JOIN hours USING (day)
LEFT JOIN twin_days USING (day) LEFT JOIN first_touch USING (day)
ORDER BY day
"""


def side_sql(platform: str | None) -> str:
    """One row per date of the window: the side tables' features (SIDE_FEATURES): currency_rates' rows on the date,
    the largest jump of a currency's rate from its own median, and tracking_changelog's entries (of the platform,
    when the segment names one)."""
    on_platform = f"platform = '{platform}'" if platform else "TRUE"
    return f"""
WITH days AS (SELECT DISTINCT event_date AS day FROM events),
medians AS (SELECT currency, median(units_per_usd) AS usual FROM currency_rates GROUP BY currency),
rates AS (
  SELECT date AS day, count(*) AS rate_rows, max(abs(ln(units_per_usd / usual))) AS rate_jump
  FROM currency_rates JOIN medians USING (currency) WHERE units_per_usd > 0 GROUP BY date),
changes AS (SELECT date AS day, count(*) AS changelog_entries FROM tracking_changelog WHERE {on_platform} GROUP BY date)
SELECT day, coalesce(rate_rows, 0) AS rate_rows, coalesce(rate_jump, 0) AS rate_jump,
       coalesce(changelog_entries, 0) AS changelog_entries
FROM days LEFT JOIN rates USING (day) LEFT JOIN changes USING (day) ORDER BY day
"""


def sibling_sql(segment: Segment, field: str) -> str:
    """One row per reporting date and value of `field` among `segment`'s siblings (the segments that differ from it
    in `field` alone): the dashboard's sessions, to pick the siblings a trace is compared with on a date."""
    column = {"app_version": "app_version", "country": "country", "platform": "platform"}[field]
    others = {name: value for name, value in segment.named().items() if name != field}
    where = _where(Segment(**others), {"platform": "platform", "app_version": "app_version", "country": "country"})
    return f"""
SELECT date AS day, {column} AS sibling, sum(sessions) AS sessions
FROM dashboard WHERE {where} AND {column} <> '{segment.named()[field]}' GROUP BY ALL ORDER BY day, sessions DESC
"""
