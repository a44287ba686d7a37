"""purchase_double_fire: one mobile app version logs a purchase twice, from the checkout screen and again from the
receipt screen, each call with a transaction id of its own (the SDK mints one per call), so de-duplication by
transaction id keeps both: purchases and revenue_usd on that version double while its sessions and rates stay.
Users paid once: the trace is a second payment_successful of the same value a few seconds after the first, under
another transaction id, in nearly every paying session of one app version."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from metric_tracker_rl.generation.defects.base import DefectRecord, register_defect
from metric_tracker_rl.generation.defects.log_edits import SessionPlaces, merged, span
from metric_tracker_rl.generation.defects.places import counted_purchases, paying_mobile_version
from metric_tracker_rl.world.events import MICROS_PER_SECOND, EventLog
from metric_tracker_rl.world.segments import Segment

DOUBLE_DAYS = (2, 4)  # dates until the release is pulled
MIN_PURCHASES = 3  # the version's counted purchases on each of its dates
RECEIPT_SECONDS = (2, 6)  # how long after the checkout's the receipt screen logs the purchase again


@register_defect("purchase_double_fire", "sdk")
def purchase_double_fire(log: EventLog, rng: np.random.Generator) -> tuple[EventLog, DefectRecord]:
    places = SessionPlaces.of(log)
    days = span(rng, log, DOUBLE_DAYS)
    events = log.events
    platform, version = paying_mobile_version(log, places, days, MIN_PURCHASES, rng)
    purchases = counted_purchases(log, places)
    paid = events.session[purchases]
    versions = log.sessions.app_version.values
    touched = (places.platform == platform) & (places.version == version) & np.isin(places.day, days)
    first = purchases[touched[paid]]
    first = first[np.unique(events.transaction[first], return_index=True)[1]]  # each transaction once
    later = rng.integers(RECEIPT_SECONDS[0], RECEIPT_SECONDS[1] + 1, len(first)) * MICROS_PER_SECOND
    added = events.take(first)
    fresh = int(events.transaction.max(initial=0)) + 1 + np.arange(len(first), dtype=np.int64)
    added = replace(
        added,
        timestamp_us=added.timestamp_us + later,
        ingested_us=added.ingested_us + later,
        transaction=fresh,
    )
    log = replace(log, events=merged(events, added))
    segment = Segment(platform=log.users.platform.values[platform], app_version=versions[version])
    return log, DefectRecord(
        "purchase_double_fire",
        days,
        segment,
        "revenue_usd",
        f"{segment.label()}: the app logged {len(first)} purchases twice under new transaction ids",
    )
