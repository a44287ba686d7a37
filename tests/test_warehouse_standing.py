"""The warehouse's standing traffic: each piece is excluded by exactly the rule the metrics layer states for it, so
the dashboard without that rule's input differs on the piece's own segment and dates, the way a model that skips
the rule would read it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from sweep_helpers import first_fast

from metric_tracker_rl.catalog.seeding import EpisodeKey
from metric_tracker_rl.catalog.tiers import DEEP_MIX
from metric_tracker_rl.generation.segment_plan import SegmentedPlan, segmented_plan
from metric_tracker_rl.generation.warehouse.events import draw_event_log
from metric_tracker_rl.generation.warehouse.standing import QA_COUNTRY, QA_DAYS, WEB_TEST_RUNS
from metric_tracker_rl.sql.columns import Labels, Nested, SqlTable
from metric_tracker_rl.sql.engine import EpisodeTables, open_database
from metric_tracker_rl.world.events import (
    COUNTRY_CURRENCY,
    CURRENCIES,
    EventLog,
    day_start_micros,
    event_code,
    reporting_day,
)
from metric_tracker_rl.world.metrics_layer import (
    DASHBOARD_SQL,
    LATE_CUTOFF_DAYS,
    counted_events,
    dashboard,
    segment_metric,
)
from metric_tracker_rl.world.segments import Segment, world_of

DAYS = 56


@pytest.fixture(scope="module", params=first_fast([3, 11]))
def seed(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@pytest.fixture(scope="module")
def plan(seed: int) -> SegmentedPlan:
    return segmented_plan(EpisodeKey.of(seed), DAYS, world_of(DEEP_MIX.dimensions))


@pytest.fixture(scope="module")
def log(plan: SegmentedPlan, seed: int) -> EventLog:
    return draw_event_log(plan, EpisodeKey.of(seed))


@pytest.fixture(scope="module")
def board(log: EventLog) -> SqlTable:
    return dashboard(log)


def _differs(before: SqlTable, after: SqlTable, segment: Segment, metric: str, days: range) -> np.ndarray:
    """(len(days),) the metric's change on the segment, date by date, from `before` to `after`."""
    return np.array(
        [segment_metric(after, segment, metric, d) - segment_metric(before, segment, metric, d) for d in days]
    )


def test_release_qa_is_excluded_by_the_internal_tag(plan: SegmentedPlan, log: EventLog, board: SqlTable) -> None:
    """QA's orders on each release's first dates carry traffic_type internal: the dashboard without the tag counts
    them there, orders placed and never paid, so the release's order-to-payment rate falls on those dates."""
    untagged = dashboard(replace(log, events=replace(log.events, internal=np.zeros(len(log.events), dtype=bool))))
    for release in plan.releases:
        segment = Segment(platform=release.platform, country=QA_COUNTRY, app_version=release.version)
        first = range(release.start_day, min(release.start_day + QA_DAYS, DAYS))
        orders = _differs(board, untagged, segment, "order_sessions", first)
        paid = _differs(board, untagged, segment, "payment_sessions", first)
        # The office's own staff (tagged too) may use the new version and pay; QA's orders add only unpaid ones.
        assert (orders >= paid).all() and (paid >= 0).all() and (orders - paid).sum() >= len(first)
        rate = _differs(board, untagged, segment, "order_placed_to_payment_successful", first)
        assert np.nanmean(rate) < -0.05


def test_the_device_farm_is_excluded_by_the_test_devices_list(log: EventLog, board: SqlTable) -> None:
    """The farm's devices run release builds (no debug tag): only the test_devices list names them. Without the
    list the dashboard counts their sessions, each an app_open and nothing else, many a day on android in the
    office's country."""
    farm = [device for device in log.lists.test_devices if not _tagged(log, device)]
    assert farm, "the farm's devices carry no debug tag"
    unlisted = dashboard(
        replace(
            log,
            lists=replace(
                log.lists, test_devices=tuple(device for device in log.lists.test_devices if device not in farm)
            ),
        )
    )
    segment = Segment(platform="android", country=QA_COUNTRY)
    sessions = _differs(board, unlisted, segment, "sessions", range(DAYS))
    assert (sessions > 0).mean() > 0.9 and sessions.mean() >= 2 * len(farm)
    assert not _differs(board, unlisted, segment, "menu_sessions", range(DAYS)).any()


