"""What incident kinds edit in a segmented tier: the expected values of every traffic cell, the calendar of dates
still open to a perturbation, and the world a kind's mechanism acts on (behind the truth wall: tools never import
it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from metric_tracker_rl.anomalies import FAMILY_REGISTRY, InjectionRecord
from metric_tracker_rl.funnel import FunnelPlan, window_calendar
from metric_tracker_rl.metrics import same_weekday_peer_lists
from metric_tracker_rl.seeding import EpisodeKey, derive_rng
from metric_tracker_rl.segments import CellLayout, LeafSplit, Release, Segment, holiday_days, version_shares

T = TypeVar("T")

MIN_VERSION_SHARE = 0.3  # a version-level incident needs this share of its platform on its date and peers


class _CellPlan(FunnelPlan):
    """A FunnelPlan over one cell's views: injectors edit it; its counts are drawn with every cell's, so it skips
    the stage means a FunnelPlan keeps for funnel.draw_counts."""

    def __post_init__(self) -> None:
        pass


@dataclass
class SegmentedPlan:
    """Expected values per cell (leading axis S), edited in place by injectors through `cell_plan` views."""

    layout: CellLayout
    releases: tuple[Release, ...]
    traffic: np.ndarray  # (S, D, 24)
    step_rates: np.ndarray  # (S, D, 24, 4)
    extra_opens: np.ndarray  # (S, D, 24)
    duplicate_factor: np.ndarray  # (S, D, 24, 5)
    hour_shift: np.ndarray  # (S, D)
    ingested_fraction: np.ndarray  # (S, D, 24)
    # At a tier with daily-only dimensions: how each cell's traffic splits into leaves, (S, K, D), and each leaf's
    # factor on the cell's expected reach of every event, (S, K, D, 5) (1 for opens). Kinds edit the cells only.
    split: LeafSplit | None = None
    leaf_shares: np.ndarray | None = None
    leaf_reach_factors: np.ndarray | None = None

    @property
    def num_days(self) -> int:
        return self.traffic.shape[1]

    def cell_plan(self, cell: int) -> FunnelPlan:
        """A FunnelPlan whose arrays are views of one cell: an injector's edits land in this plan."""
        return _CellPlan(dates=list(window_calendar(self.num_days).dates), traffic=self.traffic[cell],
                          step_rates=self.step_rates[cell], extra_opens=self.extra_opens[cell],
                          duplicate_factor=self.duplicate_factor[cell], hour_shift=self.hour_shift[cell],
                          ingested_fraction=self.ingested_fraction[cell])

    def cells(self, segment: Segment) -> np.ndarray:
        """The positions of the segment's cells."""
        return np.flatnonzero(self.layout.mask(segment))


class Calendar:
    """Which dates may still take a perturbation: not the last date, not a holiday, not taken, and at most
    `per_weekday` perturbed dates on a weekday (so a same-weekday median over its peers stays clean)."""

    def __init__(self, num_days: int, per_weekday: int) -> None:
        self.num_days = num_days
        self.per_weekday_limit = per_weekday
        self.taken: set[int] = set(holiday_days(num_days))
        self.per_weekday = [0] * 7

    def free(self, day: int) -> bool:
        return (0 <= day < self.num_days - 1 and day not in self.taken
                and self.per_weekday[day % 7] < self.per_weekday_limit)

    def take(self, day: int) -> None:
        self.taken.add(day)
        self.per_weekday[day % 7] += 1

    def draw(self, rng: np.random.Generator, length: int = 1) -> int | None:
        """A first date of `length` free consecutive dates, drawn uniformly (None when none is left)."""
        starts = [d for d in range(self.num_days) if all(self.free(d + i) for i in range(length))]
        if not starts:
            return None
        start = starts[int(rng.integers(len(starts)))]
        for i in range(length):
            self.take(start + i)
        return start

    def draw_run(self, rng: np.random.Generator, lengths: tuple[int, int]) -> list[int]:
        """Consecutive free dates, their number drawn from `lengths` (inclusive), taken; [] when none is left."""
        length = int(rng.integers(lengths[0], lengths[1] + 1))
        start = self.draw(rng, length)
        return [] if start is None else list(range(start, start + length))


def pick(options: Sequence[T], rng: np.random.Generator) -> T:
    """One option, drawn uniformly (one integer from the stream)."""
    return options[int(rng.integers(len(options)))]


@dataclass
class SegmentWorld:
    """What a kind's mechanism acts on: the plan, the calendar, the episode's key (for the per-cell injection
    streams), the tier whose magnitudes it draws and that tier's magnitude scale."""

    plan: SegmentedPlan
    calendar: Calendar
    key: EpisodeKey
    tier: str
    magnitude_scale: float

    def one_dimension(self, rng: np.random.Generator, order: tuple[str, ...] = ("platform", "country")) -> Segment:
        """One value of each dimension in `order` (drawn in that order), then one of those segments."""
        options = tuple(Segment(**{name: pick(self.plan.layout.values_of(name), rng)}) for name in order)
        return pick(options, rng)

    def inject_family(self, segment: Segment, family: str, day: int, entity: str, magnitude: float,
                      stream: str) -> InjectionRecord:
        """Run a family's injector on every cell of a segment, each from a fresh copy of one stream, so every cell
        gets the same hours and factors; the first cell's record stands for the segment."""
        records = [FAMILY_REGISTRY[family].inject(self.plan.cell_plan(int(cell)), day, entity, magnitude,
                                                  derive_rng(self.key, stream, day), self.tier)
                   for cell in self.plan.cells(segment)]
        return records[0]

    def live_version(self, platform: str, day: int) -> str | None:
        """The platform's version that carries the most traffic on the date and on its same-weekday peers alike, so
        that the segment's baseline rests on real traffic; None when no version does (the failure then hits every
        version of the platform)."""
        plan = self.plan
        shares = version_shares(plan.layout, plan.releases, plan.num_days)
        peers = list(same_weekday_peer_lists(plan.num_days)[day])

        def carried(version: str) -> float:
            row = shares[plan.layout.mask(Segment(platform, None, version))][0]
            return min(float(row[day]), float(np.median(row[peers])))

        best = max(plan.layout.platform_versions(platform), key=carried)
        return best if carried(best) >= MIN_VERSION_SHARE else None
