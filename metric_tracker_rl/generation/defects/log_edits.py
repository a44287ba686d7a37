"""The public seam of the data-defect mechanisms: where a defect lands (each session's date and segment, a span of
dates, a mobile version's sessions) and the edits that keep an event log in its order (events and sessions appended
or merged in, sessions that open and do nothing). With base.py (what a mechanism is and returns) and the helpers
beside them, it is all of the generator a mechanism module imports (pyproject.toml's import contracts hold it to
that)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace

import numpy as np

from metric_tracker_rl.sql.columns import Labels
from metric_tracker_rl.world.events import MICROS_PER_SECOND, EventLog, Events, Sessions, event_code

DAY_US = 86_400 * MICROS_PER_SECOND
# The dashboard rate a renamed funnel event's step feeds (the step seems to stop where the event is renamed).
STEP_OF_EVENT = {"menu_open": "app_open_to_menu_open", "product_added_to_cart": "menu_open_to_product_added_to_cart"}


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
        return cls(
            log.session_days(),
            users.platform.codes[sessions.user],
            users.country.codes[sessions.user],
            sessions.app_version.codes,
        )


_COVERED_DAY: ContextVar[int | None] = ContextVar("covered_day", default=None)


@contextmanager
def covering(day: int) -> Iterator[None]:
    """Within it, a span drawn (span) covers `day` where its length and bounds let it: how placement puts a defect
    on a date something else already holds (an incident's). The same stream still draws the same span."""
    token = _COVERED_DAY.set(day)
    try:
        yield
    finally:
        _COVERED_DAY.reset(token)


def span(rng: np.random.Generator, log: EventLog, lengths: tuple[int, int], earliest: int = 7) -> tuple[int, ...]:
    """Consecutive dates of a drawn length, clear of the window's first week and last days (and covering the day
    `covering` names, where one is named and the bounds allow it)."""
    length = int(rng.integers(lengths[0], lengths[1] + 1))
    low, high = earliest, log.num_days - length - 2
    day = _COVERED_DAY.get()
    if day is not None and max(low, day - length + 1) < min(high, day + 1):
        low, high = max(low, day - length + 1), min(high, day + 1)
    start = int(rng.integers(low, high))
    return tuple(range(start, start + length))


def appended(log: EventLog, events: Events) -> EventLog:
    """The log with the events of sessions added after its own: they go after its events, grouped by session in
    time order (an event's repeats beside it), so the log stays in that order without sorting it again."""
    added = events.take(np.lexsort((events.name, events.timestamp_us, events.session)))
    return replace(
        log,
        events=Events(
            **{
                name: np.concatenate([getattr(log.events, name), getattr(added, name)])
                for name in Events.__dataclass_fields__
            }
        ),
    )


def merged(events: Events, added: Events) -> Events:
    """The events with `added` (events of their sessions) each inserted where its session and time put it, so the
    log stays grouped by session in time order without sorting it again."""
    start = int(min(events.timestamp_us.min(initial=0), added.timestamp_us.min(initial=0)))
    assert int(events.session.max(initial=0)) < 2**18, "the merge key would overflow"

    def key(of: Events) -> np.ndarray:
        keyed: np.ndarray = (of.session.astype(np.int64) << 44) + (of.timestamp_us - start)
        return keyed

    order = np.argsort(key(added), kind="stable")
    added = added.take(order)
    at = np.searchsorted(key(events), key(added), side="right")
    return Events(
        **{name: np.insert(getattr(events, name), at, getattr(added, name)) for name in Events.__dataclass_fields__}
    )


def with_sessions(log: EventLog, sessions: Sessions) -> Sessions:
    """The log's sessions followed by `sessions`."""
    mine = log.sessions
    return Sessions(
        user=np.concatenate([mine.user, sessions.user]),
        session_id=np.concatenate([mine.session_id, sessions.session_id]),
        app_version=Labels(
            np.concatenate([mine.app_version.codes, sessions.app_version.codes]), mine.app_version.values
        ),
        consent_denied=np.concatenate([mine.consent_denied, sessions.consent_denied]),
    )


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
    added = Sessions(
        user=user.astype(np.int32),
        session_id=highest[user] + numbers,
        app_version=Labels(np.full(len(user), version, dtype=np.int8), sessions.app_version.values),
        consent_denied=np.zeros(len(user), dtype=bool),
    )
    names = [event_code(name) for name in ("session_start", "app_open", "user_engagement")]
    session = np.repeat(len(sessions.user) + np.arange(len(user)), len(names)).astype(np.int32)
    timestamp = np.repeat(start_us, len(names)) + np.tile(np.array([0, 1000, 400_000]), len(user))
    count = len(session)
    engagement = np.where(np.tile(np.arange(len(names)) == 2, len(user)), 400, -1).astype(np.int32)
    made = Events(
        session=session,
        name=np.tile(np.array(names, dtype=np.int8), len(user)),
        timestamp_us=timestamp,
        ingested_us=timestamp + 30 * MICROS_PER_SECOND,
        engagement_msec=engagement,
        transaction=np.full(count, -1, dtype=np.int64),
        value=np.full(count, np.nan),
        currency=np.full(count, -1, dtype=np.int8),
        debug=np.zeros(count, dtype=bool),
        internal=np.zeros(count, dtype=bool),
        variant=np.full(count, -1, dtype=np.int8),
    )
    return appended(replace(log, sessions=with_sessions(log, added)), made)


def mobile_version_span(
    log: EventLog, places: SessionPlaces, rng: np.random.Generator
) -> tuple[int, tuple[int, ...], np.ndarray, int]:
    """A mobile platform, two to four dates, the mask of its sessions on them, and the version most of those run:
    where an app version's SDK misbehaves."""
    platform = log.users.platform.values.index(str(rng.choice(["ios", "android"])))
    days = span(rng, log, (2, 4))
    on_platform = (places.platform == platform) & np.isin(places.day, days)
    versions, counts = np.unique(places.version[on_platform], return_counts=True)
    return platform, days, on_platform, int(versions[np.argmax(counts)])
