"""untagged_load_test: QA runs a checkout load test on production from a few devices that are neither on
test_devices nor send the internal tag, in one platform and country: each device runs the whole funnel dozens of
times a date, buying the same basket. Sessions, the late rates and the revenue jump though no customer did anything:
a handful of devices with dozens of sessions each, every purchase of the same value."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from metric_tracker_rl.generation.defects.base import DefectRecord, register_defect
from metric_tracker_rl.generation.defects.log_edits import SessionPlaces, appended, span, with_sessions
from metric_tracker_rl.generation.defects.places import HOUR_US
from metric_tracker_rl.generation.identities import draw_identities
from metric_tracker_rl.sql.columns import Labels
from metric_tracker_rl.world.events import (
    COUNTRY_CURRENCY,
    CURRENCIES,
    MICROS_PER_SECOND,
    EventLog,
    Events,
    Sessions,
    Users,
    day_start_micros,
    event_code,
)
from metric_tracker_rl.world.segments import Segment

LOAD_DEVICES = (2, 4)
LOAD_SHARE = (0.5, 1.0)  # test sessions per date, as a share of the segment's own
LOAD_MIN_SESSIONS = 60  # per date, however small the segment
LOAD_HOURS = 3  # the test's block of hours each date
SCRIPT = (
    "session_start",
    "app_open",
    "menu_open",
    "product_added_to_cart",
    "order_placed",
    "payment_successful",
    "user_engagement",
)
SCRIPT_GAPS_S = np.array([0.0, 0.001, 2.0, 4.0, 6.0, 9.0, 10.0])  # a scripted session's events, from its start
BASKET_UNITS = 20.0  # the test basket's price in US dollars (its country's currency at a round rate)
TRANSACTION_BASE = 2 * 10**9  # the test's transaction ids: above any real one


@register_defect("untagged_load_test", "traffic")
def untagged_load_test(
    log: EventLog,
    rng: np.random.Generator,
    share: tuple[float, float] = LOAD_SHARE,
    lead_share: float | None = None,
) -> tuple[EventLog, DefectRecord]:
    """`share`: the range the test's sessions on a date are drawn in, as a share of the segment's own (at the least
    LOAD_MIN_SESSIONS); `lead_share`: the share of them one device runs (None: the devices run alike), so that its
    sessions stand out among a segment's busiest customers' however few devices run the test."""
    places = SessionPlaces.of(log)
    users = log.users
    platform, country = int(rng.integers(len(users.platform.values))), int(rng.integers(len(users.country.values)))
    days = span(rng, log, (1, 2))
    inside = (places.platform == platform) & (places.country == country) & np.isin(places.day, days)
    own = np.bincount(places.day[inside], minlength=log.num_days)[list(days)]
    per_day = np.maximum(LOAD_MIN_SESSIONS, (rng.uniform(*share) * own).astype(np.int64))
    devices = int(rng.integers(LOAD_DEVICES[0], LOAD_DEVICES[1] + 1))
    day = np.repeat(days, per_day)
    block = rng.integers(9, 24 - LOAD_HOURS, len(days))
    start = (np.array([day_start_micros(d) for d in days]) + block * HOUR_US)[np.repeat(np.arange(len(days)), per_day)]
    start = start + rng.integers(0, LOAD_HOURS * HOUR_US, len(day))
    user = len(users.pseudo_ids) + _devices_of(rng, len(day), devices, lead_share)
    touch_s = np.full(devices, day_start_micros(days[0]) // MICROS_PER_SECOND)
    pseudo, logins, device_ids = draw_identities(rng, touch_s, np.zeros(devices, dtype=bool))
    testers = Users(
        pseudo,
        logins,
        device_ids,
        Labels(np.full(devices, platform, dtype=np.int8), users.platform.values),
        Labels(np.full(devices, country, dtype=np.int8), users.country.values),
        Labels(np.zeros(devices, dtype=np.int8), users.channel.values),
        np.full(devices, days[0], dtype=np.int16),
    )
    versions = places.version[inside]
    version = int(np.bincount(versions).argmax()) if len(versions) else 0
    log = replace(log, users=users.then(testers))
    log = _with_scripted_sessions(log, user, start, version, country)
    segment = Segment(platform=users.platform.values[platform], country=users.country.values[country])
    return log, DefectRecord(
        "untagged_load_test",
        days,
        segment,
        "sessions",
        f"{segment.label()}: {devices} unlisted devices ran {len(day)} scripted checkouts",
    )


def _devices_of(rng: np.random.Generator, count: int, devices: int, lead_share: float | None) -> np.ndarray:
    """Which of the test's `devices` runs each of its `count` sessions: any of them alike, or the first about
    `lead_share` of the sessions and the others the rest alike."""
    if lead_share is None:
        return rng.integers(0, devices, count)
    return np.where(rng.random(count) < lead_share, 0, rng.integers(1, devices, count))


def _with_scripted_sessions(
    log: EventLog, user: np.ndarray, start_us: np.ndarray, version: int, country: int
) -> EventLog:
    """The log with one scripted checkout per entry of `user` (users new to the log), from `start_us`: numbered
    from 1 per user in time order, each the same basket in the country's currency."""
    count = len(user)
    order = np.lexsort((start_us, user))
    ranked = user[order]
    first = np.r_[0, np.flatnonzero(ranked[1:] != ranked[:-1]) + 1] if count else np.zeros(0, dtype=np.int64)
    numbers = np.empty(count, dtype=np.int64)
    numbers[order] = np.arange(count) - np.repeat(first, np.diff(np.r_[first, count])) + 1
    sessions = log.sessions
    added = Sessions(
        user=user.astype(np.int32),
        session_id=numbers,
        app_version=Labels(np.full(count, version, dtype=np.int8), sessions.app_version.values),
        consent_denied=np.zeros(count, dtype=bool),
    )
    width = len(SCRIPT)
    name = np.tile(np.array([event_code(n) for n in SCRIPT], dtype=np.int8), count)
    timestamp = np.repeat(start_us, width) + np.tile((SCRIPT_GAPS_S * MICROS_PER_SECOND).astype(np.int64), count)
    currency = CURRENCIES.index(COUNTRY_CURRENCY[log.users.country.values[country]])
    price = round(BASKET_UNITS * max(1.0, float(np.round(np.nanmedian(log.units_per_usd[currency])))), 2)
    column = np.tile(np.arange(width), count)
    value = np.select([column == 3, (column == 4) | (column == 5)], [round(price / 2, 2), price], np.nan)
    transaction = np.where((column == 4) | (column == 5), TRANSACTION_BASE + np.repeat(np.arange(count), width), -1)
    events = Events(
        session=np.repeat(len(sessions.user) + np.arange(count), width).astype(np.int32),
        name=name,
        timestamp_us=timestamp,
        ingested_us=timestamp + 20 * MICROS_PER_SECOND,
        engagement_msec=np.where(column == width - 1, 10_000, -1).astype(np.int32),
        transaction=transaction.astype(np.int64),
        value=value,
        currency=np.where(np.isnan(value), -1, currency).astype(np.int8),
        debug=np.zeros(count * width, dtype=bool),
        internal=np.zeros(count * width, dtype=bool),
        variant=np.full(count * width, -1, dtype=np.int8),
    )
    return appended(replace(log, sessions=with_sessions(log, added)), events)
