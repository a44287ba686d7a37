"""cookie_reset: a web deploy stops the first-party cookie that holds the pseudonymous id from persisting, so
every page's events after the landing's app_open arrive under a fresh user_pseudo_id of their own (the device id,
read from the browser, stays): each is a one-event session with no app_open, which the metrics layer never
counts. Web's app_open_to_menu_open collapses; the trace is a device seen under many pseudonymous ids on one date,
all but one without an app_open."""

from __future__ import annotations

import numpy as np

from metric_tracker_rl.generation.defects.base import DefectRecord, register_defect
from metric_tracker_rl.generation.defects.log_edits import SessionPlaces, span
from metric_tracker_rl.generation.defects.session_edits import (
    first_time_of,
    moved_to_new_sessions,
    repeat_runs,
    with_fresh_ids,
)
from metric_tracker_rl.world.events import EventLog, event_code
from metric_tracker_rl.world.segments import Segment


@register_defect("cookie_reset", "identity")
def cookie_reset(log: EventLog, rng: np.random.Generator) -> tuple[EventLog, DefectRecord]:
    places = SessionPlaces.of(log)
    web = log.users.platform.values.index("web")
    days = span(rng, log, (2, 4))
    sessions, events = log.sessions, log.events
    opened_at = first_time_of(log, event_code("app_open"))
    reset = (
        (places.platform == web)
        & np.isin(places.day, days)
        & ~sessions.consent_denied
        & (opened_at < np.iinfo(np.int64).max)
    )
    rows = np.flatnonzero(reset[events.session] & (events.timestamp_us > opened_at[events.session]))
    runs, group = np.unique(repeat_runs(events)[rows], return_inverse=True)  # an event and its repeats: one id
    log, clones = with_fresh_ids(
        log, rng, sessions.user[events.session[runs]], events.timestamp_us[runs], keep_login=False
    )
    log = moved_to_new_sessions(log, rows, group.reshape(-1), clones, np.ones(len(runs), dtype=np.int64))
    segment = Segment(platform="web")
    return log, DefectRecord(
        "cookie_reset",
        days,
        segment,
        "app_open_to_menu_open",
        f"{segment.label()}: {len(runs)} page events were sent under fresh pseudonymous ids",
    )
