from __future__ import annotations

import numpy as np

from metric_tracker_rl.catalog.families import PUBLISHED_FAMILIES
from metric_tracker_rl.catalog.published import COUNT_COLUMNS, ENTITY_NAMES, FUNNEL_STEPS
from metric_tracker_rl.generation.anomalies.base import AnomalyFamily, InjectionRecord, rates_touching, register_family
from metric_tracker_rl.world.funnel import HOURS, FunnelPlan


class InstrumentationDataQualityIssue(AnomalyFamily):
    """A tracking bug fires one event two or more times, so it can exceed the step before it."""

    public = PUBLISHED_FAMILIES["instrumentation_data_quality_issue"]
    persists = True
    # Events whose normal step rate is high enough that double-firing makes the count impossible (published).
    entity_names = ENTITY_NAMES["data_quality"]
    magnitude_meaning = "extra copies logged per real event (1.0 = every event logged twice)"
    magnitude_ranges = {"easy": (1.3, 1.8), "medium": (1.2, 1.6), "hard": (1.2, 1.5)}

    def inject(
        self, plan: FunnelPlan, day: int, entity_name: str, magnitude: float, rng: np.random.Generator, difficulty: str
    ) -> InjectionRecord:
        event = COUNT_COLUMNS.index(entity_name)
        start = int(rng.integers(0, 7))
        plan.duplicate_factor[day, start:, event] *= 1.0 + magnitude
        neutral = {("event_count", entity_name)} | rates_touching(entity_name)
        neutral |= {("funnel_step", FUNNEL_STEPS[i]) for i in (event - 1, event) if 0 <= i < len(FUNNEL_STEPS)}
        if start > 0:
            neutral.add(("hourly_mix", entity_name))
        return InjectionRecord(
            family=self.name,
            day=day,
            entity_type=self.entity_type,
            entity_name=entity_name,
            magnitude=magnitude,
            hours=(start, HOURS),
            description=f"{entity_name} logged {1 + magnitude:.1f}x from {start:02d}:00 to the end of the day",
            neutral=frozenset(neutral),
        )


register_family(InstrumentationDataQualityIssue())
