"""consent_drop: a consent banner change denies analytics storage for a country's sessions: their events are sent
as cookieless pings and the country's sessions vanish from the dashboard."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from metric_tracker_rl.generation.defects.base import DefectRecord, register_defect
from metric_tracker_rl.generation.defects.log_edits import SessionPlaces, span
from metric_tracker_rl.world.events import EventLog
from metric_tracker_rl.world.segments import Segment


@register_defect("consent_drop", "identity")
def consent_drop(log: EventLog, rng: np.random.Generator) -> tuple[EventLog, DefectRecord]:
    places = SessionPlaces.of(log)
    countries = log.users.country.values
    country = int(rng.integers(len(countries)))
    days = span(rng, log, (2, 4))
    denied = log.sessions.consent_denied | ((places.country == country) & np.isin(places.day, days))
    log = replace(log, sessions=replace(log.sessions, consent_denied=denied))
    segment = Segment(country=countries[country])
    return log, DefectRecord(
        "consent_drop",
        days,
        segment,
        "sessions",
        f"{segment.label()}: a consent banner change denied analytics storage to every session",
    )
