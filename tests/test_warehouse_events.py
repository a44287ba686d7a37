"""The warehouse's raw events: drawn from the segmented world's expected values (one world at two grains), the
same for the same seed, each session a well-formed stream of events, and served to the SQL tool with DuckDB's
nested types."""

from __future__ import annotations

import datetime as dt
import math
import pickle
import zoneinfo
from collections import Counter

import numpy as np
import pytest

from metric_tracker_rl.catalog.seeding import EpisodeKey
from metric_tracker_rl.catalog.tiers import DEEP_MIX
from metric_tracker_rl.generation.segment_plan import SegmentedPlan, segmented_plan
from metric_tracker_rl.generation.warehouse.events import SAMPLE_RATE, SESSION_LAYOUT, draw_event_log
from metric_tracker_rl.generation.warehouse.standing import LATE_DAYS, standing_sessions
from metric_tracker_rl.sql.columns import Labels, Nested
from metric_tracker_rl.sql.engine import EpisodeTables, open_database
from metric_tracker_rl.world.events import (
    COUNTRY_CURRENCY,
    EVENT_NAMES,
    REPORTING_TIME_ZONE,
    EventLog,
    event_code,
    reporting_day,
)
from metric_tracker_rl.world.funnel import WINDOW_START
from metric_tracker_rl.world.metrics_layer import (
    DASHBOARD_SQL,
    METRICS_LAYER,
    RATE_COLUMNS,
    dashboard,
    excluded_sessions,
)
from metric_tracker_rl.world.segments import Segment, world_of

DAYS = 56


def _plan(seed: int) -> SegmentedPlan:
    return segmented_plan(EpisodeKey.of(seed), DAYS, world_of(DEEP_MIX.dimensions))


@pytest.fixture(scope="module")
def plan() -> SegmentedPlan:
    return _plan(7)


@pytest.fixture(scope="module")
def log(plan: SegmentedPlan) -> EventLog:
    return draw_event_log(plan, EpisodeKey.of(7))


@pytest.fixture(scope="module")
def tables(log: EventLog) -> EpisodeTables:
    # As a worker gets them: pickled across the pipe.
    return EpisodeTables(open_database(), pickle.loads(pickle.dumps(log.sql_tables())))


def _names(log: EventLog, name: str) -> np.ndarray:
    return log.events.name == event_code(name)


def _world(log: EventLog, plan: SegmentedPlan) -> np.ndarray:
    """(E,) bool: events of the world's own sessions (the standing sources' come after them), first copies (of a
    purchase: its first payment_successful)."""
    standing, _, _ = standing_sessions(plan, EpisodeKey.of(7), log.users.channel.values)
    events = log.events
    # A purchase sent again (its transaction id at a later time) is a repeat too.
    resent = events.name == event_code("payment_successful")
    identity = np.stack(
        [
            events.session.astype(np.int64),
            events.name.astype(np.int64),
            np.where(resent, events.transaction, events.timestamp_us),
        ],
        axis=1,
    )
    first = np.zeros(len(events), dtype=bool)
    first[np.unique(identity, axis=0, return_index=True)[1]] = True
    return first & (events.session < len(log.sessions.user) - len(standing))


def test_the_same_seed_draws_the_same_events_and_another_seed_others(log: EventLog) -> None:
    again = draw_event_log(_plan(7), EpisodeKey.of(7))
    for field in log.events.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(again.events, field), getattr(log.events, field))
    np.testing.assert_array_equal(again.users.pseudo_ids, log.users.pseudo_ids)
    other = draw_event_log(_plan(8), EpisodeKey.of(8))
    assert len(other.events) != len(log.events) or not np.array_equal(
        other.events.timestamp_us, log.events.timestamp_us
    )


