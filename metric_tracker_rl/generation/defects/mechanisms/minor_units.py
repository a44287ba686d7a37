"""minor_units: one mobile app version's checkout sends values in minor units (cents: a hundred times the amount)
while its currency parameter stays, so revenue_usd on that version jumps a hundredfold. Users paid the same: the
version's values are about a hundred times its peers' in the same currency."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from metric_tracker_rl.generation.defects.base import DefectRecord, register_defect
from metric_tracker_rl.generation.defects.log_edits import SessionPlaces, span
from metric_tracker_rl.generation.defects.places import paying_mobile_version
from metric_tracker_rl.world.events import EventLog
from metric_tracker_rl.world.segments import Segment

MINOR_UNITS_PER_UNIT = 100
MINOR_DAYS = (3, 6)  # dates until a hotfix reaches the version's users
MIN_PURCHASES = 2  # the version's counted purchases on each of its dates


@register_defect("minor_units", "join")
def minor_units(log: EventLog, rng: np.random.Generator) -> tuple[EventLog, DefectRecord]:
    places = SessionPlaces.of(log)
    days = span(rng, log, MINOR_DAYS)
    events = log.events
    # A mobile version with purchases on each date (or the one with the most on its leanest date).
    platform, version = paying_mobile_version(log, places, days, MIN_PURCHASES, rng)
    versions = log.sessions.app_version.values
    touched = ((places.platform == platform) & (places.version == version) & np.isin(places.day, days))[
        events.session
    ] & ~np.isnan(events.value)
    value = np.where(touched, np.round(events.value * MINOR_UNITS_PER_UNIT), events.value)
    log = replace(log, events=replace(events, value=value))
    segment = Segment(platform=log.users.platform.values[platform], app_version=versions[version])
    return log, DefectRecord(
        "minor_units",
        days,
        segment,
        "revenue_usd",
        f"{segment.label()}: the app sent {int(touched.sum())} values in minor units",
    )
