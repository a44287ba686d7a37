"""What incident kinds edit in a segmented tier: the expected values of every traffic cell (and how they are drawn
before any incident), the calendar of dates still open to a perturbation, and the world a kind's mechanism acts on
(behind the truth wall: tools never import it)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from metric_tracker_rl.catalog.seeding import EpisodeKey, derive_rng
from metric_tracker_rl.catalog.tiers import CLEAR_OWN_Z
from metric_tracker_rl.generation.anomalies import FAMILY_REGISTRY, InjectionRecord
from metric_tracker_rl.world.daily_panel import same_weekday_peer_lists
from metric_tracker_rl.world.funnel import (
    HOURS,
    N_EVENTS,
    N_STEPS,
    WEEKEND_HOUR_SHARE,
    FunnelPlan,
    baseline_plan,
    window_calendar,
)
from metric_tracker_rl.world.segments import (
    MOBILE_PLATFORMS,
    CellLayout,
    LeafSplit,
    Release,
    Segment,
    World,
    holiday_days,
)
from metric_tracker_rl.world.traffic_split import (
    HOLIDAY_TRAFFIC_FACTOR,
    LEAF_RATE_SIGMA,
    LEAF_SHARE_SIGMA,
    SEGMENT_DAY_SIGMA,
    SEGMENT_RATE_SIGMA,
    cell_layout,
    cell_mix,
    version_labels,
    version_shares,
)

T = TypeVar("T")

MAX_STEP_RATE = 0.995  # the cap segmented_plan puts on every step rate
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
    # factor on the cell's expected reach of every event, (S, K, D, 5) (1 for opens). A kind edits them only through
    # SegmentWorld.scale_step and scale_traffic, which keep them consistent with the cells.
    split: LeafSplit | None = None
    leaf_shares: np.ndarray | None = None
    leaf_reach_factors: np.ndarray | None = None

    @property
    def num_days(self) -> int:
        return self.traffic.shape[1]

    def cell_plan(self, cell: int) -> FunnelPlan:
        """A FunnelPlan whose arrays are views of one cell: an injector's edits land in this plan."""
        return _CellPlan(
            dates=list(window_calendar(self.num_days).dates),
            traffic=self.traffic[cell],
            step_rates=self.step_rates[cell],
            extra_opens=self.extra_opens[cell],
            duplicate_factor=self.duplicate_factor[cell],
            hour_shift=self.hour_shift[cell],
            ingested_fraction=self.ingested_fraction[cell],
        )

    def cells(self, segment: Segment) -> np.ndarray:
        """The positions of the segment's cells."""
        return np.flatnonzero(self.layout.mask(segment))

    def leaf_reach(self, days: Sequence[int] | None = None) -> np.ndarray:
        """(S, K, D, 5) each leaf's expected daily reach of every event: its share times its reach factors times
        its cell's daily reach (what split_leaves divides each cell's drawn counts by). With `days`, only those
        dates are computed and every other one is zero (a kind reads the dates of the incident it places)."""
        assert self.leaf_shares is not None and self.leaf_reach_factors is not None, "this plan has no leaves"
        at = slice(None) if days is None else list(days)
        # Hours first, so that each day's sum runs over the hours in order (the sum this method has always made).
        reach = np.ascontiguousarray(self.traffic[:, at].transpose(2, 0, 1))  # (24, S, d): opens reaching the event
        rates = self.step_rates[:, at].transpose(2, 0, 1, 3)
        daily = np.empty((*reach.shape[1:], N_EVENTS))  # (S, d, 5)
        daily[..., 0] = reach.sum(axis=0)
        for step in range(N_STEPS):
            reach *= rates[..., step]
            daily[..., step + 1] = reach.sum(axis=0)
        leaves = self.leaf_shares[:, :, at, None] * self.leaf_reach_factors[:, :, at] * daily[:, None]
        if days is None:
            return leaves
        full = np.zeros((*self.leaf_shares.shape, N_EVENTS))
        full[:, :, at] = leaves
        return full


