"""The warehouse's metrics layer: every reported number defined exactly, as text a model reads (METRICS_LAYER),
and the company's pipeline that applies those definitions to the raw events, daily by segment: the dashboard.

The pipeline exists twice on purpose: `dashboard` computes it over the event log's arrays (what a reset builds),
and DASHBOARD_SQL states it over the SQL tool's tables (what an analyst would write, and what a test holds the
arrays to). Both apply the standing rules and nothing else, so a defect the rules do not foresee reaches the
dashboard.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metric_tracker_rl.sql.columns import Labels, SqlTable
from metric_tracker_rl.world.events import (
    REPORTING_TIME_ZONE,
    REPORTING_UTC_OFFSET_HOURS,
    EventLog,
    day_start_micros,
    event_code,
    reporting_day,
)
from metric_tracker_rl.world.funnel import WINDOW_START
from metric_tracker_rl.world.segments import Segment

FUNNEL_STEP_NAMES: tuple[str, ...] = (
    "app_open",
    "menu_open",
    "product_added_to_cart",
    "order_placed",
    "payment_successful",
)
STEP_SESSION_COLUMNS: tuple[str, ...] = (
    "sessions",
    "menu_sessions",
    "cart_sessions",
    "order_sessions",
    "payment_sessions",
)
RATE_COLUMNS: tuple[str, ...] = tuple(
    f"{a}_to_{b}" for a, b in zip(FUNNEL_STEP_NAMES, FUNNEL_STEP_NAMES[1:], strict=False)
)
SEGMENT_COLUMNS: tuple[str, ...] = ("platform", "app_version", "country")
LATE_CUTOFF_DAYS = 2  # an event counts if ingested before the start of the second date after its own

# The definitions, in the order an analyst applies them (a tool returns them; the brief points to it).
METRICS_LAYER: dict[str, str] = {
    "reporting_date": f"the date of an event in the reporting time zone, {REPORTING_TIME_ZONE} (UTC+"
    f"{REPORTING_UTC_OFFSET_HOURS}, no daylight saving time): events.event_date. "
    "event_timestamp is UTC, in microseconds since 1970-01-01.",
    "session": "the pair (user_pseudo_id, the session_id parameter). A session_id numbers a user's sessions "
    "(1, 2, ...), so alone it does not name a session. Events whose privacy_info.analytics_storage is "
    "'denied' belong to no session: without consent the app sends cookieless pings, each under a random "
    "user_pseudo_id of its own, with no session_id, user_id or device id.",
    "session_date_and_segment": "a session is counted on the reporting date of its app_open event, in the "
    "segment of that event: platform, app_info.version (app_version) and "
    "geo.country (country). A session with no counted app_open is not counted.",
    "step_reached": "a counted session reaches a funnel step (menu_open, product_added_to_cart, order_placed, "
    "payment_successful) when it has at least one counted event of that name, whatever its date.",
    "rates": "each step's rate is the counted sessions reaching the next step over those reaching this one, by "
    "date and segment: app_open_to_menu_open = menu_sessions / sessions, "
    "menu_open_to_product_added_to_cart = cart_sessions / menu_sessions, "
    "product_added_to_cart_to_order_placed = order_sessions / cart_sessions, "
    "order_placed_to_payment_successful = payment_sessions / order_sessions (NULL over zero).",
    "standing_exclusions": "a session is excluded, all its events, when any of its events carries the parameter "
    "traffic_type = 'internal' or debug_mode = 1, when its user_id is in "
    "internal_accounts, or when its device.device_id is in test_devices (tagged or not) "
    "or known_bots.",
    "deduplication": "an event sent twice is recorded twice with the same user_pseudo_id, session_id, "
    "event_name and event_timestamp: count it once. A purchase is one transaction_id: "
    "purchases counts distinct transaction_ids of counted payment_successful events (a payment "
    "SDK that missed its acknowledgement sends payment_successful again, the same transaction_id "
    "seconds later), and revenue_usd each once, at its first event.",
    "currency": "value is in the currency of its currency parameter (its country's, or USD for a card billed in "
    "dollars); revenue_usd sums each purchase's value "
    "divided by currency_rates.units_per_usd for that currency on the payment's reporting date.",
    "late_events": f"an event counts only if its ingestion_timestamp is before 00:00 ({REPORTING_TIME_ZONE}) of "
    f"the {LATE_CUTOFF_DAYS}nd date after its reporting date (the dashboard closes a date a day "
    "after it ends); a later one is left out for good. The export ends when the last date closes.",
    "session_channel_and_user_type": "a session's channel is the traffic_source.medium of its app_open, named "
    "organic (organic), paid_search (cpc), paid_social (paid_social) or referral "
    "(referral); it is new when its session_id is 1 (its user's first session), "
    "returning otherwise. The dashboard does not split by them; the events do.",
    "dashboard": "one row per reporting date and segment (platform, app_version, country) with counted sessions: "
    "sessions, menu_sessions, cart_sessions, order_sessions, payment_sessions, the four rates, "
    "purchases and revenue_usd.",
}

# The pipeline over the SQL tool's tables, as an analyst would write it (a test holds `dashboard` to it).
DASHBOARD_SQL = f"""
WITH flat AS (
  SELECT event_date, event_name, event_timestamp, ingestion_timestamp, user_pseudo_id, user_id,
         device.device_id AS device_id, platform, app_info.version AS app_version, geo.country AS country,
         list_filter(event_params, lambda p: p.key = 'session_id')[1].value.int_value AS session_id,
         list_bool_or(list_transform(event_params, lambda p: (p.key = 'traffic_type' AND p.value.string_value =
           'internal') OR (p.key = 'debug_mode' AND p.value.int_value = 1))) AS internal_or_debug,
         CASE WHEN event_name = 'payment_successful' THEN event_params END AS purchase_params
  FROM events WHERE privacy_info.analytics_storage = 'granted'),
