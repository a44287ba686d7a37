"""Edits several recording faults share: moving some of a session's events to sessions of their own (a session id
or a user id the SDK regenerated), giving users fresh pseudonymous ids (clones that keep the device and, where
the fault leaves it, the login), and dropping sessions' events. Each keeps the log grouped by session in time
order, as the metrics layer's de-duplication reads it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from metric_tracker_rl.generation.defects.log_edits import SessionPlaces, mobile_version_span
from metric_tracker_rl.generation.identities import draw_identities
from metric_tracker_rl.sql.columns import Labels
from metric_tracker_rl.world.events import MICROS_PER_SECOND, EventLog, Events, Sessions, Users, reporting_day


def first_time_of(log: EventLog, name: int) -> np.ndarray:
    """(N,) each session's first timestamp of event code `name` (int64 max where it has none)."""
    events = log.events
    first = np.full(len(log.sessions.user), np.iinfo(np.int64).max)
    rows = events.name == name
    np.minimum.at(first, events.session[rows], events.timestamp_us[rows])
    return first


def repeat_runs(events: Events) -> np.ndarray:
    """(E,) for each event, the position of the first of its run of exact repeats (the same session, time and
    name: a batch sent again), so an event and its repeats can travel together."""
    same = np.zeros(len(events), dtype=bool)
    same[1:] = (
        (events.session[1:] == events.session[:-1])
        & (events.timestamp_us[1:] == events.timestamp_us[:-1])
        & (events.name[1:] == events.name[:-1])
    )
    starts = np.flatnonzero(~same)
    runs: np.ndarray = starts[np.cumsum(~same) - 1]
    return runs


def moved_to_new_sessions(
    log: EventLog, rows: np.ndarray, group: np.ndarray, user: np.ndarray, session_id: np.ndarray
) -> EventLog:
    """The log with the events at `rows` (positions) moved out of their sessions into new ones: event i into new
    session group[i] (0..G-1), whose user and session id are user[g] and session_id[g]; a new session keeps the app
    version and consent of the session its first event left."""
    events, sessions = log.events, log.sessions
    groups = len(user)
    source = np.zeros(groups, dtype=np.int64)
    source[group[::-1]] = events.session[rows][::-1]  # the first event's session wins
    added = Sessions(
        user=np.concatenate([sessions.user, user]).astype(np.int32),
        session_id=np.concatenate([sessions.session_id, session_id]).astype(np.int64),
        app_version=Labels(
            np.concatenate([sessions.app_version.codes, sessions.app_version.codes[source]]),
            sessions.app_version.values,
        ),
        consent_denied=np.concatenate([sessions.consent_denied, sessions.consent_denied[source]]),
    )
    stay = np.ones(len(events), dtype=bool)
    stay[rows] = False
    moved = events.take(rows)
    moved = replace(moved, session=(len(sessions.user) + group).astype(np.int32))
    moved = moved.take(np.lexsort((moved.name, moved.timestamp_us, moved.session)))
    kept = events.take(stay)
    joined = Events(
        **{name: np.concatenate([getattr(kept, name), getattr(moved, name)]) for name in Events.__dataclass_fields__}
    )
    return replace(log, sessions=added, events=joined)


def with_fresh_ids(
    log: EventLog, rng: np.random.Generator, source: np.ndarray, touch_us: np.ndarray, keep_login: bool
) -> tuple[EventLog, np.ndarray]:
    """The log with one user more per entry of `source` (user indices): the same device, platform, country and
    channel under a fresh pseudonymous id first seen at `touch_us` (and the source's login where `keep_login`),
    and the new users' indices."""
    users = log.users
    touch_s = touch_us // MICROS_PER_SECOND
    pseudo, _, _ = draw_identities(rng, touch_s, np.zeros(len(source), dtype=bool))
    logins = users.login_ids[source] if keep_login else np.full(len(source), None, dtype=object)

    def labels(of: Labels) -> Labels:
        return Labels(of.codes[source], of.values)

    clones = Users(
        pseudo,
        logins,
        users.device_ids[source],
        labels(users.platform),
        labels(users.country),
        labels(users.channel),
        reporting_day(touch_us).astype(np.int16),
    )
    return replace(log, users=users.then(clones)), len(users.pseudo_ids) + np.arange(len(source))


def without_sessions(log: EventLog, dropped: np.ndarray) -> EventLog:
    """The log without the events of the sessions `dropped` (an (N,) mask): they were never sent."""
    return replace(log, events=log.events.take(~dropped[log.events.session]))


CURRENT_SHARE = 0.5  # of a platform's sessions on a date: a version that runs on more is its current one


def current_version_span(
    log: EventLog, places: SessionPlaces, rng: np.random.Generator
) -> tuple[int, tuple[int, ...], np.ndarray, int]:
    """A mobile platform, two to four dates, the mask of its sessions on them, and an app version current on
    them (the one most of the platform's sessions run; dates on which it is not are left out, one kept at least):
    where an app version's SDK misbehaves, on dates that most of the platform's users show it."""
    platform, days, on_platform, _ = mobile_version_span(log, places, rng)
    versions = len(log.sessions.app_version.values)
    counts = np.zeros((versions, len(days)))
    np.add.at(counts, (places.version[on_platform], np.searchsorted(days, places.day[on_platform])), 1)
    shares = counts / np.maximum(counts.sum(axis=0), 1)
    version = int(np.argmax(shares.min(axis=1)))
    current = shares[version] >= CURRENT_SHARE
    kept = tuple(day for day, keep in zip(days, current, strict=True) if keep)
    kept = kept or (days[int(np.argmax(shares[version]))],)
    return platform, kept, (places.platform == platform) & np.isin(places.day, kept), version