class Calendar:
    """Which dates may still take a perturbation: not the last date, not a holiday, not taken, and at most
    `per_weekday` perturbed dates on a weekday (so a same-weekday median over its peers stays clean)."""

    def __init__(self, num_days: int, per_weekday: int) -> None:
        self.num_days = num_days
        self.per_weekday_limit = per_weekday
        self.taken: set[int] = set(holiday_days(num_days))
        self.per_weekday = [0] * 7

    def free(self, day: int) -> bool:
        return (
            0 <= day < self.num_days - 1
            and day not in self.taken
            and self.per_weekday[day % 7] < self.per_weekday_limit
        )

    def take(self, day: int) -> None:
        self.taken.add(day)
        self.per_weekday[day % 7] += 1

    def hold(self, days: Sequence[int]) -> None:
        """Keep dates from every later draw without counting them against their weekday's limit: a persistent
        incident's weeks, whose baseline is read from before them rather than from their same-weekday peers."""
        self.taken.update(days)

    def draw(self, rng: np.random.Generator, length: int = 1) -> int | None:
        """A first date of `length` free consecutive dates, drawn uniformly (None when none is left)."""
        free = [self.free(day) for day in range(self.num_days + length)]
        starts = [d for d in range(self.num_days) if all(free[d : d + length])]
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


def drawn_order(names: Sequence[str], rng: np.random.Generator, weights: Mapping[str, float] | None) -> list[str]:
    """`names` in a drawn order: a plain shuffle (one permutation, as every tier drew before weights), or each next
    name drawn among those left in proportion to its weight (the audit's version 2: catalog/audit_weights.py)."""
    if weights is None:
        return [str(name) for name in rng.permutation(list(names))]
    chances = np.array([weights[name] for name in names], dtype=float)
    return [names[int(i)] for i in rng.choice(len(names), size=len(names), replace=False, p=chances / chances.sum())]


@dataclass(frozen=True)
class CuboidDial:
    """How a tier whose root causes are cuboids (tiers.SegmentedMix.cuboid_root_causes: deep) shapes them, as the
    episode's reset sets its dial: the fields a cuboid may name (the reset's `dimensions`) and the most dimensions
    it names, and the fewest its depth is drawn from (the tier's; a shallower one where none that deep is clear)."""

    fields: tuple[str, ...]
    max_depth: int
    min_depth: int = 1

    @property
    def versions_in_play(self) -> bool:
        """Whether a root cause may name an app version (else a release's platform stands for its version)."""
        return "app_version" in self.fields