def test_sessions_follow_the_worlds_expected_opens_at_the_sample_rate(plan: SegmentedPlan, log: EventLog) -> None:
    """One world at two grains: each platform's and each country's sessions per date are Poisson around the
    plan's expected opens times the sample rate."""
    opens = _names(log, "app_open") & _world(log, plan)
    session = log.events.session[opens]
    day = reporting_day(log.events.timestamp_us[opens])
    users = log.users
    user = log.sessions.user[session]
    for field, labels in (("platform", users.platform), ("country", users.country)):
        values = labels.values
        for position, value in enumerate(values):
            cell = plan.layout.mask(Segment(**{field: value}))
            expected = plan.traffic[cell].sum(axis=(0, 2)) * SAMPLE_RATE  # (D,)
            seen = np.bincount(day[labels.codes[user] == position], minlength=DAYS)[:DAYS]
            z = (seen - expected) / np.sqrt(expected)
            assert abs(z.mean()) < 4 / np.sqrt(DAYS), (field, value, z.mean())  # no bias
            assert 0.6 < z.std() < 1.6, (field, value, z.std())  # Poisson spread, a little more from day edges


def test_each_step_converts_at_the_worlds_rate(plan: SegmentedPlan, log: EventLog) -> None:
    """Sessions reaching each funnel step over those reaching the one before, against the plan's expected reach
    (its leaves' factors and every hour's rate) over the whole window."""
    reach = plan.leaf_reach().sum(axis=(0, 1, 2))  # (5,) expected opens reaching each event, every leaf and date
    sessions_at = [
        len(np.unique(log.events.session[_names(log, name) & _world(log, plan)]))
        for name in ("app_open", "menu_open", "product_added_to_cart", "order_placed", "payment_successful")
    ]
    for step in range(4):
        expected = reach[step + 1] / reach[step]
        seen = sessions_at[step + 1] / sessions_at[step]
        spread = np.sqrt(expected * (1 - expected) / sessions_at[step])
        assert abs(seen - expected) < 5 * spread + 0.01, (step, seen, expected)


def test_every_session_is_a_well_formed_stream(plan: SegmentedPlan, log: EventLog) -> None:
    """One session_start, app_open and user_engagement per session (repeats aside; a session of the last date may
    end past the window, one of its last dates may still hold late events the export does not), in time order; a
    funnel step only after the one before it; a first_open only on a new user's first session; an ingestion after
    its event."""
    events = log.events
    world = _world(log, plan)
    per_session = {
        name: np.bincount(events.session[_names(log, name) & world], minlength=len(log.sessions.user))
        for name in EVENT_NAMES
    }
    # A session on the last date may run past its midnight: its later events fall outside the window. And the
    # export ends when the last date closes: an offline session of the window's last LATE_DAYS dates may not have
    # sent its later events yet.
    whole = (per_session["session_start"] > 0) & (log.session_days() < log.num_days - 1 - math.ceil(LATE_DAYS[1]))
    for name in ("session_start", "app_open", "user_engagement"):
        assert (per_session[name][whole] == 1).all(), name
    funnel = ("app_open", "menu_open", "product_added_to_cart", "order_placed", "payment_successful")
    for before, after in zip(funnel, funnel[1:], strict=False):
        assert (per_session[after] <= per_session[before]).all(), (before, after)
    order = np.lexsort((events.timestamp_us, events.session))
    assert (order == np.arange(len(order))).all()  # grouped by session, in time within each
    first_sessions = np.unique(log.sessions.user, return_index=True)[1]
    opened = np.flatnonzero(per_session["first_open"])
    assert set(opened) <= set(first_sessions)
    assert (log.users.first_touch_day[log.sessions.user[opened]] >= 0).all()
    assert (events.ingested_us > events.timestamp_us).all()
    assert len(SESSION_LAYOUT) == len(set(SESSION_LAYOUT)) + 3  # screen views repeat, nothing else


def test_a_session_is_new_exactly_when_it_is_its_new_users_first(plan: SegmentedPlan, log: EventLog) -> None:
    """The metrics layer calls a session new when its session_id is 1: the world's new users' sessions, and no
    returning user's (their numbers continue from their sessions before the window)."""
    standing, _, _ = standing_sessions(plan, EpisodeKey.of(7), log.users.channel.values)
    world = np.arange(len(log.sessions.user)) < len(log.sessions.user) - len(standing)
    new_user = log.users.first_touch_day[log.sessions.user] >= 0
    np.testing.assert_array_equal((log.sessions.session_id == 1)[world], new_user[world])
    assert 0.25 < new_user[world].mean() < 0.45  # the world's share of new users' sessions


