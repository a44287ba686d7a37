"""menu_prefire: an app release prefetches the menu screen at launch and its SDK logs the screen view then (a screen
view fired for a screen the user never saw), so every session of that version on its platform sends menu_open a
moment after app_open: app_open_to_menu_open there jumps towards one. Users did the same: the trace is a menu_open
within a second of the app_open in nearly every session of one app version, where users take seconds."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from metric_tracker_rl.generation.defects.base import DefectRecord, register_defect
from metric_tracker_rl.generation.defects.log_edits import SessionPlaces, merged
from metric_tracker_rl.generation.defects.session_edits import current_version_span
from metric_tracker_rl.world.events import EventLog, event_code
from metric_tracker_rl.world.segments import Segment

PREFIRE_MS = (150, 700)  # how long after the app_open the prefetched screen logs its view


@register_defect("menu_prefire", "sdk")
def menu_prefire(log: EventLog, rng: np.random.Generator) -> tuple[EventLog, DefectRecord]:
    places = SessionPlaces.of(log)
    platform, days, on_platform, version = current_version_span(log, places, rng)
    events = log.events
    touched = on_platform & (places.version == version)
    opens = np.flatnonzero((events.name == event_code("app_open")) & touched[events.session])
    opens = opens[np.r_[True, events.session[opens][1:] != events.session[opens][:-1]]]  # each session's first
    added = events.take(opens)
    delay = rng.integers(PREFIRE_MS[0], PREFIRE_MS[1] + 1, len(opens)) * 1000
    added = replace(
        added,
        name=np.full(len(opens), event_code("menu_open"), dtype=np.int8),
        timestamp_us=added.timestamp_us + delay,
        ingested_us=added.ingested_us + delay,
        engagement_msec=np.full(len(opens), -1, dtype=np.int32),
    )
    log = replace(log, events=merged(events, added))
    segment = Segment(
        platform=log.users.platform.values[platform], app_version=log.sessions.app_version.values[version]
    )
    return log, DefectRecord(
        "menu_prefire",
        days,
        segment,
        "app_open_to_menu_open",
        f"{segment.label()}: the app logged menu_open at launch in {len(opens)} sessions",
    )