@dataclass
class SegmentWorld:
    """What a kind's mechanism acts on: the plan, the calendar, the episode's key (for the per-cell injection
    streams), and what the tier sets for its kinds: its name (a family's injector draws its shape by it), the
    magnitude scale, the cuboid dial and the share of partner failures with a notice."""

    plan: SegmentedPlan
    calendar: Calendar
    key: EpisodeKey
    tier: str
    magnitude_scale: float
    # Root causes as cuboids (deep); None: the tier keeps every kind on its own fixed segments (frontier).
    cuboids: CuboidDial | None = None
    note_share: float = 0.0  # the share of partner payment failures with a notice (a tier with context tables)
    # The share of experiments whose intended effect, drawn either way, is made a fall (tiers.SegmentedMix).
    falling_effect_share: float = 0.0
    # The expected z-score a cuboid incident is drawn at in its own data: floor and ceiling (tiers.SegmentedMix).
    own_z: tuple[float, float] = CLEAR_OWN_Z
    # The share of the world's traffic the episode's data holds (tiers.SegmentedMix.observed_share): the z-scores
    # a kind sizes its incident by are those of what is observed.
    observed_share: float = 1.0
    # Where no cuboid a kind drew is clear: raise one clear at the kind's largest change (tiers.SegmentedMix).
    raise_unclear: bool = False
    # Whether an incident is placed only where it is clear in its own data (tiers.SegmentedMix).
    only_clear: bool = False
    leaf_masks: dict[Segment, np.ndarray] = field(default_factory=dict, repr=False, compare=False)
    # Per date, the entities the incidents placed so far report or move (their side effects, an experiment's target
    # step): what a deferred kind (kinds.base.IncidentKind.deferred) keeps its rows clear of.
    busy_entities: dict[int, set[str]] = field(default_factory=dict, repr=False, compare=False)

    def one_dimension(self, rng: np.random.Generator, order: tuple[str, ...] = ("platform", "country")) -> Segment:
        """One value of each dimension in `order` (drawn in that order), then one of those segments."""
        options = tuple(Segment(**{name: pick(self.plan.layout.values_of(name), rng)}) for name in order)
        return pick(options, rng)

    def inject_family(
        self, segment: Segment, family: str, day: int, entity: str, magnitude: float, stream: str
    ) -> InjectionRecord:
        """Run a family's injector on every cell of a segment, each from a fresh copy of one stream, so every cell
        gets the same hours and factors; the first cell's record stands for the segment."""
        records = [
            FAMILY_REGISTRY[family].inject(
                self.plan.cell_plan(int(cell)), day, entity, magnitude, derive_rng(self.key, stream, day), self.tier
            )
            for cell in self.plan.cells(segment)
        ]
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

    # --- leaf-aware edits: a segment of any of the five fields -------------------------------------------

    def scale_step(
        self, segment: Segment, day: int, step: int, factor: float, hours: tuple[int, int] | None = None
    ) -> None:
        """Funnel step `step` (0 menu .. 3 payment) of the segment's traffic on `day` converts `factor` times as
        well, in hours [start, end) or all day. A segment of cell fields only edits its cells' step rates (exactly
        what a cell-level injector does); a segment naming a daily-only field scales each of its cells' step rate
        by the affected leaves' share of that step's conversions, and re-weights the leaves so that the affected
        ones take the whole change and their siblings none (`_retarget_leaves`)."""
        if not 0 <= step < N_STEPS:
            raise ValueError(f"step must be 0..{N_STEPS - 1}, got {step}")
        cells, window, leaves = self._edit_target(segment, hours)
        if leaves is None:
            self.plan.step_rates[cells, day, window, step] *= factor
            return
        plan = self.plan
        assert plan.leaf_shares is not None and plan.leaf_reach_factors is not None
        reach = plan.leaf_shares[cells, :, day][..., None] * plan.leaf_reach_factors[cells, :, day]  # (n, K, 5)
        affected = reach[:, leaves, step + 1].sum(axis=1) / reach[:, :, step + 1].sum(axis=1)
        before = self.hourly_reach(cells, day)
        rates = plan.step_rates[cells, day, window, step]
        cell_factor = 1.0 - (1.0 - factor) * affected
        plan.step_rates[cells, day, window, step] = np.minimum(rates * cell_factor[:, None], MAX_STEP_RATE)
        self._retarget_leaves(cells, day, window, leaves, factor, before, first_event=step + 1)

    def scale_traffic(self, segment: Segment, day: int, factor: float, hours: tuple[int, int] | None = None) -> None:
        """The segment's app opens on `day` (and so every event below them) scale by `factor`, in hours
        [start, end) or all day. A segment of cell fields only scales its cells' traffic; one naming a daily-only
        field scales each cell's traffic by the affected leaves' share of its opens and re-weights the leaves so
        that only the affected ones change (`_retarget_leaves`)."""
        cells, window, leaves = self._edit_target(segment, hours)
        if leaves is None:
            self.plan.traffic[cells, day, window] *= factor
            return
        plan = self.plan
        assert plan.leaf_shares is not None
        affected = plan.leaf_shares[cells][:, leaves, day].sum(axis=1)
        before = self.hourly_reach(cells, day)
        plan.traffic[cells, day, window] *= (1.0 - (1.0 - factor) * affected)[:, None]
        self._retarget_leaves(cells, day, window, leaves, factor, before, first_event=0)

    def _edit_target(
        self, segment: Segment, hours: tuple[int, int] | None
    ) -> tuple[np.ndarray, slice, np.ndarray | None]:
        """The segment's cells, the hours as a slice, and its leaves (None: it names no daily-only field)."""
        window = slice(None) if hours is None else slice(*hours)
        cells = self.plan.cells(segment.cell_part())
        if not segment.names_daily_field:
            return cells, window, None
        if self.plan.split is None:
            raise ValueError(f"{segment.label()}: this world has no daily-only dimension")
        leaves = self.plan.split.mask(segment)
        if not leaves.any():
            raise ValueError(f"no leaf matches {segment.label()}")
        return cells, window, leaves

    def hourly_reach(self, cells: np.ndarray, day: int) -> np.ndarray:
        """(n, 24, 5) each cell's expected opens reaching every event, hour by hour (before the leaves' mix)."""
        plan = self.plan
        reach = np.empty((len(cells), plan.traffic.shape[2], N_EVENTS))
        reach[..., 0] = plan.traffic[cells, day]
        rates = plan.step_rates[cells, day]  # (n, 24, 4)
        for step in range(N_STEPS):
            reach[..., step + 1] = reach[..., step] * rates[..., step]
        return reach

    def _retarget_leaves(
        self,
        cells: np.ndarray,
        day: int,
        window: slice,
        leaves: np.ndarray,
        factor: float,
        before: np.ndarray,
        first_event: int,
    ) -> None:
        """After a cell edit, set the leaves' shares and reach factors so that each affected leaf's expected daily
        reach of every event from `first_event` on is its old one times the hour-weighted effect (1 - (1 - factor)
        x the share of the cell's reach of that event in the window) and every other leaf's is unchanged. A
        leaf's expected reach is share x factor x the cell's daily reach, and a cell's expected counts are its
        leaves' sum, so the cells follow."""
        plan = self.plan
        assert plan.leaf_shares is not None and plan.leaf_reach_factors is not None
        old_daily = before.sum(axis=1)  # (n, 5)
        new_daily = self.hourly_reach(cells, day).sum(axis=1)
        in_window = np.divide(
            before[:, window].sum(axis=1), old_daily, out=np.zeros_like(old_daily), where=old_daily > 0
        )
        effect = np.where(np.arange(N_EVENTS) >= first_event, 1.0 - (1.0 - factor) * in_window, 1.0)  # (n, 5)
        shares = plan.leaf_shares[cells, :, day]  # (n, K)
        target = shares[..., None] * plan.leaf_reach_factors[cells, :, day] * old_daily[:, None]  # (n, K, 5)
        target[:, leaves] *= effect[:, None]
        new_shares = np.divide(
            target[..., 0], new_daily[:, None, 0], out=shares.copy(), where=new_daily[:, None, 0] > 0
        )
        denominator = new_shares[..., None] * new_daily[:, None]
        plan.leaf_reach_factors[cells, :, day] = np.divide(
            target, denominator, out=plan.leaf_reach_factors[cells, :, day], where=denominator > 0
        )
        plan.leaf_shares[cells, :, day] = new_shares


