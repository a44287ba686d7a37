"""stamped_behind: an app release's timestamp serialiser applies the device's zone offset with the wrong sign, so
for a date, until the build is pulled, its events are stamped many hours behind (the collector's ingestion times
are right): that version's sessions of the date's first hours are reported on the date before. Users did the
same: the trace is one app version's events ingested a whole number of hours after the time they are stamped
with, where every other version's arrive within seconds or days."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from metric_tracker_rl.generation.defects.base import DefectRecord, register_defect
from metric_tracker_rl.generation.defects.log_edits import SessionPlaces
from metric_tracker_rl.generation.defects.places import HOUR_US
from metric_tracker_rl.generation.defects.session_edits import current_version_span
from metric_tracker_rl.world.events import EventLog
from metric_tracker_rl.world.segments import Segment

BEHIND_HOURS = (10, 14)  # twice the devices' zone offset, the wrong way


@register_defect("stamped_behind", "time")
def stamped_behind(log: EventLog, rng: np.random.Generator) -> tuple[EventLog, DefectRecord]:
    places = SessionPlaces.of(log)
    platform, days, _, version = current_version_span(log, places, rng)
    day = days[-1]
    hours = int(rng.integers(BEHIND_HOURS[0], BEHIND_HOURS[1] + 1))
    behind = (places.platform == platform) & (places.version == version) & (places.day == day)
    events = log.events
    shift = np.where(behind[events.session], hours * HOUR_US, 0)
    log = replace(log, events=replace(events, timestamp_us=events.timestamp_us - shift))
    segment = Segment(
        platform=log.users.platform.values[platform], app_version=log.sessions.app_version.values[version]
    )
    return log, DefectRecord(
        "stamped_behind",
        (day - 1, day),
        segment,
        "sessions",
        f"{segment.label()}: the app stamped {int(behind.sum())} sessions {hours} hours behind",
    )
