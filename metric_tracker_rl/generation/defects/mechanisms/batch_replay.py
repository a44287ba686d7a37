"""batch_replay: the pipeline re-ingests a block of hours of one platform's events (a replayed batch after a failed
acknowledgement) and its sessionizer gives the replayed events new session ids, so the platform's sessions of the
block are counted twice on that date. Users did nothing new: every replayed event has a twin in the same user's
other session, with the same name and timestamp."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from metric_tracker_rl.generation.defects.base import DefectRecord, register_defect
from metric_tracker_rl.generation.defects.log_edits import appended, span, with_sessions
from metric_tracker_rl.generation.defects.places import HOUR_US, hour_block
from metric_tracker_rl.sql.columns import Labels
from metric_tracker_rl.world.events import EventLog, Sessions, reporting_day
from metric_tracker_rl.world.segments import Segment

REPLAY_HOURS = (7, 11)  # the replayed block's length
REPLAY_DELAY_HOURS = (1.0, 4.0)  # from the block's end to the replay
REPLAY_SESSION_OFFSET = 50_000  # a replayed session's id: its own plus this (no user has that many)


@register_defect("batch_replay", "pipeline")
def batch_replay(log: EventLog, rng: np.random.Generator) -> tuple[EventLog, DefectRecord]:
    platforms = log.users.platform.values
    platform = int(rng.integers(len(platforms)))
    (day,) = span(rng, log, (1, 1))
    start, end = hour_block(rng, day, REPLAY_HOURS)
    events, sessions = log.events, log.sessions
    replayed = np.flatnonzero(
        (log.users.platform.codes[sessions.user[events.session]] == platform)
        & (events.ingested_us >= start)
        & (events.ingested_us < end)
        & (reporting_day(events.timestamp_us) == day)
        & ~sessions.consent_denied[events.session]
    )
    source, new_of = np.unique(events.session[replayed], return_inverse=True)
    added = Sessions(
        user=sessions.user[source],
        session_id=sessions.session_id[source] + REPLAY_SESSION_OFFSET,
        app_version=Labels(sessions.app_version.codes[source], sessions.app_version.values),
        consent_denied=np.zeros(len(source), dtype=bool),
    )
    delay = int(rng.uniform(*REPLAY_DELAY_HOURS) * HOUR_US)
    again = events.take(replayed)
    again = replace(
        again,
        session=(len(sessions.user) + new_of.reshape(-1)).astype(np.int32),
        ingested_us=again.ingested_us + (end - start) + delay,
    )
    log = appended(replace(log, sessions=with_sessions(log, added)), again)
    segment = Segment(platform=platforms[platform])
    return log, DefectRecord(
        "batch_replay",
        (day,),
        segment,
        "sessions",
        f"{segment.label()}: {len(replayed)} events of {(end - start) // HOUR_US} hours were "
        "ingested again under new session ids",
    )
