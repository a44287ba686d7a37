"""clock_skew: one platform's devices stamp a day's events a day early (their ingestion times are right): that
date's sessions move to the date before."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from metric_tracker_rl.generation.defects.base import DefectRecord, register_defect
from metric_tracker_rl.generation.defects.log_edits import DAY_US, SessionPlaces, span
from metric_tracker_rl.world.events import EventLog
from metric_tracker_rl.world.segments import Segment


@register_defect("clock_skew", "time")
def clock_skew(log: EventLog, rng: np.random.Generator) -> tuple[EventLog, DefectRecord]:
    places = SessionPlaces.of(log)
    platforms = log.users.platform.values
    platform = int(rng.integers(len(platforms)))
    (day,) = span(rng, log, (1, 1))
    skewed = (places.platform == platform) & (places.day == day)
    events = log.events
    moved = skewed[events.session]
    log = replace(log, events=replace(events, timestamp_us=events.timestamp_us - np.where(moved, DAY_US, 0)))
    segment = Segment(platform=platforms[platform])
    return log, DefectRecord(
        "clock_skew",
        (day - 1, day),
        segment,
        "sessions",
        f"{segment.label()}: devices stamped {int(skewed.sum())} sessions a day early",
    )
