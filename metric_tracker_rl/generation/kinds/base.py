"""What an incident kind and a benign kind are, what they place, and the registries that hold each sort by name.

A kind is a mechanism applied to a segment's plan (segment_plan.SegmentWorld). An incident kind is reported as one
published family on one of its root-cause entities; its records are made by `record` or by the family's own
injector, so the family and entity type always come from the kind's declaration. A benign kind changes a segment
in a way no family describes. Every kind has a default magnitude range, which a tier scales (tiers.py); a scaled
range stays within the kind's `magnitude_bounds`. Behind the truth wall: the tools never import this package.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from metric_tracker_rl.catalog.families import PUBLISHED_FAMILIES, EntityType
from metric_tracker_rl.catalog.published import ENTITY_NAMES, FUNNEL_STEPS
from metric_tracker_rl.catalog.registry import Registry
from metric_tracker_rl.generation.anomalies import InjectionRecord
from metric_tracker_rl.generation.anomalies.base import EntityKey, counts_from, full_day, rates_through_step, step_index
from metric_tracker_rl.generation.kinds.cuboid import MAX_FALL, own_z, scale_factor
from metric_tracker_rl.generation.kinds.observed import observed_run
from metric_tracker_rl.generation.segment_plan import SegmentWorld
from metric_tracker_rl.world.context import ContextRow, Experiment
from metric_tracker_rl.world.segments import Segment

OPENS = -1  # own_z's event for a count of app opens
# Where every incident must be clear (world.only_clear), a store's feature, found on one or two dates with no longer
# run to pool, is drawn this much clearer than the world's own-z floor: a lone date is read against the spread of the
# segment's other dates around their few weekday peers, wider than the noise model's.
SHORT_RUN_CLEAR = 1.25


@dataclass(frozen=True)
class SegmentIncident:
    """One injected date of a segment incident (an incident over several dates has one per date)."""

    kind: str
    record: InjectionRecord
    segment: Segment
    context: tuple[ContextRow, ...] = ()  # the public context rows it brings (deep), e.g. a partner notice


@dataclass(frozen=True)
class SegmentFluctuation:
    """A benign, unannotated change confined to a segment; `keeps_conversion` says every cell's own conversion
    is untouched."""

    kind: str
    day: int
    segment: Segment
    description: str
    keeps_conversion: bool = True
    context: tuple[ContextRow, ...] = ()  # the public context rows it brings (deep), e.g. a campaign


class _Kind(ABC):
    """What incident and benign kinds share: a name, a public description and a magnitude range."""

    name: str
    description: str  # public: its signature, as the documentation's table of kinds shows it
    segment_meaning: str  # public: which segment it is confined to
    magnitude_meaning: str
    magnitude_range: tuple[float, float]  # at magnitude scale 1 (the kind's default)
    magnitude_bounds: tuple[float, float]  # what the mechanism accepts: a scaled range is clipped to it
    needs_context = False  # it writes context tables: only a tier with context draws it (tiers.SegmentedMix)

    def magnitude_range_at(self, scale: float) -> tuple[float, float]:
        """The range a tier with this magnitude scale draws from (the default range at scale 1)."""
        low, high = self.magnitude_bounds
        return (
            min(max(self.magnitude_range[0] * scale, low), high),
            min(max(self.magnitude_range[1] * scale, low), high),
        )

    def draw_magnitude(self, world: SegmentWorld, rng: np.random.Generator) -> float:
        return float(rng.uniform(*self.magnitude_range_at(world.magnitude_scale)))


class IncidentKind(_Kind):
    """An incident confined to a segment, reported as `family` on one of `entity_names`."""

    family: str
    entity_names: tuple[str, ...]  # the root-cause entities it is reported on
    definition: str  # public, one line: what it does to its segment (the brief's incident_kinds)
    # Public: it may move a segment's counts together all day (a count family's incident without a block of hours),
    # as a benign demand swing does.
    count_all_day = False
    # Fields its segment always names: a cuboid episode whose dimensions leave one out does not draw the kind.
    requires_fields: tuple[str, ...] = ()
    # Placed after the episode's other incidents, reading SegmentWorld.busy_entities: a kind whose dates are not
    # the calendar's (weeks long) keeps its rows' keys clear of theirs that way.
    deferred = False

    @property
    def entity_type(self) -> EntityType:
        return PUBLISHED_FAMILIES[self.family].entity_type

    @abstractmethod
    def place(self, world: SegmentWorld, stream: str, rng: np.random.Generator) -> list[SegmentIncident]:
        """Take dates from the calendar and edit the plan; [] when the calendar has no room. `stream` names the
        random stream of the per-cell injections (derived per date)."""

    def record(
        self,
        day: int,
        entity_name: str,
        magnitude: float,
        hours: tuple[int, int],
        description: str,
        neutral: set[EntityKey],
    ) -> InjectionRecord:
        """The truth record of a date this kind's own mechanism (not a family's injector) perturbed."""
        return InjectionRecord(
            self.family, day, self.entity_type, entity_name, magnitude, hours, description, frozenset(neutral)
        )

    def incident(self, record: InjectionRecord, segment: Segment) -> SegmentIncident:
        if record.family != self.family:
            raise ValueError(f"kind {self.name!r} is reported as {self.family!r}, not {record.family!r}")
        return SegmentIncident(self.name, record, segment)

    def run_incident(self, record: InjectionRecord, segment: Segment, days: Sequence[int]) -> SegmentIncident:
        """The incident of one date of a run over `days`: a date after the first continues it."""
        continues = days[0] if record.day != days[0] else None
        return self.incident(replace(record, continues=continues), segment)

    def over_dates(
        self,
        world: SegmentWorld,
        segment: Segment,
        days: list[int],
        entity: str,
        magnitude: float,
        stream: str,
        describe: str | None = None,
    ) -> list[SegmentIncident]:
        """The family's injector on the segment's cells on each of `days`, one incident date each: a date after the
        first continues it. `describe` prefixes every date's description."""
        out = []
        for day in days:
            record = world.inject_family(segment, self.family, day, entity, magnitude, stream)
            if describe is not None:
                record = replace(record, description=f"{describe}: {record.description}")
            out.append(self.run_incident(record, segment, days))
        return out

    def largest_fall(self, world: SegmentWorld) -> float:
        """The most a small cuboid's step fall is raised to, to be clear in its own data (cuboid.MAX_FALL at
        magnitude scale 1), never below the kind's drawn range nor past its bounds."""
        high = self.magnitude_range_at(world.magnitude_scale)[1]
        return min(max(MAX_FALL * world.magnitude_scale, high), self.magnitude_bounds[1])

    def clear_at(
        self,
        world: SegmentWorld,
        segment: Segment,
        days: Sequence[int],
        step: int,
        largest: float,
        clearer: float = 1.0,
    ) -> bool:
        """Whether a change of `step`'s conversion (-1: of the opens) in `segment` on each of `days` is clear in its
        own data at `largest` (the most the kind raises it to), at the world's own-z floor (`clearer` times it):
        always true where the world places unclear changes too (world.only_clear is off)."""
        if not world.only_clear:
            return True
        dates = list(days)
        return own_z(world, world.plan.leaf_reach(dates), segment, dates, step, largest) >= world.own_z[0] * clearer

    def clear_in_segment(
        self, world: SegmentWorld, segment: Segment, days: Sequence[int], step: int, magnitude: float, largest: float
    ) -> float:
        """A drawn change of `step`'s conversion in a segment of fixed fields, raised to be clear in the segment's
        own data on each of `days` (the tier's own-z floor) or lowered to stand out no more than its ceiling, as a
        cuboid root cause's is (cuboid.scale_factor); never past `largest`."""
        dates = list(days)
        z = own_z(world, world.plan.leaf_reach(dates), segment, dates, step, magnitude)
        return min(magnitude * scale_factor(z, world, self.magnitude_bounds[0] / magnitude), largest)

    def step_drop_over_dates(
        self,
        world: SegmentWorld,
        segment: Segment,
        days: list[int],
        entity: str,
        magnitudes: list[float],
        describe: str | None = None,
    ) -> list[SegmentIncident]:
        """A funnel step (the entity) falls by each date's magnitude in the segment, all day: a segment of any
        fields, through SegmentWorld.scale_step. One row per date, a date after the first continuing it."""
        step = step_index(entity)
        neutral = (rates_through_step(step) | counts_from(step + 1)) - {(self.entity_type, entity)}
        out = []
        for day, magnitude in zip(days, magnitudes, strict=True):
            world.scale_step(segment, day, step, 1.0 - magnitude)
            what = f"{entity} falls by {magnitude:.0%} for the whole day in {segment.label()}"
            record = self.record(
                day, entity, magnitude, full_day(), what if describe is None else f"{describe}: {what}", neutral
            )
            out.append(self.run_incident(record, segment, days))
        return out

    def opens_lost_over_dates(
        self, world: SegmentWorld, segment: Segment, days: Sequence[int], loss: float, what: str
    ) -> list[SegmentIncident]:
        """A share `loss` of the segment's arrivals lost all day on each of `days`, those who still come converting
        as usual: one row per date of the kind's first entity (a count of opens), recorded as `what`, a date after
        the first continuing it."""
        out = []
        for day in days:
            world.scale_traffic(segment, day, 1.0 - loss)
            record = self.record(day, self.entity_names[0], loss, full_day(), what, counts_from(1))
            out.append(self.run_incident(record, segment, days))
        return out

    def channel_stop(
        self,
        world: SegmentWorld,
        rng: np.random.Generator,
        lengths: tuple[int, int],
        segments: Sequence[Segment],
        least_opens: float,
        cause: str,
    ) -> list[SegmentIncident]:
        """A run of dates (of a drawn length) on which a drawn share of one of `segments`' opens stops, the segment
        drawn among those whose sample expects at least `least_opens` opens each date (observed.observed_run);
        `cause` says why in the record. [] where no segment or run fits."""
        run = observed_run(world, rng, lengths, segments, 0, least_opens)
        if run is None:
            return []
        days, segment = run
        drop = self.draw_magnitude(world, rng)
        what = f"{segment.label()} loses {drop:.0%} of its app opens all day ({cause}); conversion is unchanged"
        return self.opens_lost_over_dates(world, segment, days, drop, what)