# --- the plan before any incident: each cell's expected traffic and conversion, its leaves' -----------------

SEGMENTED_TREND = (-0.002, 0.006)  # extra daily growth of the whole funnel, drawn per episode
FIRST_RELEASE_DAYS = (4, 12)  # the first release of each mobile platform starts in this range
# The second starts three weeks or more after the first (each version carries its platform for three weeks, so a
# version-level baseline rests on real traffic) and leaves three weeks after its own start.
RELEASE_GAP, LAST_RELEASE_TAIL_DAYS = 21, 22


def draw_releases(key: EpisodeKey, num_days: int) -> tuple[int, tuple[Release, ...]]:
    """The version numbering and the release schedule of an episode (public once drawn)."""
    latest = num_days - LAST_RELEASE_TAIL_DAYS
    rng = derive_rng(key, "frontier-releases")
    base_minor = int(rng.integers(10, 40))
    labels = version_labels(base_minor)
    releases = []
    for platform in MOBILE_PLATFORMS:
        first = int(rng.integers(FIRST_RELEASE_DAYS[0], FIRST_RELEASE_DAYS[1] + 1))
        second = int(rng.integers(first + RELEASE_GAP, latest + 1))
        releases += [Release(platform, labels[1], first), Release(platform, labels[2], second)]
    return base_minor, tuple(releases)