def test_the_web_checkout_tests_are_excluded_by_the_test_devices_list(log: EventLog, board: SqlTable) -> None:
    """The web checkout suite runs on listed web test devices (no debug tag) on a few dates, each test an order whose
    test card is declined: without the list the dashboard counts their orders on web in the office's country on those
    dates only, never a payment, so web's order-to-payment rate falls there."""
    web = log.users.platform.values.index("web")
    devices = [
        d
        for d in log.lists.test_devices
        if log.users.platform.codes[np.flatnonzero(log.users.device_ids == d)[0]] == web
    ]
    assert devices and not any(_tagged(log, device) for device in devices)
    unlisted = dashboard(
        replace(
            log,
            lists=replace(
                log.lists, test_devices=tuple(device for device in log.lists.test_devices if device not in devices)
            ),
        )
    )
    segment = Segment(platform="web", country=QA_COUNTRY)
    orders = _differs(board, unlisted, segment, "order_sessions", range(DAYS))
    runs = np.flatnonzero(orders)
    assert WEB_TEST_RUNS[0] <= len(runs) <= WEB_TEST_RUNS[1] and orders[runs].min() >= 5
    assert not _differs(board, unlisted, segment, "payment_sessions", range(DAYS)).any()
    rate = [
        segment_metric(unlisted, Segment(platform="web"), "order_placed_to_payment_successful", d)
        - segment_metric(board, Segment(platform="web"), "order_placed_to_payment_successful", d)
        for d in runs
    ]
    assert max(rate) < -0.2


def _tagged(log: EventLog, device: str) -> bool:
    """Whether any event of the device's sessions carries debug_mode."""
    user = np.flatnonzero(log.users.device_ids == device)
    sessions = np.isin(log.sessions.user, user)
    return bool(log.events.debug[sessions[log.events.session]].any())


def test_offline_mobile_events_are_excluded_by_the_late_cutoff(log: EventLog, board: SqlTable) -> None:
    """Mobile sessions that went offline send the rest of their events days later: the dashboard without the
    cut-off (every event ingested on time) counts more mobile sessions and more of their later steps, by a share
    large enough to move a value past the grader's tolerance; web, which cannot queue, is as it was."""
    on_time = dashboard(replace(log, events=replace(log.events, ingested_us=log.events.timestamp_us)))
    for platform, share in (("ios", 0.02), ("android", 0.03)):
        segment = Segment(platform=platform)
        for metric in ("sessions", "payment_sessions"):
            late = sum(segment_metric(on_time, segment, metric, d) for d in range(DAYS))
            kept = sum(segment_metric(board, segment, metric, d) for d in range(DAYS))
            assert late > (1 + share) * kept, (platform, metric)
    assert not _differs(board, on_time, Segment(platform="web"), "sessions", range(DAYS)).any()


def test_the_export_ends_when_the_last_date_closes(log: EventLog, board: SqlTable) -> None:
    """The export holds what was ingested before the dashboard closed the window's last date: without the cut-off
    the earlier dates count their offline sessions' late events, the last date cannot (they are not in the export
    yet), so mobile seems to fall at the window's end while the dashboard's dates all count alike."""
    assert (log.events.ingested_us < day_start_micros(DAYS - 1 + LATE_CUTOFF_DAYS)).all()
    on_time = dashboard(replace(log, events=replace(log.events, ingested_us=log.events.timestamp_us)))
    last = DAYS - 1
    for platform in ("ios", "android", "web"):
        segment = Segment(platform=platform)
        for metric in ("sessions", "menu_sessions", "payment_sessions"):
            assert segment_metric(on_time, segment, metric, last) == segment_metric(board, segment, metric, last)
    for platform in ("ios", "android"):
        extra = _differs(board, on_time, Segment(platform=platform), "sessions", range(last - 7, last - 2))
        assert (extra > 0).all(), platform


