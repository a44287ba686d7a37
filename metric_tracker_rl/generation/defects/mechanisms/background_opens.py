"""background_opens: a silent push wakes one mobile platform's app (in one country, or everywhere) and the SDK
logs the wake as a session: a session_start and an app_open, then under a second of engagement, nothing else,
within minutes of the send. Users did nothing, yet the segment's sessions rise and its app_open_to_menu_open
falls; the trace is a burst of such sessions in one hour of a date, far above that hour's usual."""

from __future__ import annotations

import numpy as np

from metric_tracker_rl.generation.defects.base import DefectRecord, register_defect
from metric_tracker_rl.generation.defects.log_edits import SessionPlaces, span, with_idle_sessions
from metric_tracker_rl.world.events import MICROS_PER_SECOND, EventLog, day_start_micros
from metric_tracker_rl.world.segments import Segment

WOKEN_SHARE = (0.4, 0.9)  # woken sessions per date, as a share of the segment's own
WOKEN_MIN = 20  # woken sessions per date at least (a push reaches a list of users, never a handful)
ONE_COUNTRY_SHARE = 0.6  # pushes sent to one country's users (the rest: everyone's)
ACTIVE_DAYS = 28  # a user a push reaches: one with a session in this many dates before it
SPREAD_S = 600  # woken sessions start within this many seconds of the send


def _woken(
    rng: np.random.Generator, places: SessionPlaces, log: EventLog, reach: np.ndarray, day: int
) -> tuple[np.ndarray, np.ndarray]:
    """The users a push on `day` wakes (recently active ones in `reach`, a mask of sessions) and the app version
    each runs (its latest session's)."""
    sessions = log.sessions
    recent = np.flatnonzero(reach & (places.day < day) & (places.day >= day - ACTIVE_DAYS))
    order = recent[np.lexsort((places.day[recent], sessions.user[recent]))]
    users, last = np.unique(sessions.user[order][::-1], return_index=True)  # each user's latest session
    version = sessions.app_version.codes[order[::-1][last]]
    own = int((reach & (places.day == day)).sum())
    count = min(len(users), max(WOKEN_MIN, int(rng.uniform(*WOKEN_SHARE) * own)))
    chosen = rng.choice(len(users), count, replace=False)
    return users[chosen], version[chosen]


@register_defect("background_opens", "sdk")
def background_opens(log: EventLog, rng: np.random.Generator) -> tuple[EventLog, DefectRecord]:
    places = SessionPlaces.of(log)
    users = log.users
    platform = users.platform.values.index(str(rng.choice(["ios", "android"])))
    country = int(rng.integers(len(users.country.values))) if rng.random() < ONE_COUNTRY_SHARE else None
    days = span(rng, log, (1, 2), earliest=ACTIVE_DAYS // 2)
    reach = (places.platform == platform) & ~log.sessions.consent_denied
    if country is not None:
        reach &= places.country == country
    hour = int(rng.integers(8, 22))
    woken = [(day, *_woken(rng, places, log, reach, day)) for day in days]
    for day, user, version in woken:
        start = (
            day_start_micros(day)
            + hour * 3600 * MICROS_PER_SECOND
            + rng.integers(0, SPREAD_S * MICROS_PER_SECOND, len(user))
        )
        for code in np.unique(version):
            log = with_idle_sessions(log, user[version == code], start[version == code], int(code))
    segment = Segment(
        platform=users.platform.values[platform], country=users.country.values[country] if country is not None else None
    )
    count = sum(len(user) for _, user, _ in woken)
    return log, DefectRecord(
        "background_opens",
        days,
        segment,
        "sessions",
        f"{segment.label()}: a silent push woke {count} apps that logged a session each",
    )
