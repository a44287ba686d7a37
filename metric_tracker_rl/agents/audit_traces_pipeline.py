"""Finders for recording faults of the pipeline, the clock, the joins, the traffic and the SDK's names: each one
statement over an episode's tables that flags where the events carry a trace no change in what users did leaves.

- batch_replay: one user's app_open at one microsecond under two session ids (a batch ingested twice, the replay
  sessionized anew);
- ingestion_gap: sessions whose events have no session_start or app_open before them (the events that opened them
  were never ingested; the export's own late cut keeps a session's first events, never its last alone);
- device_clock_ahead: events ingested before the time they are stamped with;
- missing_rate_rows: purchases on a date of the rates' window in a currency currency_rates has no row for;
- minor_units: an app version whose purchase values are, as a rule, tens of times their currency's usual, in more
  than one currency (a mislabelled currency's are so in the one it names);
- untagged_load_test: a device on no reference list with many sessions on a date, all its purchases of one value;
- event_renamed_silently: an event name outside the tracking plan on an app version, named by no changelog entry of
  its platform dated on or before it.
"""

from __future__ import annotations

from metric_tracker_rl.agents.audit_finders import Finder
from metric_tracker_rl.world.events import EVERYDAY_EVENT_NAMES, FUNNEL_EVENT_NAMES

SESSIONS, REVENUE = "'sessions'", "'revenue_usd'"  # a finding's metric, as SQL text
GRANTED = "privacy_info.analytics_storage = 'granted'"
SESSION_ID = "list_filter(event_params, lambda p: p.key = 'session_id')[1].value.int_value"
REPLAYED_MIN = 3  # app_opens of a date and platform under two session ids
ORPHANS_MIN = 3  # sessions of a date and platform with no opening event
AHEAD_MIN = 5  # events of a date and platform ingested before their stamp
MINOR_RATIO = 20.0  # a version's median purchase over its currency's median: tens of times (cents are 100)
LOAD_SESSIONS_MIN, LOAD_PAYMENTS_MIN = 8, 5  # an unlisted device's sessions and same-value payments on a date
ODD_MIN = 3  # events of a name outside the plan on a date and app version
RENAMED_LEFT = 0.1  # a renamed event's own name, as a share of the new name's events on its version and date


def _param(key: str, field: str) -> str:
    return f"list_filter(event_params, lambda p: p.key = '{key}')[1].value.{field}"


def _finding(
    date: str, metric: str, what: str, platform: str = "NULL", app_version: str = "NULL", country: str = "NULL"
) -> str:
    """The select list of a finding (FINDING_COLUMNS) from its expressions."""

    def text(expression: str) -> str:
        return f"CAST({expression} AS VARCHAR)"

    return (
        f"{text(date)} AS date, {text(platform)} AS platform, {text(app_version)} AS app_version, "
        f"{text(country)} AS country, CAST(NULL AS VARCHAR) AS channel, CAST(NULL AS VARCHAR) AS user_type, "
        f"{metric} AS metric, '{what}' AS what"
    )


BATCH_REPLAY = Finder(
    "batch_replay",
    (
        f"WITH o AS (SELECT user_pseudo_id, event_timestamp, min(event_date) d, min(platform) platform, "
        f"count(DISTINCT {SESSION_ID}) ids FROM events WHERE event_name = 'app_open' AND {GRANTED} "
        f"GROUP BY user_pseudo_id, event_timestamp) "
        f"SELECT {_finding('d', SESSIONS, 'batch_replay', platform='platform')} FROM o WHERE ids > 1 "
        f"GROUP BY d, platform HAVING count(*) >= {REPLAYED_MIN} ORDER BY ALL"
    ),
)

INGESTION_GAP = Finder(
    "ingestion_gap",
    (
        f"WITH s AS (SELECT user_pseudo_id, {SESSION_ID} sid, min(event_date) d, min(platform) platform, "
        "bool_or(event_name IN ('first_open', 'session_start', 'app_open')) opened FROM events "
        f"WHERE {GRANTED} GROUP BY 1, 2) "
        f"SELECT {_finding('d', SESSIONS, 'ingestion_gap', platform='platform')} FROM s WHERE NOT opened "
        f"GROUP BY d, platform HAVING count(*) >= {ORPHANS_MIN} ORDER BY ALL"
    ),
)

DEVICE_CLOCK_AHEAD = Finder(
    "device_clock_ahead",
    (
        f"SELECT {_finding('event_date', SESSIONS, 'device_clock_ahead', platform='platform')} FROM events "
        f"WHERE ingestion_timestamp < event_timestamp GROUP BY event_date, platform HAVING count(*) >= {AHEAD_MIN} "
        "ORDER BY ALL"
    ),
)

