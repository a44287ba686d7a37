"""debug_build: a rebuild of one mobile app version ships with the analytics debug flag left on, so every event
its devices send carries debug_mode = 1 until a fix, and the metrics layer excludes them all as test traffic: the
version's sessions vanish from the dashboard. The trace is debug_mode on many devices that no test list names."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from metric_tracker_rl.generation.defects.base import DefectRecord, register_defect
from metric_tracker_rl.generation.defects.log_edits import SessionPlaces
from metric_tracker_rl.generation.defects.session_edits import current_version_span
from metric_tracker_rl.world.events import EventLog
from metric_tracker_rl.world.segments import Segment

REBUILD_SHARE = (0.6, 0.9)  # of the version's devices: those that installed the rebuild


@register_defect("debug_build", "sdk")
def debug_build(log: EventLog, rng: np.random.Generator) -> tuple[EventLog, DefectRecord]:
    places = SessionPlaces.of(log)
    platform, days, on_platform, version = current_version_span(log, places, rng)
    installed = rng.random(len(log.users.pseudo_ids)) < rng.uniform(*REBUILD_SHARE)
    flagged = on_platform & (places.version == version) & installed[log.sessions.user]
    events = log.events
    debug = events.debug | flagged[events.session]
    log = replace(log, events=replace(events, debug=debug))
    segment = Segment(
        platform=log.users.platform.values[platform], app_version=log.sessions.app_version.values[version]
    )
    return log, DefectRecord(
        "debug_build",
        days,
        segment,
        "sessions",
        f"{segment.label()}: a rebuild with the debug flag on sent {int(flagged.sum())} sessions as debug traffic",
    )
