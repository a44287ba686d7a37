"""retry_duplicates: one mobile app version's SDK re-sends a session's app_open under a new session id: sessions
rise and app_open_to_menu_open falls on that version (sessions with an app_open and nothing else)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from metric_tracker_rl.generation.defects.base import DefectRecord, register_defect
from metric_tracker_rl.generation.defects.log_edits import SessionPlaces, appended, mobile_version_span, with_sessions
from metric_tracker_rl.sql.columns import Labels
from metric_tracker_rl.world.events import MICROS_PER_SECOND, EventLog, Sessions, event_code
from metric_tracker_rl.world.segments import Segment

RETRY_SHARE = 0.5  # of the version's sessions: those whose app_open is re-sent
RETRY_SESSION_OFFSET = 9000  # the re-sent session's id: its own plus this


@register_defect("retry_duplicates", "sdk")
def retry_duplicates(log: EventLog, rng: np.random.Generator) -> tuple[EventLog, DefectRecord]:
    places = SessionPlaces.of(log)
    platform, days, on_platform, version = mobile_version_span(log, places, rng)
    chosen = np.flatnonzero(
        on_platform
        & (places.version == version)
        & ~log.sessions.consent_denied
        & (rng.random(len(places.day)) < RETRY_SHARE)
    )
    opens = np.flatnonzero(log.events.name == event_code("app_open"))
    opens = opens[np.isin(log.events.session[opens], chosen)]
    opens = opens[np.unique(log.events.session[opens], return_index=True)[1]]  # one per session
    sessions = log.sessions
    source = log.events.session[opens]
    new_index = len(sessions.user) + np.arange(len(opens))
    added = Sessions(
        user=sessions.user[source],
        session_id=sessions.session_id[source] + RETRY_SESSION_OFFSET,
        app_version=Labels(sessions.app_version.codes[source], sessions.app_version.values),
        consent_denied=np.zeros(len(opens), dtype=bool),
    )
    resent = log.events.take(opens)
    delay = (rng.uniform(2, 20, len(opens)) * MICROS_PER_SECOND).astype(np.int64)
    resent = replace(
        resent,
        session=new_index.astype(np.int32),
        timestamp_us=resent.timestamp_us + delay,
        ingested_us=resent.ingested_us + delay,
    )
    log = appended(replace(log, sessions=with_sessions(log, added)), resent)
    segment = Segment(platform=log.users.platform.values[platform], app_version=sessions.app_version.values[version])
    return log, DefectRecord(
        "retry_duplicates",
        days,
        segment,
        "app_open_to_menu_open",
        f"{segment.label()}: the SDK re-sent the app_open of {len(opens)} sessions under a new session id",
    )
