"""The published side of every anomaly family: what the tools, the agents and the wire types may know of it.

A family is its injector (`metric_tracker_rl/generation/anomalies/<name>.py`, behind the truth wall) plus the entry
here: its name, the entity type its root cause is reported on, its definition (what the incident does to the data: the
brief publishes it, and every incident kind reported as the family fits it and no other family's), the generator tool
that lists its candidates, the other tools whose evidence the grader accepts for it, and its flags. The catalog's family
tables (`ANOMALY_TYPES`, `FAMILY_ENTITY_TYPE`, `ACCEPTED_DETECTION_METHODS`, ...) are derived from
`PUBLISHED_FAMILIES`; nothing here knows how an incident is made, so both sides of the wall import it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

# The kinds of entity a report row may name (its entity_type): a family's root cause is on one of them.
EntityType = Literal["conversion_rate", "event_count", "funnel_step", "hourly_mix", "data_quality"]

# Scans over every count and rate whose rows may show any of the four deviation families.
DEVIATION_SCANS: tuple[str, ...] = (
    "get_median_filter_rows",
    "get_rows_with_abs_diff_from_median_gt",
    "get_metric_std_dev_from_median",
)
# A segment's daily count or rate against its baseline (frontier): it shows every family a daily value reveals.
SEGMENT_BREAKDOWN = "compare_segments"


@dataclass(frozen=True)
class FamilyDescription:
    """One family's public facts. `direction` is the sign of the move a directional scan types as this family
    (0: the family has its own signature, not a direction); `shiftable`: a timing shift may fall on its date
    without hiding its evidence (which does not depend on the hour-of-day shape)."""

    name: str
    entity_type: EntityType
    definition: str  # what the incident does to the data, as the brief publishes it
    generator: str  # the family's own generator tool: the canonical detection method of its expected rows
    confirmations: tuple[str, ...]  # other tools whose rows show it (accepted as its detection method)
    direction: int = 0
    shiftable: bool = False

    @property
    def detection_methods(self) -> tuple[str, ...]:
        """The tools whose rows show the family, in publication order: any one earns the detection-method credit."""
        return (self.generator, *self.confirmations)

    @cached_property  # read for every graded row
    def accepted_methods(self) -> frozenset[str]:
        return frozenset(self.detection_methods)


@dataclass(frozen=True)
class FamilyCatalog:
    """Published families in publication order (the order of the wire type's enum and of a mixed episode's draw)."""

    families: tuple[FamilyDescription, ...]
    _by_name: dict[str, FamilyDescription] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name = {family.name: family for family in self.families}
        if len(by_name) != len(self.families):
            raise ValueError(f"a family name is published twice: {[f.name for f in self.families]}")
        object.__setattr__(self, "_by_name", by_name)

    def __getitem__(self, name: str) -> FamilyDescription:
        return self._by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[FamilyDescription]:
        return iter(self.families)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    def entity_types(self) -> dict[str, EntityType]:
        return {family.name: family.entity_type for family in self.families}

    def accepted_detection_methods(self) -> dict[str, frozenset[str]]:
        return {family.name: family.accepted_methods for family in self.families}

    def generators(self) -> tuple[str, ...]:
        return tuple(family.generator for family in self.families)

    def directional(self) -> dict[tuple[str, int], str]:
        """(entity type, sign of the move) -> the family a directional scan names for it."""
        return {(family.entity_type, family.direction): family.name for family in self.families if family.direction}

    def shiftable(self) -> tuple[str, ...]:
        return tuple(family.name for family in self.families if family.shiftable)


PUBLISHED_FAMILIES = FamilyCatalog(
    (
        FamilyDescription(
            "rate_drop_from_median",
            "conversion_rate",
            "One funnel step converts worse all day (a price rise, a slow page, a broken release), on one "
            "date or on several in a row; the counts after it fall with it, and end-to-end rates through "
            "it move as side effects.",
            "get_rate_drop_from_median_rows",
            ("compare_rate_to_median", SEGMENT_BREAKDOWN, *DEVIATION_SCANS),
            direction=-1,
            shiftable=True,
        ),
        FamilyDescription(
            "rate_spike_from_median",
            "conversion_rate",
            "One funnel step converts better all day (a promotion, an auto-add bug); the counts after it "
            "rise with it, and end-to-end rates through it move as side effects.",
            "get_rate_spike_from_median_rows",
            ("compare_rate_to_median", SEGMENT_BREAKDOWN, *DEVIATION_SCANS),
            direction=1,
            shiftable=True,
        ),
        FamilyDescription(
            "absolute_drop_in_event_count",
            "event_count",
            "Fewer people open the app, all day or during an outage of a few hours in which the traffic "
            "collapses; those who come convert as usual, so every count falls together and no rate moves.",
            "get_absolute_drop_in_event_count_rows",
            ("compare_count_to_median", SEGMENT_BREAKDOWN, *DEVIATION_SCANS),
            direction=-1,
            shiftable=True,
        ),
        FamilyDescription(
            "absolute_spike_in_event_count",
            "event_count",
            "Extra real users arrive unannounced (all day or in a burst of hours) and convert as usual, so "
            "every count rises together and no rate moves.",
            "get_absolute_spike_in_event_count_rows",
            ("compare_count_to_median", SEGMENT_BREAKDOWN, *DEVIATION_SCANS),
            direction=1,
            shiftable=True,
        ),
        FamilyDescription(
            "funnel_break",
            "funnel_step",
            "One step almost stops converting for a block of hours while the steps before it arrive as "
            "usual (with segments the payment step: payments failing; on one funnel any step); the step's "
            "daily rate falls as a side effect.",
            "get_funnel_break_rows",
            ("detect_funnel_break", "hourly_rows_for_date", SEGMENT_BREAKDOWN),
            shiftable=True,
        ),
        FamilyDescription(
            "hourly_traffic_mix_shift",
            "hourly_mix",
            "Non-converting app opens (bots, a scraper) arrive in a block of hours and never reach the "
            "menu: the hour-of-day mix of app opens shifts; the app-open count and every rate out of app "
            "opens move as side effects, the later counts do not.",
            "get_hourly_traffic_mix_shift_rows",
            ("compare_hourly_mix_to_baseline", "hourly_rows_for_date"),
        ),
        FamilyDescription(
            "instrumentation_data_quality_issue",
            "data_quality",
            "A client logs one event more than once from some hour of the day on, so its count exceeds the "
            "step before it (impossible in a real funnel); only that count and the rates and steps touching "
            "it move.",
            "get_instrumentation_data_quality_issue_rows",
            # check_impossible_counts confirms the duplicates; compare_count_to_median gives the row's values.
            ("check_impossible_counts", "compare_count_to_median", SEGMENT_BREAKDOWN),
        ),
    )
)
