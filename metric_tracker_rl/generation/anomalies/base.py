"""What an injector is, what it records, and the registry that holds one injector per family.

A family's public facts (entity type, detection methods, flags) are its `public` description from
metric_tracker_rl/catalog/families.py, which the tools may import; the injector here is what they may not."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, fields

import numpy as np

from metric_tracker_rl.catalog.families import PUBLISHED_FAMILIES, EntityType, FamilyCatalog, FamilyDescription
from metric_tracker_rl.catalog.published import (
    AGGREGATE_DIFFICULTIES,
    CONVERSION_METRICS,
    COUNT_COLUMNS,
    FUNNEL_STEPS,
)
from metric_tracker_rl.catalog.registry import Registry
from metric_tracker_rl.world.funnel import HOURS, FunnelPlan

EntityKey = tuple[str, str]  # (entity_type, entity_name) on the injected date


@dataclass(frozen=True)
class InjectionRecord:
    """What an injector did: the ground-truth key and the keys it moved only as a side effect."""

    family: str
    day: int
    entity_type: EntityType
    entity_name: str
    magnitude: float
    hours: tuple[int, int]  # [start, end) hours affected
    description: str
    neutral: frozenset[EntityKey] = field(default_factory=frozenset)
    continues: int | None = None  # the first day of the incident when this date continues it, else None


@dataclass(frozen=True)
class ChangePointRecord(InjectionRecord):
    """A date of a persistent incident: its row's baseline is the same weekday's median over the dates before
    `change_point` (episode.change_point_baseline), since a fall that lasts weeks would take over a same-weekday
    median of the whole window. A record of its own type, so every other record stays as it was."""

    change_point: int = 0

    @classmethod
    def of(cls, record: InjectionRecord, change_point: int) -> ChangePointRecord:
        return cls(**{f.name: getattr(record, f.name) for f in fields(record)}, change_point=change_point)


class AnomalyFamily(ABC):
    """One incident type. `inject` edits the plan the way the real incident would."""

    public: FamilyDescription  # its published facts: name, entity type, detection methods, flags
    entity_names: tuple[str, ...]
    magnitude_meaning: str
    # Per aggregate difficulty (published in the brief). A segmented tier's magnitudes live with its incident kinds
    # (metric_tracker_rl/generation/kinds/) and are not published: there, incidents and benign fluctuations overlap.
    magnitude_ranges: dict[str, tuple[float, float]]
    persists: bool = False  # an incident of this family may go on over the next date (one row per date)
    # At a segmented tier, a family no incident kind reports is injected on one platform's or country's cells, in a
    # scenario of that family alone, with a magnitude drawn from this range (unpublished, like every segmented
    # tier's magnitude). None: an incident kind reports the family.
    segment_magnitude_range: tuple[float, float] | None = None

    @property
    def name(self) -> str:
        return self.public.name

    @property
    def entity_type(self) -> EntityType:
        return self.public.entity_type

    @property
    def description(self) -> str:
        """The family's published definition (families.py): one text for the brief and the injector."""
        return self.public.definition

    @property
    def magnitude_bounds(self) -> tuple[float, float]:
        lows, highs = zip(*self.magnitude_ranges.values(), strict=True)
        return min(lows), max(highs)

    def draw_magnitude(self, difficulty: str, rng: np.random.Generator) -> float:
        low, high = self.magnitude_ranges[difficulty]
        return float(rng.uniform(low, high))

    @abstractmethod
    def inject(
        self, plan: FunnelPlan, day: int, entity_name: str, magnitude: float, rng: np.random.Generator, difficulty: str
    ) -> InjectionRecord:
        """Edit the plan; `difficulty` is the episode's (a family's shape may depend on it, as its ranges do)."""

    def spec(self) -> dict:
        low, high = self.magnitude_bounds
        return {
            "family": self.name,
            "entity_type": self.entity_type,
            "entity_names": list(self.entity_names),
            "description": self.description,
            "detection_methods": list(self.public.detection_methods),
            "magnitude": {
                "meaning": self.magnitude_meaning,
                "min": low,
                "max": high,
                "by_difficulty": {d: list(self.magnitude_ranges[d]) for d in AGGREGATE_DIFFICULTIES},
            },
        }


class FamilyRegistry(Registry[AnomalyFamily]):
    """The injectors of the families a catalog publishes, by name, in registration order. The generator's entry and
    the grader take one as an argument (FAMILY_REGISTRY by default), so a scratch registry can hold other families."""

    def __init__(self, published: FamilyCatalog = PUBLISHED_FAMILIES) -> None:
        super().__init__("anomaly family", check=self._check_published)
        self.published = published

    def _check_published(self, family: AnomalyFamily) -> None:
        if family.name not in self.published or self.published[family.name] != family.public:
            raise ValueError(f"{family.name!r} is not a published anomaly type (metric_tracker_rl/catalog/families.py)")
        if set(family.magnitude_ranges) != set(AGGREGATE_DIFFICULTIES):
            raise ValueError(f"{family.name!r} needs a magnitude range for each of {AGGREGATE_DIFFICULTIES}")

    def mixed_order(self) -> tuple[str, ...]:
        """The families a mixed episode draws from, in publication order."""
        return tuple(name for name in self.published.names if name in self)


FAMILY_REGISTRY = FamilyRegistry()


def register_family(family: AnomalyFamily, registry: FamilyRegistry = FAMILY_REGISTRY) -> AnomalyFamily:
    return registry.register(family)


# --- side-effect helpers: which other keys an edit to the plan moves mechanically ------------------


def step_index(step_name: str) -> int:
    return FUNNEL_STEPS.index(step_name)


def rates_through_step(step: int) -> set[EntityKey]:
    """Conversion rates whose numerator is past the step and whose denominator is before it."""
    return {
        ("conversion_rate", m.name)
        for m in CONVERSION_METRICS
        if COUNT_COLUMNS.index(m.denominator) <= step < COUNT_COLUMNS.index(m.numerator)
    }


def rates_touching(column: str) -> set[EntityKey]:
    return {("conversion_rate", m.name) for m in CONVERSION_METRICS if column in (m.numerator, m.denominator)}


def counts_from(first_event: int) -> set[EntityKey]:
    return {("event_count", c) for c in COUNT_COLUMNS[first_event:]}


def hourly_mix_from(first_event: int) -> set[EntityKey]:
    return {("hourly_mix", c) for c in COUNT_COLUMNS[first_event:]}


def draw_window(rng: np.random.Generator, length: int, earliest: int = 8, latest_end: int = 23) -> tuple[int, int]:
    length = int(min(max(length, 1), latest_end - earliest))
    start = int(rng.integers(earliest, latest_end - length + 1))
    return start, start + length


def full_day() -> tuple[int, int]:
    return 0, HOURS
