"""device_clock_ahead: an OS update on one platform's devices stamps a date's events hours ahead (the device's clock
or zone is set wrong; the collector's ingestion times are right), so the date's later sessions are reported on the
next date. Users did the same: those events were ingested before the time they are stamped with."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from metric_tracker_rl.generation.defects.base import DefectRecord, register_defect
from metric_tracker_rl.generation.defects.log_edits import SessionPlaces, span
from metric_tracker_rl.generation.defects.places import HOUR_US
from metric_tracker_rl.world.events import EventLog
from metric_tracker_rl.world.segments import Segment

AHEAD_HOURS = (9, 14)  # how far ahead the devices stamp


@register_defect("device_clock_ahead", "time")
def device_clock_ahead(log: EventLog, rng: np.random.Generator) -> tuple[EventLog, DefectRecord]:
    places = SessionPlaces.of(log)
    platforms = log.users.platform.values
    platform = int(rng.integers(len(platforms)))
    (day,) = span(rng, log, (1, 1))
    hours = int(rng.integers(AHEAD_HOURS[0], AHEAD_HOURS[1] + 1))
    ahead = (places.platform == platform) & (places.day == day)
    events = log.events
    shift = np.where(ahead[events.session], hours * HOUR_US, 0)
    log = replace(log, events=replace(events, timestamp_us=events.timestamp_us + shift))
    segment = Segment(platform=platforms[platform])
    return log, DefectRecord(
        "device_clock_ahead",
        (day, day + 1),
        segment,
        "sessions",
        f"{segment.label()}: devices stamped {int(ahead.sum())} sessions {hours} hours ahead",
    )
