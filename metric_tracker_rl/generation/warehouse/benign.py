"""Benign changes at the event grain: bursts of traffic the metrics layer's standing rules already exclude. The raw
events move; the dashboard does not. Reporting one is a false positive; a model that skips the rule that excludes
it sees a fall in conversion.

- internal_load_test: a listed internal account opens many idle web sessions in one day (its events carry no
  internal tag: only the internal_accounts list excludes them);
- known_bot_surge: a listed bot opens many more idle sessions than usual in one day.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from metric_tracker_rl.generation.defects.log_edits import DAY_US, SessionPlaces, with_idle_sessions
from metric_tracker_rl.world.events import EventLog, day_start_micros
from metric_tracker_rl.world.segments import Segment

SURGE_SHARE = (0.5, 1.0)  # idle sessions added, as a share of the segment's own sessions that day


@dataclass(frozen=True)
class BenignRecord:
    kind: str
    day: int
    segment: Segment
    description: str


BenignChange = Callable[[EventLog, np.random.Generator], tuple[EventLog, BenignRecord]]


def _surge(log: EventLog, rng: np.random.Generator, user: int, kind: str, what: str) -> tuple[EventLog, BenignRecord]:
    """Idle sessions of one listed user on one date, as many as SURGE_SHARE of its segment's sessions."""
    places = SessionPlaces.of(log)
    users = log.users
    platform, country = users.platform.codes[user], users.country.codes[user]
    day = int(rng.integers(1, log.num_days - 1))
    own = int(((places.platform == platform) & (places.country == country) & (places.day == day)).sum())
    count = int(rng.uniform(*SURGE_SHARE) * own)
    start = day_start_micros(day) + rng.integers(0, DAY_US, count)
    versions = log.sessions.app_version
    mine = versions.codes[log.sessions.user == user]
    version = int(np.bincount(mine).argmax()) if len(mine) else 0
    log = with_idle_sessions(log, np.full(count, user, dtype=np.int64), start, version)
    segment = Segment(platform=users.platform.values[platform], country=users.country.values[country])
    return log, BenignRecord(kind, day, segment, f"{segment.label()}: {what} opened {count} idle sessions")


def internal_load_test(log: EventLog, rng: np.random.Generator) -> tuple[EventLog, BenignRecord]:
    account = str(rng.choice(list(log.lists.internal_accounts)))
    user = int(np.flatnonzero(log.users.login_ids == account)[0])
    return _surge(log, rng, user, "internal_load_test", f"internal account {account} ran a load test and")


def known_bot_surge(log: EventLog, rng: np.random.Generator) -> tuple[EventLog, BenignRecord]:
    device = str(rng.choice(list(log.lists.known_bots)))
    user = int(np.flatnonzero(log.users.device_ids == device)[0])
    return _surge(log, rng, user, "known_bot_surge", f"known bot {device}")


BENIGN_CHANGES: dict[str, BenignChange] = {change.__name__: change for change in (internal_load_test, known_bot_surge)}
