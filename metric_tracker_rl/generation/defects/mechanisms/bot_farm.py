"""bot_farm: devices not on the known-bot list open web sessions in one country and do nothing else."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from metric_tracker_rl.generation.defects.base import DefectRecord, register_defect
from metric_tracker_rl.generation.defects.log_edits import DAY_US, SessionPlaces, span, with_idle_sessions
from metric_tracker_rl.generation.identities import draw_identities
from metric_tracker_rl.sql.columns import Labels
from metric_tracker_rl.world.events import MICROS_PER_SECOND, EventLog, Users, day_start_micros
from metric_tracker_rl.world.segments import Segment

BOT_SESSION_SHARE = 0.6  # bot sessions per day, as a share of the segment's own


@register_defect("bot_farm", "traffic")
def bot_farm(
    log: EventLog, rng: np.random.Generator, least_per_day: int = 0, share: float = BOT_SESSION_SHARE
) -> tuple[EventLog, DefectRecord]:
    """`least_per_day`: the bots' sessions on each date at the least, however small the country's web traffic (a
    tier that asks every row to be findable sets it: a few bot sessions among a small country's few are no trace);
    `share`: their sessions on a date, on average, as a share of the segment's own (what leaves the trace where the
    segment is too big for the least to)."""
    places = SessionPlaces.of(log)
    users = log.users
    platform = users.platform.values.index("web")
    country = int(rng.integers(len(users.country.values)))
    days = span(rng, log, (2, 3))
    own = np.bincount(
        places.day[(places.platform == platform) & (places.country == country) & (places.day >= 0)],
        minlength=log.num_days,
    )
    per_day = np.maximum(least_per_day, rng.poisson(share * own[list(days)]))
    bots = 3
    day = np.repeat(days, per_day)
    user = (len(users.pseudo_ids) + rng.integers(0, bots, len(day))).astype(np.int64)
    start = day_start_micros(0) + day * DAY_US + rng.integers(0, DAY_US, len(day))
    touch_s = (day_start_micros(days[0]) // MICROS_PER_SECOND) + np.zeros(bots, dtype=np.int64)
    pseudo, logins, devices = draw_identities(rng, touch_s, np.zeros(bots, dtype=bool))
    farm = Users(
        pseudo,
        logins,
        devices,
        Labels(np.full(bots, platform, dtype=np.int8), users.platform.values),
        Labels(np.full(bots, country, dtype=np.int8), users.country.values),
        Labels(np.zeros(bots, dtype=np.int8), users.channel.values),
        np.full(bots, days[0], dtype=np.int16),
    )
    log = replace(log, users=users.then(farm))
    log = with_idle_sessions(log, user, start, log.sessions.app_version.values.index("web"))
    segment = Segment(platform="web", country=users.country.values[country])
    return log, DefectRecord(
        "bot_farm",
        days,
        segment,
        "app_open_to_menu_open",
        f"{segment.label()}: {bots} unlisted devices opened {len(day)} sessions that did nothing",
    )
