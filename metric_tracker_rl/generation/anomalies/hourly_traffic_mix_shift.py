from __future__ import annotations

import numpy as np

from metric_tracker_rl.catalog.families import PUBLISHED_FAMILIES
from metric_tracker_rl.generation.anomalies.base import (
    AnomalyFamily,
    InjectionRecord,
    draw_window,
    rates_touching,
    register_family,
)
from metric_tracker_rl.world.funnel import FunnelPlan


class HourlyTrafficMixShift(AnomalyFamily):
    """Non-human traffic (a scraper, a bot wave) opens the app in a block of hours and never converts."""

    public = PUBLISHED_FAMILIES["hourly_traffic_mix_shift"]
    entity_names = ("app_opens",)
    magnitude_meaning = "extra non-converting opens as a share of the day's normal volume"
    magnitude_ranges = {"easy": (0.5, 0.8), "medium": (0.32, 0.5), "hard": (0.22, 0.32)}

    def inject(
        self, plan: FunnelPlan, day: int, entity_name: str, magnitude: float, rng: np.random.Generator, difficulty: str
    ) -> InjectionRecord:
        start, end = draw_window(rng, int(rng.integers(3, 6)), earliest=0, latest_end=24)
        weights = rng.uniform(0.6, 1.4, end - start)
        plan.extra_opens[day, start:end] += magnitude * plan.traffic[day].sum() * weights / weights.sum()
        neutral = {("event_count", "app_opens")} | rates_touching("app_opens")
        return InjectionRecord(
            family=self.name,
            day=day,
            entity_type=self.entity_type,
            entity_name=entity_name,
            magnitude=magnitude,
            hours=(start, end),
            description=f"non-converting opens worth {magnitude:.0%} of the day's volume "
            f"between {start:02d}:00 and {end:02d}:00",
            neutral=frozenset(neutral),
        )


register_family(HourlyTrafficMixShift())