class BenignKind(_Kind):
    """A benign change confined to a segment, unannotated: an incident it is not."""

    keeps_conversion: bool = True  # every cell's own conversion over the day is unchanged

    def apply(self, world: SegmentWorld, day: int, rng: np.random.Generator) -> tuple[Segment, str]:
        """Edit the plan on `day`; the segment it changed and a description of the change. A kind whose change
        spans several dates overrides `place` instead."""
        raise NotImplementedError(f"{self.name} places itself (see its place)")

    def place(self, world: SegmentWorld, rng: np.random.Generator) -> SegmentFluctuation | None:
        """Take one date from the calendar and apply the change on it; None when the calendar has no room."""
        day = world.calendar.draw(rng)
        if day is None:
            return None
        segment, description = self.apply(world, day, rng)
        return SegmentFluctuation(self.name, day, segment, description, self.keeps_conversion)


def date_entities(
    incidents: Sequence[SegmentIncident], day: int, iso_dates: tuple[str, ...], context: Sequence[ContextRow] = ()
) -> set[str]:
    """The entities a second incident on `day` must not take: those the date's incidents report, the rates they
    move as a side effect (a second incident's numbers there would carry the first's), an experiment's target step
    on its dates (its intended effect there would read as the second's own; `context`: rows placed besides the
    incidents'), and the steps up to a break's (its hours are read by the arrivals at its step: a fall before it
    would thin them out)."""
    same_day = [i.record for i in incidents if i.record.day == day]
    taken = {r.entity_name for r in same_day} | {
        name for r in same_day for kind, name in r.neutral if kind == "conversion_rate"
    }
    date = iso_dates[day]
    taken |= {
        row.target_step
        for row in [*(row for i in incidents for row in i.context), *context]
        if isinstance(row, Experiment) and row.start_date <= date <= row.end_date
    }
    taken |= {
        step for r in same_day if r.family == "funnel_break" for step in FUNNEL_STEPS[: step_index(r.entity_name) + 1]
    }
    return taken