def _dashboard_sql(log: EventLog, sql: str) -> dict[tuple[str, str], float]:
    """Sessions by (date, country) of a dashboard statement over the log's tables."""
    tables = EpisodeTables(open_database(), log.sql_tables())
    _, rows, _ = tables.run(
        f"SELECT CAST(date AS VARCHAR), country, sum(sessions) FROM ({sql}) GROUP BY ALL", 0, 10_000
    )
    return {(date, country): float(sessions) for date, country, sessions in rows}


def test_cookieless_pings_are_left_out_by_the_consent_rule(log: EventLog) -> None:
    """Without consent each event is a cookieless ping under a random user_pseudo_id of its own: the dashboard's
    statement without the consent clause counts every such app_open as a session, most of all where consent banners
    are declined most (GB, DE, FR)."""
    clause = "WHERE privacy_info.analytics_storage = 'granted'"
    assert DASHBOARD_SQL.count(clause) == 1
    kept, counted = _dashboard_sql(log, DASHBOARD_SQL), _dashboard_sql(log, DASHBOARD_SQL.replace(clause, ""))
    denied = log.sessions.consent_denied[log.events.session]
    pseudo = log.sql_tables()["events"]["user_pseudo_id"]
    assert isinstance(pseudo, Nested)
    ids = np.asarray(pseudo.array.to_pylist(), dtype=object)
    assert len(set(ids[denied])) > 0.9 * denied.sum() and not set(ids[denied]) & set(log.users.pseudo_ids)
    for country, share in (("DE", 0.08), ("US", 0.01)):
        more = sum(v for (_, c), v in counted.items() if c == country)
        assert more > (1 + share) * sum(v for (_, c), v in kept.items() if c == country), country


def test_resent_purchases_count_once_by_transaction(log: EventLog, board: SqlTable) -> None:
    """A mobile payment SDK sends some payment_successful events again under their transaction_id: the counted
    payment events outnumber the dashboard's purchases (distinct transactions) on mobile, not on web."""
    counted = counted_events(log)
    paid = counted & (log.events.name == event_code("payment_successful"))
    platform = log.users.platform.codes[log.sessions.user[log.events.session]]
    purchases = np.asarray(board["purchases"])
    labels = board["platform"]
    assert isinstance(labels, Labels)
    for name, more in (("android", 1.15), ("ios", 1.15), ("web", 1.0)):
        code = log.users.platform.values.index(name)
        events = int((paid & (platform == code)).sum())
        on_board = int(purchases[labels.codes == labels.values.index(name)].sum())
        assert len(np.unique(log.events.transaction[paid & (platform == code)])) == on_board
        assert (events > more * on_board) if more > 1 else events == on_board, name


def test_purchases_in_another_currency_need_their_own_rate(log: EventLog, board: SqlTable) -> None:
    """Outside the US some purchases are billed in US dollars: revenue read at each country's own rate (ignoring
    the currency parameter) misses a country's revenue_usd by far more than the grader's tolerance."""
    events = log.events
    counted = counted_events(log)
    paid = np.flatnonzero(counted & (events.name == event_code("payment_successful")))
    paid = paid[np.unique(events.transaction[paid], return_index=True)[1]]
    country = log.users.country.codes[log.sessions.user[events.session[paid]]]
    local = np.array([CURRENCIES.index(COUNTRY_CURRENCY[c]) for c in log.users.country.values])[country]
    day = reporting_day(events.timestamp_us[paid])
    assert (events.currency[paid] != local).mean() > 0.05
    naive = events.value[paid] / log.units_per_usd[local, day]
    right = events.value[paid] / log.units_per_usd[events.currency[paid], day]
    missed = [abs(naive[country == c].sum() / right[country == c].sum() - 1) for c in np.unique(country)]
    assert max(missed) > 0.05
    np.testing.assert_allclose(right.sum(), np.asarray(board["revenue_usd"]).sum(), rtol=1e-9)