excluded AS (
  SELECT DISTINCT user_pseudo_id, session_id FROM flat
  WHERE internal_or_debug OR user_id IN (SELECT user_id FROM internal_accounts)
     OR device_id IN (SELECT device_id FROM test_devices) OR device_id IN (SELECT device_id FROM known_bots)),
counted AS (
  SELECT * FROM flat ANTI JOIN excluded USING (user_pseudo_id, session_id)
  WHERE ingestion_timestamp < epoch_us(CAST(event_date + {LATE_CUTOFF_DAYS} AS TIMESTAMP))
                              - {REPORTING_UTC_OFFSET_HOURS * 3600 * 1_000_000}),
sessions AS (
  SELECT user_pseudo_id, session_id, min(event_date) FILTER (WHERE event_name = 'app_open') AS date,
         min(platform) AS platform, min(app_version) FILTER (WHERE event_name = 'app_open') AS app_version,
         min(country) AS country, bool_or(event_name = 'menu_open') AS menu,
         bool_or(event_name = 'product_added_to_cart') AS cart, bool_or(event_name = 'order_placed') AS ordered,
         bool_or(event_name = 'payment_successful') AS paid
  FROM counted GROUP BY ALL),
purchases AS (
  SELECT user_pseudo_id, session_id, count(*) AS purchases, sum(usd) AS revenue_usd FROM (
    SELECT transaction_id, min(user_pseudo_id) AS user_pseudo_id, min(session_id) AS session_id,
           arg_min(value / r.units_per_usd, event_timestamp) AS usd
    FROM (SELECT user_pseudo_id, session_id, event_date, event_timestamp,
                 list_filter(purchase_params, lambda p: p.key = 'transaction_id')[1].value.string_value
                   AS transaction_id,
                 list_filter(purchase_params, lambda p: p.key = 'value')[1].value.double_value AS value,
                 list_filter(purchase_params, lambda p: p.key = 'currency')[1].value.string_value AS currency
          FROM counted WHERE purchase_params IS NOT NULL) c
    JOIN currency_rates r ON r.currency = c.currency AND r.date = c.event_date
    GROUP BY transaction_id)
  GROUP BY ALL)
SELECT date, platform, app_version, country, count(*) AS sessions, count(*) FILTER (WHERE menu) AS menu_sessions,
       count(*) FILTER (WHERE cart) AS cart_sessions, count(*) FILTER (WHERE ordered) AS order_sessions,
       count(*) FILTER (WHERE paid) AS payment_sessions, coalesce(sum(purchases), 0) AS purchases,
       coalesce(sum(revenue_usd), 0) AS revenue_usd
