"""transaction_retries: one mobile app version's payment SDK re-sends each payment_successful under a new
transaction_id: its purchases and revenue_usd double (sessions with two transaction ids)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from metric_tracker_rl.generation.defects.base import DefectRecord, register_defect
from metric_tracker_rl.generation.defects.log_edits import SessionPlaces, merged, mobile_version_span
from metric_tracker_rl.world.events import MICROS_PER_SECOND, EventLog, event_code
from metric_tracker_rl.world.segments import Segment

RETRY_TRANSACTION_OFFSET = 10**9  # a re-sent purchase's new transaction id: its own plus this


@register_defect("transaction_retries", "sdk")
def transaction_retries(log: EventLog, rng: np.random.Generator) -> tuple[EventLog, DefectRecord]:
    places = SessionPlaces.of(log)
    platform, days, on_platform, version = mobile_version_span(log, places, rng)
    events = log.events
    chosen = (on_platform & (places.version == version))[events.session]
    paid = np.flatnonzero(chosen & (events.name == event_code("payment_successful")))
    paid = paid[np.unique(events.transaction[paid], return_index=True)[1]]  # each purchase once
    again = events.take(paid)
    delay = (rng.uniform(3, 40, len(paid)) * MICROS_PER_SECOND).astype(np.int64)
    again = replace(
        again,
        transaction=again.transaction + RETRY_TRANSACTION_OFFSET,
        timestamp_us=again.timestamp_us + delay,
        ingested_us=again.ingested_us + delay,
    )
    log = replace(log, events=merged(events, again))
    segment = Segment(
        platform=log.users.platform.values[platform], app_version=log.sessions.app_version.values[version]
    )
    return log, DefectRecord(
        "transaction_retries",
        days,
        segment,
        "revenue_usd",
        f"{segment.label()}: the payment SDK re-sent {len(paid)} purchases under new transaction ids",
    )


MISLABEL_MIN_PURCHASES = 2  # a mislabelled segment's counted purchases in its own currency on each of its dates
