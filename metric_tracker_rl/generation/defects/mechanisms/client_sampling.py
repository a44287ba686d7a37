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
# Its trace is read against the version's other dates: spans are drawn again (at most SPAN_DRAWS times) until the
# version keeps, on each of the AFTER_DAYS dates after the fix the window holds, at least LASTING_SHARE of its
# sessions a date on the span (not a version whose users were leaving for the next one as it broke).
SPAN_DRAWS, AFTER_DAYS, LASTING_SHARE = 8, 3, 0.5


@register_defect("client_sampling", "sdk", repairable=False)
def client_sampling(log: EventLog, rng: np.random.Generator) -> tuple[EventLog, DefectRecord]:
    places = SessionPlaces.of(log)
    for _ in range(SPAN_DRAWS):
        platform, days, on_platform, version = current_version_span(log, places, rng)
        theirs = (places.platform == platform) & (places.version == version) & (places.day >= 0)
        mine = np.bincount(places.day[theirs], minlength=log.num_days)
        after = mine[days[-1] + 1 : days[-1] + 1 + AFTER_DAYS]
        if (after >= LASTING_SHARE * mine[list(days)].mean()).all():
            break
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