FROM sessions LEFT JOIN purchases USING (user_pseudo_id, session_id)
WHERE date IS NOT NULL
GROUP BY ALL ORDER BY date, platform, app_version, country
"""


def excluded_sessions(log: EventLog) -> np.ndarray:
    """(N,) bool: the sessions the standing exclusions remove (any internal or debug event, a listed internal
    account, test device or known bot)."""
    events, sessions, users, lists = log.events, log.sessions, log.users, log.lists
    excluded = np.zeros(len(sessions.user), dtype=bool)
    excluded[events.session[events.internal | events.debug]] = True
    excluded |= np.isin(users.login_ids.astype(str), lists.internal_accounts)[sessions.user]
    excluded |= np.isin(users.device_ids.astype(str), lists.test_devices + lists.known_bots)[sessions.user]
    excluded |= sessions.consent_denied  # cookieless: no session
    return excluded


def counted_events(log: EventLog) -> np.ndarray:
    """(E,) bool: events that count (their session is not excluded, ingested before the cut-off), each repeat of
    an event after its first left out."""
    events = log.events
    day = reporting_day(events.timestamp_us)
    cutoff = day_start_micros(0) + (day + LATE_CUTOFF_DAYS) * 86_400 * 1_000_000
    rows = np.flatnonzero(~excluded_sessions(log)[events.session] & (events.ingested_us < cutoff))
    # The log keeps an event's repeats beside it (sorted by session, time and name): a repeat follows its first.
    repeat = np.zeros(len(rows), dtype=bool)
    repeat[1:] = (
        (events.session[rows][1:] == events.session[rows][:-1])
        & (events.timestamp_us[rows][1:] == events.timestamp_us[rows][:-1])
        & (events.name[rows][1:] == events.name[rows][:-1])
    )
    once = np.zeros(len(events), dtype=bool)
    once[rows[~repeat]] = True
    return once


@dataclass(frozen=True)
class CountedSessions:
    """The sessions the metrics layer counts, one entry each: its reporting date, the codes of its platform,
    app version, country and channel (the log's labels), whether it is new (its session_id is 1), the funnel steps
    it reached (sessions, menu, cart, order, payment), its purchases and its revenue in USD."""

    day: np.ndarray
    platform: np.ndarray
    version: np.ndarray
    country: np.ndarray
    channel: np.ndarray
    new: np.ndarray
    reached: np.ndarray  # (N, 5) bool
    purchases: np.ndarray
    revenue: np.ndarray

    def mask(self, log: EventLog, segment: Segment) -> np.ndarray:
        """(N,) the counted sessions inside a segment of any of platform, app_version, country, channel and
        user_type."""
        keep = np.ones(len(self.day), dtype=bool)
        users = log.users
        columns = {
            "platform": (self.platform, users.platform.values),
            "app_version": (self.version, log.sessions.app_version.values),
            "country": (self.country, users.country.values),
            "channel": (self.channel, users.channel.values),
        }
        for name, value in segment.normalised().named().items():
            if name == "user_type":
                keep &= self.new == (value == "new")
                continue
            codes, values = columns[name]
            keep &= codes == (values.index(value) if value in values else -1)
        return keep


def counted_sessions(log: EventLog) -> CountedSessions:
    """The metrics layer's sessions: those with a counted app_open, dated and placed by it."""
    events, sessions, users = log.events, log.sessions, log.users
    counted = counted_events(log)
    day = reporting_day(events.timestamp_us)
    n = len(sessions.user)
    never = np.iinfo(np.int64).max
    open_day = np.full(n, never)
    opens = counted & (events.name == event_code("app_open"))
    np.minimum.at(open_day, events.session[opens], day[opens])
    reached = np.zeros((n, len(FUNNEL_STEP_NAMES)), dtype=bool)
    for step, name in enumerate(FUNNEL_STEP_NAMES):
        at = counted & (events.name == event_code(name))
        reached[events.session[at], step] = True
    purchases = np.zeros(n)
    revenue = np.zeros(n)
    paid = np.flatnonzero(counted & (events.name == event_code("payment_successful")))
    rate = log.units_per_usd[events.currency[paid], day[paid]]
    paid, rate = paid[~np.isnan(rate)], rate[~np.isnan(rate)]  # the join to currency_rates drops one with no row
    _, first = np.unique(events.transaction[paid], return_index=True)
    paid, rate = paid[first], rate[first]
    np.add.at(purchases, events.session[paid], 1)
    np.add.at(revenue, events.session[paid], events.value[paid] / rate)
    live = np.flatnonzero(open_day < never)
    user = sessions.user[live]
    return CountedSessions(
        day=open_day[live],
        platform=users.platform.codes[user],
        version=sessions.app_version.codes[live],
        country=users.country.codes[user],
        channel=users.channel.codes[user],
        new=sessions.session_id[live] == 1,
        reached=reached[live],
        purchases=purchases[live],
        revenue=revenue[live],
    )


def dashboard(log: EventLog) -> SqlTable:
    """The dashboard: the metrics layer over the event log, one row per date and segment with counted sessions,
    ordered as DASHBOARD_SQL orders it."""
    sessions, users = log.sessions, log.users
    counted = counted_sessions(log)
    sizes = (len(users.platform.values), len(sessions.app_version.values), len(users.country.values))
    group = (
        (counted.day * sizes[0] + _rank(users.platform.values)[counted.platform]) * sizes[1]
        + _rank(sessions.app_version.values)[counted.version]
    ) * sizes[2] + _rank(users.country.values)[counted.country]
    unique, row = np.unique(group, return_inverse=True)
    keys = np.stack(np.unravel_index(unique, (log.num_days, *sizes)), axis=1)
    row = row.reshape(-1)
    rows = len(keys)
    counts = np.stack(
        [np.bincount(row, counted.reached[:, step], rows) for step in range(len(FUNNEL_STEP_NAMES))], axis=1
    ).astype(np.int64)
    counts[:, 0] = np.bincount(row, minlength=rows)
    table: SqlTable = {
        "date": np.datetime64(WINDOW_START, "D") + keys[:, 0].astype("timedelta64[D]"),
        "platform": _sorted_labels(keys[:, 1], users.platform.values),
        "app_version": _sorted_labels(keys[:, 2], sessions.app_version.values),
        "country": _sorted_labels(keys[:, 3], users.country.values),
        **{column: counts[:, i] for i, column in enumerate(STEP_SESSION_COLUMNS)},
    }
    for i, rate in enumerate(RATE_COLUMNS):
        table[rate] = np.divide(counts[:, i + 1], counts[:, i], out=np.full(rows, np.nan), where=counts[:, i] > 0)
    table["purchases"] = np.bincount(row, counted.purchases, rows).astype(np.int64)
    table["revenue_usd"] = np.bincount(row, counted.revenue, rows)
    return table


def segment_sessions(log: EventLog, counted: CountedSessions, segment: Segment) -> np.ndarray:
    """(D, 5) a segment's counted sessions reaching each funnel step by date (sessions, menu_sessions, ...,
    payment_sessions: the five counts' positions), for a segment of any of the metrics layer's fields."""
    keep = counted.mask(log, segment)
    counts = np.zeros((log.num_days, len(STEP_SESSION_COLUMNS)), dtype=np.int64)
    for step in range(len(STEP_SESSION_COLUMNS)):
        np.add.at(counts[:, step], counted.day[keep], counted.reached[keep, step])
    return counts


def segment_metric(board: SqlTable, segment: Segment, metric: str, day: int) -> float:
    """A dashboard metric of a segment (any of platform, app_version and country; the rest summed) on one date,
    by the metrics layer: a count is the sum of its rows, a rate the sum of its numerator over the sum of its
    denominator (NaN over zero)."""
    keep = board["date"] == np.datetime64(WINDOW_START, "D") + np.timedelta64(day, "D")
    for name, value in segment.normalised().named().items():
        column = board[name]
        assert isinstance(column, Labels), f"{name} is not a dashboard segment column"
        keep = keep & (column.codes == (column.values.index(value) if value in column.values else -1))
    if metric in RATE_COLUMNS:
        step = RATE_COLUMNS.index(metric)
        numerator = float(np.asarray(board[STEP_SESSION_COLUMNS[step + 1]])[keep].sum())
        denominator = float(np.asarray(board[STEP_SESSION_COLUMNS[step]])[keep].sum())
        return numerator / denominator if denominator else float("nan")
    return float(np.asarray(board[metric])[keep].sum())


def _rank(values: tuple[str, ...]) -> np.ndarray:
    """Each value's position in sorted order (rows sort by text, as SQL's ORDER BY does)."""
    ranks = np.empty(len(values), dtype=np.int64)
    ranks[np.argsort(np.array(values, dtype=str), kind="stable")] = np.arange(len(values))
    return ranks


def _sorted_labels(ranks: np.ndarray, values: tuple[str, ...]) -> Labels:
    ordered = tuple(sorted(values))
    return Labels(ranks.astype(np.int8), ordered)