def test_the_event_date_is_the_reporting_time_zones(tables: EpisodeTables) -> None:
    columns, rows, _ = tables.run(
        "SELECT event_date, event_timestamp FROM events USING SAMPLE 200 ROWS (reservoir, 3)", 0, 200
    )
    zone = zoneinfo.ZoneInfo(REPORTING_TIME_ZONE)
    for date, micros in rows:
        local = dt.datetime.fromtimestamp(micros / 1e6, tz=dt.timezone.utc).astimezone(zone)
        assert local.date().isoformat() == date
    _, bounds, _ = tables.run("SELECT min(event_date), max(event_date) FROM events", 0, 1)
    assert bounds[0] == [WINDOW_START.isoformat(), (WINDOW_START + dt.timedelta(days=DAYS - 1)).isoformat()]


def test_the_events_table_has_the_exports_nested_shape(tables: EpisodeTables) -> None:
    _, rows, _ = tables.run("DESCRIBE events", 0, 50)
    types = {name: kind for name, kind, *_ in rows}
    assert types["event_params"] == (
        'STRUCT("key" VARCHAR, "value" STRUCT(string_value VARCHAR, int_value BIGINT, double_value DOUBLE))[]'
    )
    assert types["event_timestamp"] == "BIGINT" and types["event_date"] == "DATE"
    for record in ("device", "geo", "app_info", "traffic_source", "privacy_info"):
        assert types[record].startswith("STRUCT("), record


def test_dates_and_numeric_parameters_hold_each_distinct_value_once(log: EventLog) -> None:
    """An open episode's memory: the event date and a parameter's numbers are dictionaries of their distinct values
    with a narrow index per entry, which SQL still reads as DATE, BIGINT and DOUBLE (the shape test)."""
    events = log.sql_tables()["events"]
    dates_column, params = events["event_date"], events["event_params"]
    assert isinstance(dates_column, Nested) and isinstance(params, Nested)
    dates = dates_column.array
    assert dates.nbytes - dates.dictionary.nbytes <= 1.2 * len(dates)  # a byte an event (and validity)
    value = params.array.values.field("value")
    for field, distinct_at_most in (("int_value", 0.5), ("double_value", 0.1)):
        column = value.field(field)
        assert len(column.dictionary) <= distinct_at_most * len(column), field
        assert column.nbytes - column.dictionary.nbytes <= 0.55 * 8 * len(column), field  # index and validity


def test_a_session_count_in_sql_is_the_logs(log: EventLog, tables: EpisodeTables) -> None:
    """Sessions are (user_pseudo_id, session_id) pairs read out of the nested parameters; consented sessions'
    counts per date in SQL equal the log's."""
    sql = (
        "SELECT event_date, count(DISTINCT (user_pseudo_id, list_filter(event_params, "
        "lambda p: p.key = 'session_id')[1].value.int_value)) FROM events "
        "WHERE event_name = 'app_open' AND privacy_info.analytics_storage = 'granted' GROUP BY 1 ORDER BY 1"
    )
    _, rows, _ = tables.run(sql, 0, DAYS)
    opens = _names(log, "app_open") & ~log.sessions.consent_denied[log.events.session]
    opens[np.flatnonzero(opens)[1:]] &= np.diff(log.events.session[opens]) != 0  # a repeated open counts once
    days = reporting_day(log.events.timestamp_us[opens])
    assert [count for _, count in rows] == np.bincount(days, minlength=DAYS).tolist()


