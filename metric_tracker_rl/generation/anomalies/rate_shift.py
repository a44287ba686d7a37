"""Shared mechanics of the two conversion-rate families: one step converts differently all day."""

from __future__ import annotations

import numpy as np

from metric_tracker_rl.generation.anomalies.base import (
    AnomalyFamily,
    InjectionRecord,
    counts_from,
    full_day,
    rates_through_step,
    step_index,
)
from metric_tracker_rl.world.funnel import FunnelPlan

MAX_STEP_RATE = 0.97


class RateShiftFamily(AnomalyFamily):
    direction: int  # +1 spike, -1 drop
    persists = True

    def inject(
        self, plan: FunnelPlan, day: int, entity_name: str, magnitude: float, rng: np.random.Generator, difficulty: str
    ) -> InjectionRecord:
        step = step_index(entity_name)
        factor = 1.0 + self.direction * magnitude
        plan.step_rates[day, :, step] = np.minimum(plan.step_rates[day, :, step] * factor, MAX_STEP_RATE)
        neutral = (rates_through_step(step) | counts_from(step + 1)) - {(self.entity_type, entity_name)}
        verb = "rises" if self.direction > 0 else "falls"
        return InjectionRecord(
            family=self.name,
            day=day,
            entity_type=self.entity_type,
            entity_name=entity_name,
            magnitude=magnitude,
            hours=full_day(),
            description=f"{entity_name} {verb} by {magnitude:.0%} for the whole day",
            neutral=frozenset(neutral),
        )
