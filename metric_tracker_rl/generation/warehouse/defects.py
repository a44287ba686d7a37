"""Data defects: changes to what was recorded, not to what users did. Each edits an event log after it is drawn
and returns the record the truth is built from: the dashboard metric it corrupts, on which segment and dates.
None is caught by the metrics layer's standing rules, so each reaches the dashboard; each leaves a trace in the
raw events (or in the tracking changelog) that tells it from a change in behaviour.

- retry_duplicates: one mobile app version's SDK re-sends a session's app_open under a new session id: sessions
  rise and app_open_to_menu_open falls on that version (sessions with an app_open and nothing else);
- tracking_stopped: a tracking deploy renames a funnel event on one platform (the changelog says so): its step
  seems to stop;
- consent_drop: a consent banner change denies analytics storage for a country's sessions: their events are sent
  as cookieless pings and the country's sessions vanish from the dashboard;
- bot_farm: devices not on the known-bot list open web sessions in one country and do nothing else;
- clock_skew: one platform's devices stamp a day's events a day early (their ingestion times are right): that
  date's sessions move to the date before;
- late_load: a batch of a date's events is ingested after the cut-off: the date is left incomplete;
- transaction_retries: one mobile app version's payment SDK re-sends each payment_successful under a new
  transaction_id: its purchases and revenue_usd double (sessions with two transaction ids);
- currency_mislabel: one mobile platform's app labels one country's purchases EUR while their values stay in the
  country's currency: revenue_usd there is converted at the wrong rate (a currency the country does not use).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from metric_tracker_rl.generation.warehouse.identities import draw_identities
from metric_tracker_rl.sql.columns import Labels
from metric_tracker_rl.world.events import (
    COUNTRY_CURRENCY,
    CURRENCIES,
    MICROS_PER_SECOND,
    RENAMED_EVENTS,
    EventLog,
    Events,
    Sessions,
    TrackingChange,
    Users,
    day_start_micros,
    event_code,
    reporting_day,
)
from metric_tracker_rl.world.metrics_layer import counted_events
from metric_tracker_rl.world.segments import Segment

DAY_US = 86_400 * MICROS_PER_SECOND
RETRY_SHARE = 0.5  # of the version's sessions: those whose app_open is re-sent
RETRY_SESSION_OFFSET = 9000  # the re-sent session's id: its own plus this
BOT_SESSION_SHARE = 0.6  # bot sessions per day, as a share of the segment's own
LATE_LOAD_SHARE = 0.6  # of a date's events: those ingested after the cut-off
LATE_LOAD_DELAY_DAYS = 3
RETRY_TRANSACTION_OFFSET = 10**9  # a re-sent purchase's new transaction id: its own plus this
MISLABEL = "EUR"  # the currency a mislabelling app sends
STEP_OF_EVENT = {"menu_open": "app_open_to_menu_open", "product_added_to_cart": "menu_open_to_product_added_to_cart"}


@dataclass(frozen=True)
class DefectRecord:
    """What a defect did: its kind, its reporting dates (days from the window's first), the segment it touched,
    the dashboard metric it corrupts, and a description for the episode's record."""

    kind: str
    days: tuple[int, ...]
    segment: Segment
    metric: str
    description: str


Defect = Callable[[EventLog, np.random.Generator], tuple[EventLog, DefectRecord]]


@dataclass(frozen=True)
class SessionPlaces:
    """Each session's reporting date and the codes of its platform, country and app version."""

    day: np.ndarray
    platform: np.ndarray
    country: np.ndarray
    version: np.ndarray

    @classmethod
    def of(cls, log: EventLog) -> SessionPlaces:
        users, sessions = log.users, log.sessions
        return cls(log.session_days(), users.platform.codes[sessions.user], users.country.codes[sessions.user],
                   sessions.app_version.codes)


def _span(rng: np.random.Generator, log: EventLog, lengths: tuple[int, int], earliest: int = 7) -> tuple[int, ...]:
    """Consecutive dates of a drawn length, clear of the window's first week and last days."""
    length = int(rng.integers(lengths[0], lengths[1] + 1))
    start = int(rng.integers(earliest, log.num_days - length - 2))
    return tuple(range(start, start + length))


def _appended(log: EventLog, events: Events) -> EventLog:
    """The log with the events of sessions added after its own: they go after its events, grouped by session in
    time order (an event's repeats beside it), so the log stays in that order without sorting it again."""
    added = events.take(np.lexsort((events.name, events.timestamp_us, events.session)))
    return replace(log, events=Events(**{name: np.concatenate([getattr(log.events, name), getattr(added, name)])
                                         for name in Events.__dataclass_fields__}))


def _merged(events: Events, added: Events) -> Events:
    """The events with `added` (events of their sessions) each inserted where its session and time put it, so the
    log stays grouped by session in time order without sorting it again."""
    start = int(min(events.timestamp_us.min(initial=0), added.timestamp_us.min(initial=0)))
    assert int(events.session.max(initial=0)) < 2**18, "the merge key would overflow"

    def key(of: Events) -> np.ndarray:
        merged: np.ndarray = (of.session.astype(np.int64) << 44) + (of.timestamp_us - start)
        return merged

    order = np.argsort(key(added), kind="stable")
    added = added.take(order)
    at = np.searchsorted(key(events), key(added), side="right")
    return Events(**{name: np.insert(getattr(events, name), at, getattr(added, name))
                     for name in Events.__dataclass_fields__})


def _with_sessions(log: EventLog, sessions: Sessions) -> Sessions:
    """The log's sessions followed by `sessions`."""
    mine = log.sessions
    return Sessions(user=np.concatenate([mine.user, sessions.user]),
                    session_id=np.concatenate([mine.session_id, sessions.session_id]),
                    app_version=Labels(np.concatenate([mine.app_version.codes, sessions.app_version.codes]),
                                       mine.app_version.values),
                    consent_denied=np.concatenate([mine.consent_denied, sessions.consent_denied]))


def with_idle_sessions(log: EventLog, user: np.ndarray, start_us: np.ndarray, version: int) -> EventLog:
    """The log with one session more per entry of `user`, starting at `start_us`, on app version `version` (a
    code of the sessions' versions): a session_start, an app_open and a short user_engagement, nothing else. Each
    new session's id is its user's highest so far plus one and up (so it names one session of that user)."""
    sessions = log.sessions
    highest = np.zeros(int(max(user.max(initial=0), sessions.user.max(initial=0))) + 1, dtype=np.int64)
    np.maximum.at(highest, sessions.user, sessions.session_id)
    order = np.lexsort((start_us, user))
    numbers = np.empty(len(user), dtype=np.int64)
    ranked = user[order]
    first = np.r_[0, np.flatnonzero(ranked[1:] != ranked[:-1]) + 1] if len(user) else np.zeros(0, dtype=np.int64)
    numbers[order] = np.arange(len(user)) - np.repeat(first, np.diff(np.r_[first, len(user)])) + 1
    added = Sessions(user=user.astype(np.int32), session_id=highest[user] + numbers,
                     app_version=Labels(np.full(len(user), version, dtype=np.int8), sessions.app_version.values),
                     consent_denied=np.zeros(len(user), dtype=bool))
    names = [event_code(name) for name in ("session_start", "app_open", "user_engagement")]
    session = np.repeat(len(sessions.user) + np.arange(len(user)), len(names)).astype(np.int32)
    timestamp = np.repeat(start_us, len(names)) + np.tile(np.array([0, 1000, 400_000]), len(user))
    count = len(session)
    engagement = np.where(np.tile(np.arange(len(names)) == 2, len(user)), 400, -1).astype(np.int32)
    made = Events(session=session, name=np.tile(np.array(names, dtype=np.int8), len(user)), timestamp_us=timestamp,
                  ingested_us=timestamp + 30 * MICROS_PER_SECOND, engagement_msec=engagement,
                  transaction=np.full(count, -1, dtype=np.int64), value=np.full(count, np.nan),
                  currency=np.full(count, -1, dtype=np.int8),
                  debug=np.zeros(count, dtype=bool), internal=np.zeros(count, dtype=bool),
                  variant=np.full(count, -1, dtype=np.int8))
    return _appended(replace(log, sessions=_with_sessions(log, added)), made)


def _mobile_version_span(log: EventLog, places: SessionPlaces, rng: np.random.Generator
                         ) -> tuple[int, tuple[int, ...], np.ndarray, int]:
    """A mobile platform, two to four dates, the mask of its sessions on them, and the version most of those run:
    where an app version's SDK misbehaves."""
    platform = log.users.platform.values.index(str(rng.choice(["ios", "android"])))
    days = _span(rng, log, (2, 4))
    on_platform = (places.platform == platform) & np.isin(places.day, days)
    versions, counts = np.unique(places.version[on_platform], return_counts=True)
    return platform, days, on_platform, int(versions[np.argmax(counts)])


def retry_duplicates(log: EventLog, rng: np.random.Generator) -> tuple[EventLog, DefectRecord]:
    places = SessionPlaces.of(log)
    platform, days, on_platform, version = _mobile_version_span(log, places, rng)
    chosen = np.flatnonzero(on_platform & (places.version == version) & ~log.sessions.consent_denied
                            & (rng.random(len(places.day)) < RETRY_SHARE))
    opens = np.flatnonzero(log.events.name == event_code("app_open"))
    opens = opens[np.isin(log.events.session[opens], chosen)]
    opens = opens[np.unique(log.events.session[opens], return_index=True)[1]]  # one per session
    sessions = log.sessions
    source = log.events.session[opens]
    new_index = len(sessions.user) + np.arange(len(opens))
    added = Sessions(user=sessions.user[source], session_id=sessions.session_id[source] + RETRY_SESSION_OFFSET,
                     app_version=Labels(sessions.app_version.codes[source], sessions.app_version.values),
                     consent_denied=np.zeros(len(opens), dtype=bool))
    resent = log.events.take(opens)
    delay = (rng.uniform(2, 20, len(opens)) * MICROS_PER_SECOND).astype(np.int64)
    resent = replace(resent, session=new_index.astype(np.int32), timestamp_us=resent.timestamp_us + delay,
                     ingested_us=resent.ingested_us + delay)
    log = _appended(replace(log, sessions=_with_sessions(log, added)), resent)
    segment = Segment(platform=log.users.platform.values[platform], app_version=sessions.app_version.values[version])
    return log, DefectRecord("retry_duplicates", days, segment, "app_open_to_menu_open",
                             f"{segment.label()}: the SDK re-sent the app_open of {len(opens)} sessions under a new "
                             "session id")


def tracking_stopped(log: EventLog, rng: np.random.Generator) -> tuple[EventLog, DefectRecord]:
    platforms = log.users.platform.values
    platform = int(rng.integers(len(platforms)))
    old = str(rng.choice(list(RENAMED_EVENTS)))
    start = int(rng.integers(14, log.num_days - 10))
    events = log.events
    on_platform = log.users.platform.codes[log.sessions.user[events.session]] == platform
    renamed = (events.name == event_code(old)) & on_platform & (reporting_day(events.timestamp_us) >= start)
    names = events.name.copy()
    names[renamed] = event_code(RENAMED_EVENTS[old])
    change = TrackingChange(start, platforms[platform], f"{old} is sent as {RENAMED_EVENTS[old]}")
    log = replace(log, events=replace(events, name=names), changelog=(*log.changelog, change))
    segment = Segment(platform=platforms[platform])
    return log, DefectRecord("tracking_stopped", tuple(range(start, log.num_days)), segment, STEP_OF_EVENT[old],
                             f"{segment.label()}: from a tracking deploy, {change.change}")


def consent_drop(log: EventLog, rng: np.random.Generator) -> tuple[EventLog, DefectRecord]:
    places = SessionPlaces.of(log)
    countries = log.users.country.values
    country = int(rng.integers(len(countries)))
    days = _span(rng, log, (2, 4))
    denied = log.sessions.consent_denied | ((places.country == country) & np.isin(places.day, days))
    log = replace(log, sessions=replace(log.sessions, consent_denied=denied))
    segment = Segment(country=countries[country])
    return log, DefectRecord("consent_drop", days, segment, "sessions",
                             f"{segment.label()}: a consent banner change denied analytics storage to every session")


def bot_farm(log: EventLog, rng: np.random.Generator) -> tuple[EventLog, DefectRecord]:
    places = SessionPlaces.of(log)
    users = log.users
    platform = users.platform.values.index("web")
    country = int(rng.integers(len(users.country.values)))
    days = _span(rng, log, (2, 3))
    own = np.bincount(places.day[(places.platform == platform) & (places.country == country) & (places.day >= 0)],
                      minlength=log.num_days)
    per_day = rng.poisson(BOT_SESSION_SHARE * own[list(days)])
    bots = 3
    day = np.repeat(days, per_day)
    user = (len(users.pseudo_ids) + rng.integers(0, bots, len(day))).astype(np.int64)
    start = day_start_micros(0) + day * DAY_US + rng.integers(0, DAY_US, len(day))
    touch_s = (day_start_micros(days[0]) // MICROS_PER_SECOND) + np.zeros(bots, dtype=np.int64)
    pseudo, logins, devices = draw_identities(rng, touch_s, np.zeros(bots, dtype=bool))
    farm = Users(pseudo, logins, devices, Labels(np.full(bots, platform, dtype=np.int8), users.platform.values),
                 Labels(np.full(bots, country, dtype=np.int8), users.country.values),
                 Labels(np.zeros(bots, dtype=np.int8), users.channel.values),
                 np.full(bots, days[0], dtype=np.int16))
    log = replace(log, users=users.then(farm))
    log = with_idle_sessions(log, user, start, log.sessions.app_version.values.index("web"))
    segment = Segment(platform="web", country=users.country.values[country])
    return log, DefectRecord("bot_farm", days, segment, "app_open_to_menu_open",
                             f"{segment.label()}: {bots} unlisted devices opened {len(day)} sessions that did nothing")


def clock_skew(log: EventLog, rng: np.random.Generator) -> tuple[EventLog, DefectRecord]:
    places = SessionPlaces.of(log)
    platforms = log.users.platform.values
    platform = int(rng.integers(len(platforms)))
    (day,) = _span(rng, log, (1, 1))
    skewed = (places.platform == platform) & (places.day == day)
    events = log.events
    moved = skewed[events.session]
    log = replace(log, events=replace(events, timestamp_us=events.timestamp_us - np.where(moved, DAY_US, 0)))
    segment = Segment(platform=platforms[platform])
    return log, DefectRecord("clock_skew", (day - 1, day), segment, "sessions",
                             f"{segment.label()}: devices stamped {int(skewed.sum())} sessions a day early")


def late_load(log: EventLog, rng: np.random.Generator) -> tuple[EventLog, DefectRecord]:
    (day,) = _span(rng, log, (1, 1))
    events = log.events
    late = (reporting_day(events.timestamp_us) == day) & (rng.random(len(events)) < LATE_LOAD_SHARE)
    delay = np.where(late, LATE_LOAD_DELAY_DAYS * DAY_US, 0)
    log = replace(log, events=replace(events, ingested_us=events.ingested_us + delay))
    return log, DefectRecord("late_load", (day,), Segment(), "sessions",
                             f"a load of {int(late.sum())} events was ingested {LATE_LOAD_DELAY_DAYS} days late")


def transaction_retries(log: EventLog, rng: np.random.Generator) -> tuple[EventLog, DefectRecord]:
    places = SessionPlaces.of(log)
    platform, days, on_platform, version = _mobile_version_span(log, places, rng)
    events = log.events
    chosen = (on_platform & (places.version == version))[events.session]
    paid = np.flatnonzero(chosen & (events.name == event_code("payment_successful")))
    paid = paid[np.unique(events.transaction[paid], return_index=True)[1]]  # each purchase once
    again = events.take(paid)
    delay = (rng.uniform(3, 40, len(paid)) * MICROS_PER_SECOND).astype(np.int64)
    again = replace(again, transaction=again.transaction + RETRY_TRANSACTION_OFFSET,
                    timestamp_us=again.timestamp_us + delay, ingested_us=again.ingested_us + delay)
    log = replace(log, events=_merged(events, again))
    segment = Segment(platform=log.users.platform.values[platform],
                      app_version=log.sessions.app_version.values[version])
    return log, DefectRecord("transaction_retries", days, segment, "revenue_usd",
                             f"{segment.label()}: the payment SDK re-sent {len(paid)} purchases under new "
                             "transaction ids")


MISLABEL_DAYS = (5, 8)  # dates until a hotfix reaches the mislabelling build's users (about a week)
MISLABEL_MIN_PURCHASES = 2  # a mislabelled segment's counted purchases in its own currency on each of its dates


def currency_mislabel(log: EventLog, rng: np.random.Generator) -> tuple[EventLog, DefectRecord]:
    places = SessionPlaces.of(log)
    users = log.users
    days = _span(rng, log, MISLABEL_DAYS)
    events = log.events
    local = np.array([CURRENCIES.index(COUNTRY_CURRENCY[c]) for c in users.country.values])[places.country]
    # Purchases the metrics layer counts: a segment with none on a date would show no change there.
    paid = np.flatnonzero(counted_events(log) & (events.name == event_code("payment_successful"))
                          & (events.currency == local[events.session]) & np.isin(places.day, days)[events.session])
    counts = np.zeros((len(users.platform.values), len(users.country.values), log.num_days), dtype=np.int64)
    np.add.at(counts, (places.platform[events.session[paid]], places.country[events.session[paid]],
                       places.day[events.session[paid]]), 1)
    # A mobile app's, in a country whose currency is neither the label's nor USD, with purchases on every date.
    candidates = [(p, c) for p, name in enumerate(users.platform.values) if name != "web"
                  for c, country in enumerate(users.country.values)
                  if COUNTRY_CURRENCY[country] not in (MISLABEL, "USD")]
    enough = [pc for pc in candidates if counts[pc[0], pc[1], list(days)].min() >= MISLABEL_MIN_PURCHASES]
    pool = enough or [max(candidates, key=lambda pc: int(counts[pc[0], pc[1], list(days)].min()))]
    platform, country = pool[int(rng.integers(len(pool)))]
    touched = ((places.platform == platform) & (places.country == country) & np.isin(places.day, days))[
        events.session] & (events.currency == local[events.session])
    currency = np.where(touched, CURRENCIES.index(MISLABEL), events.currency).astype(np.int8)
    log = replace(log, events=replace(events, currency=currency))
    segment = Segment(platform=users.platform.values[platform], country=users.country.values[country])
    return log, DefectRecord("currency_mislabel", days, segment, "revenue_usd",
                             f"{segment.label()}: the app labelled {int(touched.sum())} values {MISLABEL}")


DEFECTS: dict[str, Defect] = {defect.__name__: defect for defect in (
    retry_duplicates, tracking_stopped, consent_drop, bot_farm, clock_skew, late_load, transaction_retries,
    currency_mislabel)}