def test_parameters_are_listed_on_the_events_that_carry_them(log: EventLog, tables: EpisodeTables) -> None:
    sql = "SELECT event_name, p.key, count(*) FROM (SELECT event_name, unnest(event_params) p FROM events) GROUP BY ALL"
    _, rows, _ = tables.run(sql, 0, 200)
    keys: dict[str, set[str]] = {}
    for name, key, _ in rows:
        keys.setdefault(name, set()).add(key)
    assert keys["payment_successful"] >= {"session_id", "transaction_id", "value", "currency"}
    assert (
        keys["product_added_to_cart"] >= {"value", "currency"} and "transaction_id" not in keys["product_added_to_cart"]
    )
    assert "engagement_time_msec" in keys["user_engagement"] and "value" not in keys["app_open"]
    sql = (
        "SELECT geo.country, list_filter(event_params, lambda p: p.key = 'currency')[1].value.string_value "
        "FROM events WHERE event_name = 'order_placed' GROUP BY ALL"
    )
    _, rows, _ = tables.run(sql, 0, 50)
    # Each country's purchases are in its currency, or in US dollars (a card billed in them).
    countries = log.users.country.values
    assert {(country, currency) for country, currency in rows} == {
        (country, currency) for country in countries for currency in (COUNTRY_CURRENCY[country], "USD")
    }
    # an order and its payment share one transaction id
    paid = Counter(log.events.transaction[_names(log, "payment_successful")].tolist())
    ordered = Counter(log.events.transaction[_names(log, "order_placed")].tolist())
    assert set(paid) <= set(ordered) and -1 not in paid
    assert len(set(log.events.session[_names(log, "payment_successful")].tolist())) == len(paid)
    assert max(paid.values()) >= 2  # a payment SDK sends some purchases again, under their transaction id


def test_the_dashboard_is_the_metrics_layers_sql_over_the_events(log: EventLog, tables: EpisodeTables) -> None:
    """The pipeline's arrays and the metrics layer's SQL over the raw events agree on every row (no defect is in
    this world: the standing traffic, repeats and late events are what the rules handle)."""
    board = dashboard(log)
    columns, rows, count = tables.run(DASHBOARD_SQL, 0, 5000)
    assert count == len(board["sessions"]) > 1000
    for position, name in enumerate(columns):
        seen = [row[position] for row in rows]
        column = board[name]
        assert not isinstance(column, Nested), name
        if isinstance(column, Labels):
            assert seen == [column.values[c] for c in column.codes], name
        elif name == "date":
            assert seen == [str(d) for d in column], name
        elif name == "revenue_usd":
            np.testing.assert_allclose(seen, column, rtol=1e-9, atol=1e-9)
        else:
            assert seen == column.tolist(), name
    assert {name for name in board if name not in columns} == set(RATE_COLUMNS)


def test_the_rules_remove_exactly_the_standing_traffic(plan: SegmentedPlan, log: EventLog) -> None:
    """The standing sources' sessions (drawn after the world's) and the sessions without consent are exactly the
    ones the metrics layer's exclusions remove: no world session is lost, no standing one kept."""
    standing, _, lists = standing_sessions(plan, EpisodeKey.of(7), log.users.channel.values)
    is_standing = np.arange(len(log.sessions.user)) >= len(log.sessions.user) - len(standing)
    # A session none of whose events the export holds (all ingested after it was taken) is neither: it is absent.
    logged = np.zeros(len(log.sessions.user), dtype=bool)
    logged[log.events.session] = True
    np.testing.assert_array_equal(excluded_sessions(log)[logged], (is_standing | log.sessions.consent_denied)[logged])
    assert lists == log.lists and all(lists.internal_accounts) and len(set(lists.known_bots)) == len(lists.known_bots)
    # every rule is needed: each source is caught by one rule only where its events are not all tagged
    tagged = np.zeros(len(log.sessions.user), dtype=bool)
    tagged[log.events.session[log.events.internal | log.events.debug]] = True
    assert (is_standing & ~tagged).any() and (is_standing & tagged).any()


def test_the_metrics_layer_text_names_everything_its_pipeline_uses(log: EventLog) -> None:
    """No definition the model cannot read: every table the pipeline's SQL reads, every dashboard column, every
    event parameter it reads and the time zone appear in the metrics layer's text."""
    text = " ".join(METRICS_LAYER.values())
    for table in ("events", "internal_accounts", "test_devices", "known_bots", "currency_rates"):
        assert f"FROM {table}" in DASHBOARD_SQL or f"JOIN {table}" in DASHBOARD_SQL, table
        assert table in text or table == "events", table
    for column in dashboard(log):
        assert column in text or column in ("date", "platform", "app_version", "country"), column
    for parameter in ("session_id", "transaction_id", "value", "currency", "traffic_type", "debug_mode"):
        assert f"'{parameter}'" in DASHBOARD_SQL and parameter in text, parameter
    assert REPORTING_TIME_ZONE in text and "ingestion_timestamp" in text
    assert "analytics_storage = 'granted'" in DASHBOARD_SQL and "analytics_storage is 'denied'" in text  # consent
