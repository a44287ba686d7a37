"""ingestion_gap: an outage of the mobile collector loses a block of hours of one mobile platform's events on a date
(the collector acknowledged the batches and dropped them: they are never ingested): sessions that opened in the
block are not counted, and those that ran into it lose their later steps. Users did the same: the events of those
sessions that the devices queued offline and sent after the block are in the export, with no session_start or
app_open before them (a real outage, nobody arrives, leaves no such orphans)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from metric_tracker_rl.generation.defects.base import DefectRecord, register_defect
from metric_tracker_rl.generation.defects.log_edits import span
from metric_tracker_rl.generation.defects.places import HOUR_US, hour_block
from metric_tracker_rl.world.events import EventLog, reporting_day
from metric_tracker_rl.world.segments import Segment

GAP_HOURS = (6, 10)  # the outage's length


@register_defect("ingestion_gap", "pipeline", repairable=False)
def ingestion_gap(log: EventLog, rng: np.random.Generator) -> tuple[EventLog, DefectRecord]:
    platforms = log.users.platform.values
    platform = platforms.index(str(rng.choice(["ios", "android"])))
    (day,) = span(rng, log, (1, 1))
    start, end = hour_block(rng, day, GAP_HOURS)
    events = log.events
    lost = (
        (log.users.platform.codes[log.sessions.user[events.session]] == platform)
        & (events.ingested_us >= start)
        & (events.ingested_us < end)
        & (reporting_day(events.timestamp_us) == day)
    )
    log = replace(log, events=events.take(~lost))
    segment = Segment(platform=platforms[platform])
    return log, DefectRecord(
        "ingestion_gap",
        (day,),
        segment,
        "sessions",
        f"{segment.label()}: {int(lost.sum())} events of {(end - start) // HOUR_US} hours were never ingested",
    )