def segmented_plan(key: EpisodeKey, num_days: int, world: World) -> SegmentedPlan:
    """The expected traffic and conversion of every cell, date and hour, before any incident or fluctuation, in a
    world of the tier's dimensions."""
    plan = baseline_plan(key, num_days)
    trend = derive_rng(key, "frontier-world").uniform(*SEGMENTED_TREND)
    aggregate = plan.traffic * (1.0 + trend * np.arange(num_days))[:, None]
    for day in holiday_days(num_days):
        aggregate[day] = aggregate[day].sum() * HOLIDAY_TRAFFIC_FACTOR * WEEKEND_HOUR_SHARE
    base_minor, releases = draw_releases(key, num_days)
    layout = cell_layout(base_minor, world.country.values)
    share, factors = cell_mix(layout, world.country)
    noise = np.empty((layout.size, num_days, 1 + N_STEPS))
    for cell, name in enumerate(zip(layout.platforms, layout.countries, layout.versions, strict=True)):
        noise[cell] = derive_rng(key, "segment/" + "/".join(name)).standard_normal((num_days, 1 + N_STEPS))
    cell_share = share[:, None] * version_shares(layout, releases, num_days) * np.exp(SEGMENT_DAY_SIGMA * noise[..., 0])
    traffic = cell_share[..., None] * aggregate[None]
    rate_factor = factors[:, None, :] * np.exp(SEGMENT_RATE_SIGMA * noise[..., 1:])  # (S, D, 4)
    step_rates = plan.step_rates[None] * rate_factor[:, :, None, :]
    np.minimum(step_rates, 0.995, out=step_rates)
    cells = layout.size
    segmented = SegmentedPlan(
        layout=layout,
        releases=releases,
        traffic=traffic,
        step_rates=step_rates,
        extra_opens=np.zeros((cells, num_days, HOURS)),
        duplicate_factor=np.ones((cells, num_days, HOURS, N_EVENTS)),
        hour_shift=np.zeros((cells, num_days), dtype=np.int64),
        ingested_fraction=np.ones((cells, num_days, HOURS)),
    )
    if world.daily:
        add_leaves(segmented, world.leaf_split, key)
    return segmented


def add_leaves(plan: SegmentedPlan, split: LeafSplit, key: EpisodeKey) -> None:
    """Each cell's leaves: a leaf's share of its cell's traffic is its dimensions' shares times its own day noise
    (renormalised, so a cell's traffic is what the kinds edit), and its step rates are its cell's times its
    dimensions' factors times its own noise. A leaf's expected reach of event e is its share times the product of
    its factors up to e times its cell's reach (so a leaf's conversion follows its cell's hour by hour)."""
    cells, days, leaves = plan.layout.size, plan.num_days, split.size
    noise = derive_rng(key, "segment-leaves").standard_normal((cells, leaves, days, 1 + N_STEPS))
    shares = split.shares()[None, :, None] * np.exp(LEAF_SHARE_SIGMA * noise[..., 0])
    shares /= shares.sum(axis=1, keepdims=True)
    rate_factors = split.rate_factors()[None, :, None, :] * np.exp(LEAF_RATE_SIGMA * noise[..., 1:])
    reach = np.ones((cells, leaves, days, N_EVENTS))
    reach[..., 1] = rate_factors[..., 0]
    for step in range(1, N_STEPS):  # a cumulative product (np.cumprod is slow along so short an axis)
        np.multiply(reach[..., step], rate_factors[..., step], out=reach[..., step + 1])
    plan.split, plan.leaf_shares, plan.leaf_reach_factors = split, shares, reach
