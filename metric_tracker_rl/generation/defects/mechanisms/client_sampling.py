"""client_sampling: one mobile app version ships with its SDK's client-side sampling on, so it sends only a share
of its sessions (each kept by a draw when it starts) until a fix: that version's sessions fall to the share. The
trace is what the app's users left elsewhere: their session ids skip the numbers of the sessions never sent, and
users whose install (first touch) falls on those dates sent no event at all."""

from __future__ import annotations

import numpy as np

from metric_tracker_rl.generation.defects.base import DefectRecord, register_defect
from metric_tracker_rl.generation.defects.log_edits import SessionPlaces
from metric_tracker_rl.generation.defects.session_edits import current_version_span, without_sessions
from metric_tracker_rl.world.events import EventLog
from metric_tracker_rl.world.segments import Segment

KEPT_SHARE = (0.1, 0.3)  # of the version's sessions: those the sampling sends


@register_defect("client_sampling", "sdk", repairable=False)
def client_sampling(log: EventLog, rng: np.random.Generator) -> tuple[EventLog, DefectRecord]:
    places = SessionPlaces.of(log)
    platform, days, on_platform, version = current_version_span(log, places, rng)
    kept = rng.uniform(*KEPT_SHARE)
    dropped = on_platform & (places.version == version) & (rng.random(len(places.day)) >= kept)
    log = without_sessions(log, dropped)
    segment = Segment(
        platform=log.users.platform.values[platform], app_version=log.sessions.app_version.values[version]
    )
    return log, DefectRecord(
        "client_sampling",
        days,
        segment,
        "sessions",
        f"{segment.label()}: the SDK sampled its sessions, sending {kept:.0%}; {int(dropped.sum())} were never sent",
    )