MISSING_RATE_ROWS = Finder(
    "missing_rate_rows",
    (
        f"WITH p AS (SELECT event_date, geo.country country, {_param('currency', 'string_value')} currency "
        f"FROM events WHERE event_name = 'payment_successful' AND {GRANTED}), "
        "w AS (SELECT min(date) first, max(date) last FROM currency_rates) "
        f"SELECT {_finding('event_date', REVENUE, 'missing_rate_rows', country='country')} "
        "FROM p JOIN w ON p.event_date BETWEEN w.first AND w.last "
        "ANTI JOIN currency_rates r ON CAST(r.currency AS VARCHAR) = p.currency AND r.date = p.event_date "
        "GROUP BY event_date, country ORDER BY ALL"
    ),
)

MINOR_UNITS = Finder(
    "minor_units",
    (
        f"WITH p AS (SELECT event_date d, platform, app_info.version v, {_param('value', 'double_value')} val, "
        f"{_param('currency', 'string_value')} cur FROM events WHERE event_name = 'payment_successful' AND {GRANTED}), "
        "m AS (SELECT cur, median(val) typical FROM p GROUP BY cur HAVING typical > 0), "
        "r AS (SELECT d, platform, v, cur, val / typical ratio FROM p JOIN m USING (cur)), "
        f"every AS (SELECT platform, v FROM r WHERE ratio > {MINOR_RATIO} GROUP BY ALL "
        "HAVING count(DISTINCT cur) >= 2) "
        f"SELECT {_finding('d', REVENUE, 'minor_units', platform='platform', app_version='v')} "
        f"FROM r SEMI JOIN every USING (platform, v) GROUP BY d, platform, v HAVING median(ratio) > {MINOR_RATIO} "
        "ORDER BY ALL"
    ),
)

UNTAGGED_LOAD_TEST = Finder(
    "untagged_load_test",
    (
        "WITH e AS (SELECT device.device_id dev, event_date d, platform, geo.country country, event_name, "
        f"event_timestamp, CASE WHEN event_name = 'payment_successful' THEN {_param('value', 'double_value')} END val "
        f"FROM events WHERE event_name IN ('app_open', 'payment_successful') AND {GRANTED} "
        "AND device.device_id NOT IN (SELECT device_id FROM test_devices UNION ALL SELECT device_id FROM known_bots)), "
        "busy AS (SELECT d, min(platform) platform, min(country) country FROM e GROUP BY dev, d "
        f"HAVING count(DISTINCT event_timestamp) FILTER (event_name = 'app_open') >= {LOAD_SESSIONS_MIN} "
        f"AND count(val) >= {LOAD_PAYMENTS_MIN} AND count(DISTINCT val) = 1) "
        f"SELECT DISTINCT {_finding('d', SESSIONS, 'untagged_load_test', platform='platform', country='country')} "
        "FROM busy ORDER BY ALL"
    ),
)

_PLAN = ", ".join(f"'{name}'" for name in FUNNEL_EVENT_NAMES + EVERYDAY_EVENT_NAMES)


def _first_missing_step() -> str:
    """After `odd JOIN c`: the first funnel step whose event the odd name replaced (its own name left with under
    RENAMED_LEFT of the odd events: a session begun before the update may still send it), sessions if none."""
    steps = (
        ("menu_open", "app_open_to_menu_open"),
        ("product_added_to_cart", "menu_open_to_product_added_to_cart"),
        ("order_placed", "product_added_to_cart_to_order_placed"),
    )
    whens = " ".join(
        f"WHEN coalesce(sum(c.k) FILTER (n = '{event}'), 0) < {RENAMED_LEFT} * any_value(odd.k) THEN '{metric}'"
        for event, metric in steps
    )
    return f"CASE {whens} ELSE 'sessions' END"


EVENT_RENAMED_SILENTLY = Finder(
    "event_renamed_silently",
    (
        "WITH c AS (SELECT event_date d, CAST(platform AS VARCHAR) platform, app_info.version v, "
        "CAST(event_name AS VARCHAR) n, count(*) k FROM events GROUP BY ALL), "
        f"odd AS (SELECT d, platform, v, sum(k) k FROM c WHERE n NOT IN ({_PLAN}) AND NOT EXISTS (SELECT 1 FROM "
        "tracking_changelog t WHERE t.platform = c.platform AND t.date <= c.d AND contains(t.change, c.n)) "
        f"GROUP BY ALL HAVING sum(k) >= {ODD_MIN}) "
        f"SELECT {_finding('d', _first_missing_step(), 'event_renamed_silently', platform='platform', app_version='v')} "  # noqa: E501
        "FROM odd JOIN c USING (d, platform, v) GROUP BY d, platform, v ORDER BY ALL"
    ),
)

FINDERS: tuple[Finder, ...] = (
    BATCH_REPLAY,
    INGESTION_GAP,
    DEVICE_CLOCK_AHEAD,
    MISSING_RATE_ROWS,
    MINOR_UNITS,
    UNTAGGED_LOAD_TEST,
    EVENT_RENAMED_SILENTLY,
)
