"""event_renamed_silently: one mobile app version's release sends a funnel event under another name, and no deploy
of the tracking plan says so (tracking_changelog has no entry): the step seems to stop on that version until a
hotfix. Users did the same: an event name outside the tracking plan's appears on that version alone."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from metric_tracker_rl.generation.defects.base import DefectRecord, register_defect
from metric_tracker_rl.generation.defects.log_edits import STEP_OF_EVENT, SessionPlaces, span
from metric_tracker_rl.generation.defects.places import fewest_on
from metric_tracker_rl.world.events import RENAMED_EVENTS, EventLog, event_code
from metric_tracker_rl.world.metrics_layer import counted_events
from metric_tracker_rl.world.segments import Segment

RENAMED_DAYS = (3, 6)  # dates until a hotfix reaches the version's users
MIN_SENT = 3  # the version's counted sessions sending the event on each of its dates


@register_defect("event_renamed_silently", "sdk")
def event_renamed_silently(log: EventLog, rng: np.random.Generator) -> tuple[EventLog, DefectRecord]:
    places = SessionPlaces.of(log)
    platform = log.users.platform.values.index(str(rng.choice(["ios", "android"])))
    days = span(rng, log, RENAMED_DAYS)
    old = str(rng.choice(list(RENAMED_EVENTS)))
    events = log.events
    # A version whose counted sessions reach the step on each date (a new release's first dates may hold only QA's).
    sent = events.session[counted_events(log) & (events.name == event_code(old))]
    counts = np.zeros((len(log.sessions.app_version.values), log.num_days), dtype=np.int64)
    on = places.platform[sent] == platform
    np.add.at(counts, (places.version[sent[on]], places.day[sent[on]]), 1)
    fewest = fewest_on(counts, days)
    pool = np.flatnonzero(fewest >= MIN_SENT)
    version = int(pool[int(rng.integers(len(pool)))]) if len(pool) else int(np.argmax(fewest))
    on_platform = (places.platform == platform) & np.isin(places.day, days)
    renamed = (on_platform & (places.version == version))[events.session] & (events.name == event_code(old))
    names = np.where(renamed, event_code(RENAMED_EVENTS[old]), events.name).astype(np.int8)
    log = replace(log, events=replace(events, name=names))
    segment = Segment(
        platform=log.users.platform.values[platform], app_version=log.sessions.app_version.values[version]
    )
    return log, DefectRecord(
        "event_renamed_silently",
        days,
        segment,
        STEP_OF_EVENT[old],
        f"{segment.label()}: the release sent {int(renamed.sum())} {old} events as {RENAMED_EVENTS[old]}",
    )
