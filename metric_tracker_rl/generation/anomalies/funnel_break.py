from __future__ import annotations

import numpy as np

from metric_tracker_rl.catalog.families import PUBLISHED_FAMILIES
from metric_tracker_rl.catalog.published import FUNNEL_STEPS
from metric_tracker_rl.generation.anomalies.base import (
    AnomalyFamily,
    InjectionRecord,
    counts_from,
    draw_window,
    hourly_mix_from,
    rates_through_step,
    register_family,
    step_index,
)
from metric_tracker_rl.world.funnel import FunnelPlan


class FunnelBreak(AnomalyFamily):
    """A step stops working for a few hours (a payment provider outage, a broken checkout deploy)."""

    public = PUBLISHED_FAMILIES["funnel_break"]
    entity_names = FUNNEL_STEPS
    magnitude_meaning = "hours in which the step nearly stops converting"
    magnitude_ranges = {"easy": (6.0, 9.0), "medium": (4.0, 6.0), "hard": (3.0, 4.5)}

    def inject(
        self, plan: FunnelPlan, day: int, entity_name: str, magnitude: float, rng: np.random.Generator, difficulty: str
    ) -> InjectionRecord:
        step = step_index(entity_name)
        start, end = draw_window(rng, round(magnitude), earliest=9, latest_end=22)
        plan.step_rates[day, start:end, step] *= rng.uniform(0.0, 0.08, end - start)
        neutral = (
            {("conversion_rate", entity_name)}
            | rates_through_step(step)
            | counts_from(step + 1)
            | hourly_mix_from(step + 1)
        )
        return InjectionRecord(
            family=self.name,
            day=day,
            entity_type=self.entity_type,
            entity_name=entity_name,
            magnitude=float(end - start),
            hours=(start, end),
            description=f"{entity_name} almost stops converting between {start:02d}:00 and {end:02d}:00",
            neutral=frozenset(neutral),
        )


register_family(FunnelBreak())
