"""Shared mechanics of the two event-count families: the volume entering the funnel changes,
conversion does not, so every count moves together and the rates stay flat."""

from __future__ import annotations

import numpy as np

from metric_tracker_rl.catalog.tiers import TIERS
from metric_tracker_rl.generation.anomalies.base import (
    AnomalyFamily,
    InjectionRecord,
    counts_from,
    draw_window,
    full_day,
    hourly_mix_from,
)
from metric_tracker_rl.world.funnel import HOURS, FunnelPlan

MAX_LOCAL_DROP = 0.9  # share of an hour's opens an outage removes at most


class CountShiftFamily(AnomalyFamily):
    direction: int
    # Per aggregate difficulty, the chance that the incident is confined to a block of hours. On hard it always is:
    # whole-day demand swings as large as count incidents happen there, and an incident in a block of hours moves the
    # hour-of-day mix of every event, which a swing (every hour scaled together) does not.
    partial_day_probability: dict[str, float]
    segment_partial_day_probability: float  # the same chance on a segment's cells (every segmented tier)

    entity_names = ("app_opens",)

    def inject(
        self, plan: FunnelPlan, day: int, entity_name: str, magnitude: float, rng: np.random.Generator, difficulty: str
    ) -> InjectionRecord:
        neutral = counts_from(1)
        segmented = TIERS[difficulty].segmented is not None
        chance = self.segment_partial_day_probability if segmented else self.partial_day_probability[difficulty]
        if rng.random() < chance:
            # Concentrate the same daily effect in a block of hours (an outage, a viral moment).
            start, end = draw_window(rng, int(rng.integers(5, 9)))
            total = max(float(plan.traffic[day].sum()), 1e-12)  # a frontier cell may carry no traffic that day
            share = plan.traffic[day, start:end].sum() / total
            # An outage cannot remove more than the traffic of its hours: widen it until the day loses
            # the drawn share (at most MAX_LOCAL_DROP of each hour's opens).
            while self.direction < 0 and magnitude > MAX_LOCAL_DROP * share and (start > 0 or end < HOURS):
                start, end = (start, end + 1) if end < HOURS else (start - 1, end)
                share = plan.traffic[day, start:end].sum() / total
            cap = MAX_LOCAL_DROP if self.direction < 0 else 50.0
            local = 1.0 + self.direction * (min(magnitude / share, cap) if share > 0 else cap)
            plan.traffic[day, start:end] *= local
            neutral |= hourly_mix_from(0)
            where = f"between {start:02d}:00 and {end:02d}:00"
        else:
            start, end = full_day()
            plan.traffic[day] *= 1.0 + self.direction * magnitude
            where = "all day"
        verb = "rise" if self.direction > 0 else "fall"
        return InjectionRecord(
            family=self.name,
            day=day,
            entity_type=self.entity_type,
            entity_name=entity_name,
            magnitude=magnitude,
            hours=(start, end),
            description=f"app opens {verb} by about {magnitude:.0%} of the day's volume {where}; "
            "conversion is unchanged",
            neutral=frozenset(neutral),
        )
