"""Finders for faults an analyst's sanity checks catch: a value or a time no user could have made. Each is one
statement over the export and its side tables (audit_finders.py states the contract):

- inverted_rate: a currency_rates row many times off its currency's usual rate, on a date purchases in that
  currency were made (their country is the segment);
- menu_prefire: an app version whose sessions nearly all send menu_open within a second of their app_open, where
  users take seconds;
- purchase_double_fire: an app version whose paying sessions nearly all log one value twice, seconds apart, under
  two transaction ids (each id first logged seconds apart: a payment's own resends keep its id);
- stamped_behind: an app version's events ingested half a day after the time they are stamped with, nearly all of
  them a whole number of hours and a few minutes, and none of them also ingested on time (a batch ingested again
  hours later is), where events arrive within minutes or, late, days after.
"""

from __future__ import annotations

from metric_tracker_rl.agents.audit_finders import Finder
from metric_tracker_rl.agents.audit_traces_pipeline import GRANTED, REVENUE, SESSION_ID, SESSIONS, _finding, _param

MENU_RATE = "'app_open_to_menu_open'"  # a finding's metric, as SQL text
OFF_RATE = 3.0  # a rate this many times its currency's median (either way)
PREFIRE_US, PREFIRE_MIN, PREFIRE_SHARE = 1_000_000, 10, 0.5  # a menu_open within a second: sessions, their share
DOUBLE_US, DOUBLE_MIN, DOUBLE_SHARE = 10_000_000, 2, 0.5  # one value twice within seconds: sessions, their share
HOUR_US = 3_600_000_000
BEHIND_US = (9 * HOUR_US, 15 * HOUR_US)  # an event ingested this long after its stamp
# Such events of a date and app version, nearly all of them a whole number of hours late, give or take the
# minutes an event takes to arrive (a batch ingested again hours later arrives at one time, whatever its stamps).
BEHIND_MIN, WHOLE_HOURS_SHARE, WHOLE_HOUR_SLACK_US = 20, 0.8, 15 * 60_000_000

INVERTED_RATE = Finder(
    "inverted_rate",
    (
        "WITH m AS (SELECT currency, median(units_per_usd) typical FROM currency_rates GROUP BY currency), "
        "odd AS (SELECT CAST(r.currency AS VARCHAR) cur, r.date FROM currency_rates r JOIN m USING (currency) "
        f"WHERE r.units_per_usd > {OFF_RATE} * m.typical OR r.units_per_usd * {OFF_RATE} < m.typical), "
        f"p AS (SELECT event_date d, geo.country country, {_param('currency', 'string_value')} cur FROM events "
        f"WHERE event_name = 'payment_successful' AND {GRANTED}) "
        f"SELECT DISTINCT {_finding('d', REVENUE, 'inverted_rate', country='country')} "
        "FROM p JOIN odd ON p.cur = odd.cur AND p.d = odd.date ORDER BY ALL"
    ),
)

MENU_PREFIRE = Finder(
    "menu_prefire",
    (
        f"WITH e AS (SELECT user_pseudo_id u, {SESSION_ID} s, event_date d, platform p, app_info.version v, "
        "event_name n, event_timestamp t FROM events "
        f"WHERE {GRANTED} AND event_name IN ('app_open', 'menu_open')), "
        "k AS (SELECT min(d) FILTER (n = 'app_open') d, min(p) p, min(v) FILTER (n = 'app_open') v, "
        "min(t) FILTER (n = 'app_open') o, min(t) FILTER (n = 'menu_open') m FROM e GROUP BY u, s) "
        f"SELECT {_finding('d', MENU_RATE, 'menu_prefire', 'p', 'v')} "
        "FROM k WHERE o IS NOT NULL GROUP BY d, p, v "
        f"HAVING count(*) FILTER (m - o BETWEEN 0 AND {PREFIRE_US}) >= greatest({PREFIRE_MIN}, "
        f"{PREFIRE_SHARE} * count(*)) ORDER BY ALL"
    ),
)

PURCHASE_DOUBLE_FIRE = Finder(
    "purchase_double_fire",
    (
        f"WITH e AS (SELECT user_pseudo_id u, {SESSION_ID} s, event_date d, platform p, app_info.version v, "
        f"event_timestamp t, {_param('transaction_id', 'string_value')} tx, {_param('value', 'double_value')} val "
        f"FROM events WHERE event_name = 'payment_successful' AND {GRANTED}), "
        "x AS (SELECT u, s, tx, min(d) d, min(p) p, min(v) v, min(t) t, min(val) val FROM e GROUP BY u, s, tx), "
        "k AS (SELECT min(d) d, min(p) p, min(v) v, count(*) txs, count(DISTINCT val) vals, max(t) - min(t) spread "
        "FROM x GROUP BY u, s) "
        f"SELECT {_finding('d', REVENUE, 'purchase_double_fire', 'p', 'v')} FROM k GROUP BY d, p, v "
        f"HAVING count(*) FILTER (txs >= 2 AND vals = 1 AND spread < {DOUBLE_US}) >= greatest({DOUBLE_MIN}, "
        f"{DOUBLE_SHARE} * count(*)) ORDER BY ALL"
    ),
)

STAMPED_BEHIND = Finder(
    "stamped_behind",
    (
        "WITH b AS (SELECT user_pseudo_id u, event_name n, event_timestamp t, event_date d, platform p, "
        "app_info.version v, ingestion_timestamp - event_timestamp lag FROM events "
        f"WHERE ingestion_timestamp - event_timestamp BETWEEN {BEHIND_US[0]} AND {BEHIND_US[1]}), "
        "e AS (SELECT * FROM b ANTI JOIN events x ON x.user_pseudo_id = b.u AND x.event_name = b.n "
        f"AND x.event_timestamp = b.t AND x.ingestion_timestamp - x.event_timestamp < {BEHIND_US[0]}) "
        f"SELECT {_finding('d', SESSIONS, 'stamped_behind', 'p', 'v')} FROM e GROUP BY d, p, v "
        f"HAVING count(*) FILTER (lag % {HOUR_US} < {WHOLE_HOUR_SLACK_US}) >= greatest({BEHIND_MIN}, "
        f"{WHOLE_HOURS_SHARE} * count(*)) ORDER BY ALL"
    ),
)

FINDERS: tuple[Finder, ...] = (INVERTED_RATE, MENU_PREFIRE, PURCHASE_DOUBLE_FIRE, STAMPED_BEHIND)
