"""tracking_stopped: a tracking deploy renames a funnel event on one platform (the changelog says so): its step
seems to stop."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from metric_tracker_rl.generation.defects.base import DefectRecord, register_defect
from metric_tracker_rl.generation.defects.log_edits import STEP_OF_EVENT
from metric_tracker_rl.world.events import RENAMED_EVENTS, EventLog, TrackingChange, event_code, reporting_day
from metric_tracker_rl.world.segments import Segment


@register_defect("tracking_stopped", "sdk")
def tracking_stopped(log: EventLog, rng: np.random.Generator) -> tuple[EventLog, DefectRecord]:
    platforms = log.users.platform.values
    platform = int(rng.integers(len(platforms)))
    old = str(rng.choice(list(RENAMED_EVENTS)))
    start = int(rng.integers(14, log.num_days - 10))
    events = log.events
    on_platform = log.users.platform.codes[log.sessions.user[events.session]] == platform
    renamed = (events.name == event_code(old)) & on_platform & (reporting_day(events.timestamp_us) >= start)
    names = events.name.copy()
    names[renamed] = event_code(RENAMED_EVENTS[old])
    change = TrackingChange(start, platforms[platform], f"{old} is sent as {RENAMED_EVENTS[old]}")
    log = replace(log, events=replace(events, name=names), changelog=(*log.changelog, change))
    segment = Segment(platform=platforms[platform])
    return log, DefectRecord(
        "tracking_stopped",
        tuple(range(start, log.num_days)),
        segment,
        STEP_OF_EVENT[old],
        f"{segment.label()}: from a tracking deploy, {change.change}",
    )