def check_kind(kind: _Kind) -> None:
    """What a kind must hold to be registered: a magnitude range within its bounds and, for an incident kind, a
    published family to be reported as (the registries below run it on every kind they take)."""
    low, high = kind.magnitude_bounds
    if not low <= kind.magnitude_range[0] <= kind.magnitude_range[1] <= high:
        raise ValueError(
            f"{kind.name!r}: magnitude range {kind.magnitude_range} must lie within its bounds {kind.magnitude_bounds}"
        )
    if isinstance(kind, IncidentKind):
        _check_reporting(kind)


def _check_reporting(kind: IncidentKind) -> None:
    """An incident kind is reported as a published family, on entities of that family's entity type."""
    if kind.family not in PUBLISHED_FAMILIES:
        raise ValueError(f"{kind.name!r} is reported as {kind.family!r}, not a published family")
    if not getattr(kind, "definition", ""):
        raise ValueError(f"{kind.name!r} needs a public definition (the brief's incident_kinds show it)")
    unknown = set(kind.entity_names) - set(ENTITY_NAMES[kind.entity_type])
    if not kind.entity_names or unknown:
        raise ValueError(f"{kind.name!r} needs root-cause entities of {kind.entity_type}; unknown: {sorted(unknown)}")


# Kinds by name, in registration order; a tier names the ones it draws, so the order changes no episode.
INCIDENT_KIND_REGISTRY: Registry[IncidentKind] = Registry("incident kind", check=check_kind)
BENIGN_KIND_REGISTRY: Registry[BenignKind] = Registry("benign kind", check=check_kind)


def register_incident_kind(
    kind: IncidentKind, registry: Registry[IncidentKind] = INCIDENT_KIND_REGISTRY
) -> IncidentKind:
    return registry.register(kind)


def register_benign_kind(kind: BenignKind, registry: Registry[BenignKind] = BENIGN_KIND_REGISTRY) -> BenignKind:
    return registry.register(kind)
