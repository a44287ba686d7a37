"""pseudo_id_rotation: on one platform, the SDK regenerates user_pseudo_id when a logged-in user's session signs
in (just after its app_open), so the rest of the session arrives under a new pseudonymous id as its first
session, with no app_open: the metrics layer counts the session's open and nothing after it. The platform's
app_open_to_menu_open falls by about the share of its sessions that are logged in; the trace is a user_id seen
under two pseudonymous ids on one date, the second without an app_open."""

from __future__ import annotations

import numpy as np

from metric_tracker_rl.generation.defects.base import DefectRecord, register_defect
from metric_tracker_rl.generation.defects.log_edits import SessionPlaces, span
from metric_tracker_rl.generation.defects.session_edits import (
    first_time_of,
    moved_to_new_sessions,
    with_fresh_ids,
)
from metric_tracker_rl.world.events import EventLog, event_code
from metric_tracker_rl.world.segments import Segment


@register_defect("pseudo_id_rotation", "identity")
def pseudo_id_rotation(log: EventLog, rng: np.random.Generator) -> tuple[EventLog, DefectRecord]:
    places = SessionPlaces.of(log)
    platforms = log.users.platform.values
    platform = int(rng.integers(len(platforms)))
    days = span(rng, log, (2, 4))
    sessions, events = log.sessions, log.events
    logged_in = np.array([login is not None for login in log.users.login_ids])[sessions.user]
    opened_at = first_time_of(log, event_code("app_open"))
    rotated = (
        (places.platform == platform)
        & np.isin(places.day, days)
        & logged_in
        & ~sessions.consent_denied
        & (opened_at < np.iinfo(np.int64).max)
    )
    rows = np.flatnonzero(rotated[events.session] & (events.timestamp_us > opened_at[events.session]))
    cut = np.unique(events.session[rows])
    log, clones = with_fresh_ids(log, rng, sessions.user[cut], opened_at[cut], keep_login=True)
    group = np.searchsorted(cut, events.session[rows])
    log = moved_to_new_sessions(log, rows, group, clones, np.ones(len(cut), dtype=np.int64))
    segment = Segment(platform=platforms[platform])
    return log, DefectRecord(
        "pseudo_id_rotation",
        days,
        segment,
        "app_open_to_menu_open",
        f"{segment.label()}: signing in gave {len(cut)} sessions a new pseudonymous id after their app_open",
    )
