"""late_load: a batch of a date's events is ingested after the cut-off: the date is left incomplete."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from metric_tracker_rl.generation.defects.base import DefectRecord, register_defect
from metric_tracker_rl.generation.defects.log_edits import DAY_US, span
from metric_tracker_rl.world.events import EventLog, reporting_day
from metric_tracker_rl.world.segments import Segment

LATE_LOAD_SHARE = 0.6  # of a date's events: those ingested after the cut-off
LATE_LOAD_DELAY_DAYS = 3


@register_defect("late_load", "pipeline")
def late_load(log: EventLog, rng: np.random.Generator) -> tuple[EventLog, DefectRecord]:
    (day,) = span(rng, log, (1, 1))
    events = log.events
    late = (reporting_day(events.timestamp_us) == day) & (rng.random(len(events)) < LATE_LOAD_SHARE)
    delay = np.where(late, LATE_LOAD_DELAY_DAYS * DAY_US, 0)
    log = replace(log, events=replace(events, ingested_us=events.ingested_us + delay))
    return log, DefectRecord(
        "late_load",
        (day,),
        Segment(),
        "sessions",
        f"a load of {int(late.sum())} events was ingested {LATE_LOAD_DELAY_DAYS} days late",
    )
