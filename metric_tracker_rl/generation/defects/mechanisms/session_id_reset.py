"""session_id_reset: one mobile app version's SDK starts a new session_id when the app comes back from the
background, without a session_start or an app_open. A share of its sessions that reach the menu are cut there:
the menu_open and everything after it arrive under the next session id, which the metrics layer never counts (it
has no app_open), and the user's later sessions are numbered one on. That version's app_open_to_menu_open falls;
the trace is sessions with funnel events and no app_open beside their user's previous session, opened that date."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from metric_tracker_rl.generation.defects.base import DefectRecord, register_defect
from metric_tracker_rl.generation.defects.log_edits import SessionPlaces
from metric_tracker_rl.generation.defects.session_edits import (
    current_version_span,
    first_time_of,
    moved_to_new_sessions,
)
from metric_tracker_rl.world.events import EventLog, event_code
from metric_tracker_rl.world.segments import Segment

BACKGROUNDED_SHARE = (0.5, 0.8)  # of the version's sessions that reach the menu: those sent to the background first


def renumbered(user: np.ndarray, session_id: np.ndarray, split: np.ndarray) -> np.ndarray:
    """(N,) each session's id once every `split` session is followed by one more of its user's: its own plus the
    number of its user's split sessions before it (the split one's next is its new id plus one)."""
    order = np.lexsort((session_id, user))
    flags = split[order].astype(np.int64)
    before = np.cumsum(flags) - flags
    ranked = user[order]
    starts = np.r_[0, np.flatnonzero(ranked[1:] != ranked[:-1]) + 1]
    at_start = np.repeat(before[starts], np.diff(np.r_[starts, len(order)]))
    shift = np.empty(len(order), dtype=np.int64)
    shift[order] = before - at_start
    numbers: np.ndarray = session_id + shift
    return numbers


@register_defect("session_id_reset", "sdk")
def session_id_reset(log: EventLog, rng: np.random.Generator) -> tuple[EventLog, DefectRecord]:
    places = SessionPlaces.of(log)
    platform, days, on_platform, version = current_version_span(log, places, rng)
    sessions, events = log.sessions, log.events
    menu_at = first_time_of(log, event_code("menu_open"))
    share = rng.uniform(*BACKGROUNDED_SHARE)
    split = (
        on_platform
        & (places.version == version)
        & ~sessions.consent_denied
        & (menu_at < np.iinfo(np.int64).max)
        & (rng.random(len(places.day)) < share)
    )
    rows = np.flatnonzero(split[events.session] & (events.timestamp_us >= menu_at[events.session]))
    cut = np.flatnonzero(split)
    numbers = renumbered(sessions.user, sessions.session_id, split)
    log = replace(log, sessions=replace(sessions, session_id=numbers))
    group = np.searchsorted(cut, events.session[rows])
    log = moved_to_new_sessions(log, rows, group, sessions.user[cut], numbers[cut] + 1)
    segment = Segment(platform=log.users.platform.values[platform], app_version=sessions.app_version.values[version])
    return log, DefectRecord(
        "session_id_reset",
        days,
        segment,
        "app_open_to_menu_open",
        f"{segment.label()}: the SDK started a new session id in {len(cut)} sessions when the "
        "app came back from the background",
    )
