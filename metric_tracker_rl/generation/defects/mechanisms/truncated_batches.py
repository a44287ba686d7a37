"""truncated_batches: one platform's SDK sends a session's events in one batch and a payload limit cuts it: a
session's events past the first few never arrive, so the deep steps of long sessions (orders, payments) and the
closing user_engagement vanish. The platform's late funnel rates fall; the trace is sessions without their closing
user_engagement, all cut at the same length, the longest the platform sent that date."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from metric_tracker_rl.generation.defects.base import DefectRecord, register_defect
from metric_tracker_rl.generation.defects.log_edits import SessionPlaces, span
from metric_tracker_rl.generation.defects.session_edits import repeat_runs
from metric_tracker_rl.world.events import EventLog
from metric_tracker_rl.world.segments import Segment

BATCH_LIMIT = (5, 6)  # distinct events a batch keeps (an event's repeats ride with it)


def event_positions(log: EventLog) -> np.ndarray:
    """(E,) each event's position among its session's distinct events, from 0 (a repeat shares its first's)."""
    events = log.events
    runs = repeat_runs(events)
    distinct = np.cumsum(runs == np.arange(len(events))) - 1
    session_start = np.searchsorted(events.session, events.session)
    positions: np.ndarray = distinct - distinct[session_start]
    return positions


@register_defect("truncated_batches", "sdk", repairable=False)
def truncated_batches(log: EventLog, rng: np.random.Generator) -> tuple[EventLog, DefectRecord]:
    places = SessionPlaces.of(log)
    platforms = log.users.platform.values
    platform = int(rng.integers(len(platforms)))
    days = span(rng, log, (2, 4))
    limit = int(rng.integers(BATCH_LIMIT[0], BATCH_LIMIT[1] + 1))
    cut = (places.platform == platform) & np.isin(places.day, days)
    lost = cut[log.events.session] & (event_positions(log) >= limit)
    log = replace(log, events=log.events.take(~lost))
    segment = Segment(platform=platforms[platform])
    return log, DefectRecord(
        "truncated_batches",
        days,
        segment,
        "order_placed_to_payment_successful",
        f"{segment.label()}: a payload limit cut {int(lost.sum())} events from the end of sessions longer than {limit}",
    )
