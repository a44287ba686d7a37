"""The `frontier` episode: a segmented world, incidents confined to a segment, and benign look-alikes.

Generation mirrors the aggregate tiers (plan, edit the plan, draw counts), per traffic cell:
1. `segmented_plan` splits the aggregate plan of funnel.baseline_plan (an eight-week window with a trend and a
   holiday calendar) into cells (platform, country, app version; see segments.py): each cell's traffic is its
   platform and country share times its version's rollout share times its own day noise, and its step rates are
   the aggregate's times its platform and country factors (times its own noise).
2. Incidents and benign fluctuations edit the plan of the cells of one segment (the existing injectors run on
   each cell's view of the plan, all from one stream, so every cell of the segment gets the same hours).
3. `draw_segmented_counts` draws every cell's counts in one vectorised Poisson call, then applies extra opens,
   duplicates, clock shifts and lost events per touched cell and date, each from its own named stream.

Every random stream is derived by name (seeding.derive_rng): the world from "frontier-world", each cell's noise
from "segment/<platform>/<country>/<version>", the counts from "segment-noise" and "segment-draw".

Ground truth comes from the injection records; each expected row names the incident's segment, and its values are
read back from that segment's final data with the published baseline rule (metrics.build_panel).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np

from metric_tracker_rl.anomalies import FAMILY_REGISTRY, InjectionRecord
from metric_tracker_rl.anomalies.base import counts_from, draw_window, hourly_mix_from
from metric_tracker_rl.catalog import FRONTIER_INCIDENT_KINDS, FRONTIER_WINDOW_DAYS
from metric_tracker_rl.funnel import (
    HOURS,
    N_EVENTS,
    N_STEPS,
    WEEKEND_HOUR_SHARE,
    FunnelPlan,
    baseline_plan,
    stage_means,
    window_calendar,
)
from metric_tracker_rl.metrics import same_weekday_peer_lists
from metric_tracker_rl.models import MetricSubmissionRow
from metric_tracker_rl.public import Annotation
from metric_tracker_rl.seeding import EpisodeKey, derive_rng
from metric_tracker_rl.segments import (
    HOLIDAY_TRAFFIC_FACTOR,
    MOBILE_PLATFORMS,
    ROLLOUT_STAGES,
    SEGMENT_FIELDS,
    CellLayout,
    Release,
    Segment,
    SegmentedData,
    cell_layout,
    cell_mix,
    holiday_days,
    version_labels,
    version_shares,
)
from metric_tracker_rl.tasks import EpisodeConfig

T = TypeVar("T")

FRONTIER_TREND = (-0.002, 0.006)  # extra daily growth of the whole funnel, drawn per episode
SEGMENT_DAY_SIGMA = 0.05  # log-normal noise of a cell's traffic per date
SEGMENT_RATE_SIGMA = 0.03  # log-normal noise of a cell's step rates per date
FIRST_RELEASE_DAYS = (4, 12)  # the first release of each mobile platform starts in this range
# The second starts three weeks or more after the first (each version carries its platform for three weeks, so a
# version-level baseline rests on real traffic) and leaves three weeks after its own start.
RELEASE_GAP, RELEASE_LATEST = 21, FRONTIER_WINDOW_DAYS - 22


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

    @property
    def num_days(self) -> int:
        return self.traffic.shape[1]

    def cell_plan(self, cell: int) -> FunnelPlan:
        """A FunnelPlan whose arrays are views of one cell: an injector's edits land in this plan."""
        return _CellPlan(dates=list(window_calendar(self.num_days).dates), traffic=self.traffic[cell],
                          step_rates=self.step_rates[cell], extra_opens=self.extra_opens[cell],
                          duplicate_factor=self.duplicate_factor[cell], hour_shift=self.hour_shift[cell],
                          ingested_fraction=self.ingested_fraction[cell])


def draw_releases(key: EpisodeKey) -> tuple[int, tuple[Release, ...]]:
    """The version numbering and the release schedule of an episode (public once drawn)."""
    rng = derive_rng(key, "frontier-releases")
    base_minor = int(rng.integers(10, 40))
    labels = version_labels(base_minor)
    releases = []
    for platform in MOBILE_PLATFORMS:
        first = int(rng.integers(FIRST_RELEASE_DAYS[0], FIRST_RELEASE_DAYS[1] + 1))
        second = int(rng.integers(first + RELEASE_GAP, RELEASE_LATEST + 1))
        releases += [Release(platform, labels[1], first), Release(platform, labels[2], second)]
    return base_minor, tuple(releases)


def segmented_plan(key: EpisodeKey, num_days: int = FRONTIER_WINDOW_DAYS) -> SegmentedPlan:
    """The expected traffic and conversion of every cell, date and hour, before any incident or fluctuation."""
    plan = baseline_plan(key, num_days)
    trend = derive_rng(key, "frontier-world").uniform(*FRONTIER_TREND)
    aggregate = plan.traffic * (1.0 + trend * np.arange(num_days))[:, None]
    for day in holiday_days(num_days):
        aggregate[day] = aggregate[day].sum() * HOLIDAY_TRAFFIC_FACTOR * WEEKEND_HOUR_SHARE
    base_minor, releases = draw_releases(key)
    layout = cell_layout(base_minor)
    share, factors = cell_mix(layout)
    noise = np.empty((layout.size, num_days, 1 + N_STEPS))
    for cell, name in enumerate(zip(layout.platforms, layout.countries, layout.versions, strict=True)):
        noise[cell] = derive_rng(key, "segment/" + "/".join(name)).standard_normal((num_days, 1 + N_STEPS))
    cell_share = share[:, None] * version_shares(layout, releases, num_days) * np.exp(SEGMENT_DAY_SIGMA * noise[..., 0])
    traffic = cell_share[..., None] * aggregate[None]
    rate_factor = factors[:, None, :] * np.exp(SEGMENT_RATE_SIGMA * noise[..., 1:])  # (S, D, 4)
    step_rates = np.minimum(plan.step_rates[None] * rate_factor[:, :, None, :], 0.995)
    cells = layout.size
    return SegmentedPlan(layout=layout, releases=releases, traffic=traffic, step_rates=step_rates,
                         extra_opens=np.zeros((cells, num_days, HOURS)),
                         duplicate_factor=np.ones((cells, num_days, HOURS, N_EVENTS)),
                         hour_shift=np.zeros((cells, num_days), dtype=np.int64),
                         ingested_fraction=np.ones((cells, num_days, HOURS)))


def draw_segmented_counts(plan: SegmentedPlan, key: EpisodeKey) -> SegmentedData:
    """Integer counts of every cell: one Poisson draw over all cells (stops per event, as funnel.stage_means
    explains), then, for each cell and date whose plan holds extra opens, duplicates, a clock shift or lost
    events, those from the stream "segment-draw" of that cell and date."""
    stops = derive_rng(key, "segment-noise").poisson(stage_means(plan.traffic, plan.step_rates))
    hourly = stops
    for event in range(N_STEPS - 1, -1, -1):
        hourly[..., event] += hourly[..., event + 1]
    extra = plan.extra_opens.any(axis=2)
    surplus = (plan.duplicate_factor != 1.0).any(axis=(2, 3))
    loss = (plan.ingested_fraction < 1.0).any(axis=2)
    shifted = plan.hour_shift != 0
    for cell, day in zip(*np.nonzero(extra | surplus | loss | shifted), strict=True):
        rng = derive_rng(key, "segment-draw", int(cell) * plan.num_days + int(day))
        counts = hourly[cell, day]
        if extra[cell, day]:
            counts[:, 0] += rng.poisson(plan.extra_opens[cell, day])
        if surplus[cell, day]:
            counts += rng.poisson(counts * (plan.duplicate_factor[cell, day] - 1.0))
        if shifted[cell, day]:
            counts[:] = np.roll(counts, int(plan.hour_shift[cell, day]), axis=0)
        if loss[cell, day]:
            counts[:] = rng.binomial(counts, plan.ingested_fraction[cell, day][:, None])
    return SegmentedData(layout=plan.layout, releases=plan.releases, hourly=hourly)


# --- incidents and benign look-alikes -------------------------------------------------------------------

# Sizes are drawn per incident and per fluctuation; they overlap on purpose (no published threshold separates
# them), and none is published: the signature decides (which hours, which segment, which metrics move together,
# when it started).
REGRESSION_DROP = (0.25, 0.55)  # a release's broken step on the new version, from its rollout start until a fix
REGRESSION_DAYS = (3, 6)
LEVEL_SHIFT = (0.22, 0.45)  # a step's conversion in one segment, for several dates until a fix
LEVEL_SHIFT_DAYS = (2, 5)
OUTAGE_HOURS = (3, 7)  # a segment's traffic collapses for a block of hours
OUTAGE_DROP = (0.6, 0.9)
BOT_SHARE = (0.25, 0.9)  # extra opens from one country's bots, as a share of its day's opens, in a block of hours
TRACKING_DAYS = (1, 3)
TRACKING_COPIES = (0.9, 1.6)  # a web tracking bug logs this many extra copies of one event: it outnumbers its step
DEMAND_SWING = (0.2, 0.5)  # benign: a segment's whole day, every event and hour together
MIX_SURGE = (0.4, 1.2)  # benign: a low-converting segment's traffic grows, its own conversion unchanged
SEGMENT_TIMING_HOURS = (1, 2, 3)  # benign: a segment uses the app earlier or later
LOW_CONVERTING = (("web", None), (None, "IN"), (None, "BR"))
INCIDENT_KINDS = FRONTIER_INCIDENT_KINDS
# The family an incident of each kind is reported as (its entity types are the catalog's as they are).
KIND_FAMILY = {"release_regression": "rate_drop_from_median", "payment_failure": "funnel_break",
               "web_tracking_bug": "instrumentation_data_quality_issue",
               "country_bots": "hourly_traffic_mix_shift", "segment_outage": "absolute_drop_in_event_count",
               "level_shift": "rate_drop_from_median"}
FLUCTUATION_KINDS = ("mix_shift", "segment_demand_swing", "segment_timing_shift")
MIN_VERSION_SHARE = 0.3  # a version-level incident needs this share of its platform on its date and peers
PER_WEEKDAY = 3  # perturbed dates per weekday at most: a same-weekday median over seven peers stays clean


@dataclass(frozen=True)
class FrontierIncident:
    """One injected date of a segment incident (an incident over several dates has one per date)."""

    kind: str
    record: InjectionRecord
    segment: Segment


@dataclass(frozen=True)
class FrontierFluctuation:
    """A benign, unannotated change confined to a segment; `keeps_conversion` says every cell's own conversion
    is untouched."""

    kind: str
    day: int
    segment: Segment
    description: str
    keeps_conversion: bool = True


class _Calendar:
    """Which dates may still take a perturbation: not the last date, not a holiday, not taken, weekday not full."""

    def __init__(self, num_days: int) -> None:
        self.num_days = num_days
        self.taken: set[int] = set(holiday_days(num_days))
        self.per_weekday = [0] * 7

    def free(self, day: int) -> bool:
        return 0 <= day < self.num_days - 1 and day not in self.taken and self.per_weekday[day % 7] < PER_WEEKDAY

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


def _pick(options: Sequence[T], rng: np.random.Generator) -> T:
    return options[int(rng.integers(len(options)))]


def incident_count(config: EpisodeConfig) -> int:
    """The episode's number of incidents (fixed by the config, or drawn from its range as scenario.py does)."""
    if config.anomaly_count is not None:
        return config.anomaly_count
    assert config.anomaly_count_range is not None, "a config without a count must carry a count range"
    low, high = config.anomaly_count_range
    return int(derive_rng(config.key, "anomaly_count").integers(low, high + 1))


def _cells(plan: SegmentedPlan, segment: Segment) -> np.ndarray:
    return np.flatnonzero(plan.layout.mask(segment))


def _inject_on_cells(plan: SegmentedPlan, segment: Segment, family: str, day: int, entity: str, magnitude: float,
                     key: EpisodeKey, stream: str) -> InjectionRecord:
    """Run a family's injector on every cell of a segment, each from a fresh copy of one stream, so every cell
    gets the same hours and factors; the first cell's record stands for the segment."""
    records = [FAMILY_REGISTRY[family].inject(plan.cell_plan(int(cell)), day, entity, magnitude,
                                              derive_rng(key, stream, day), "frontier")
               for cell in _cells(plan, segment)]
    return records[0]


def _live_version(plan: SegmentedPlan, platform: str, day: int) -> str | None:
    """The platform's version that carries the most traffic on the date and on its same-weekday peers alike, so
    that the segment's baseline rests on real traffic; None when no version does (the failure then hits every
    version of the platform)."""
    shares = version_shares(plan.layout, plan.releases, plan.num_days)
    peers = list(same_weekday_peer_lists(plan.num_days)[day])

    def carried(version: str) -> float:
        row = shares[plan.layout.mask(Segment(platform, None, version))][0]
        return min(float(row[day]), float(np.median(row[peers])))

    best = max(plan.layout.platform_versions(platform), key=carried)
    return best if carried(best) >= MIN_VERSION_SHARE else None


def _incident(kind: str, index: int, plan: SegmentedPlan, calendar: _Calendar, key: EpisodeKey,
              rng: np.random.Generator) -> list[FrontierIncident]:
    """Inject one incident of a kind; [] when the calendar has no room for it."""
    stream = f"frontier-incident/{index}"
    if kind == "release_regression":
        release = plan.releases[int(rng.integers(len(plan.releases)))]
        length = int(rng.integers(REGRESSION_DAYS[0], REGRESSION_DAYS[1] + 1))
        days = [release.start_day + i for i in range(length)]
        if not all(calendar.free(d) for d in days):
            return []
        for day in days:
            calendar.take(day)
        entity = _pick(("order_placed_to_payment_successful", "product_added_to_cart_to_order_placed"), rng)
        magnitude = float(rng.uniform(*REGRESSION_DROP))
        segment = Segment(release.platform, None, release.version)
        out = []
        for day in days:
            record = _inject_on_cells(plan, segment, "rate_drop_from_median", day, entity, magnitude, key, stream)
            record = replace(record, continues=days[0] if day != days[0] else None,
                             description=f"release {release.version} on {release.platform} breaks {entity} on "
                                         f"the new version (drop {magnitude:.0%}) until a fix: {record.description}")
            out.append(FrontierIncident(kind, record, segment))
        return out
    if kind == "level_shift":
        length = int(rng.integers(LEVEL_SHIFT_DAYS[0], LEVEL_SHIFT_DAYS[1] + 1))
        start = calendar.draw(rng, length)
        if start is None:
            return []
        segment = _pick((Segment(country=_pick(plan.layout.values_of("country"), rng)),
                         Segment(platform=_pick(plan.layout.values_of("platform"), rng))), rng)
        entity = _pick(FAMILY_REGISTRY["rate_drop_from_median"].entity_names, rng)
        magnitude = float(rng.uniform(*LEVEL_SHIFT))
        out = []
        for day in range(start, start + length):
            record = _inject_on_cells(plan, segment, "rate_drop_from_median", day, entity, magnitude, key, stream)
            record = replace(record, continues=start if day != start else None)
            out.append(FrontierIncident(kind, record, segment))
        return out
    if kind == "web_tracking_bug":
        length = int(rng.integers(TRACKING_DAYS[0], TRACKING_DAYS[1] + 1))
        start = calendar.draw(rng, length)
        if start is None:
            return []
        segment = Segment(platform="web")
        family = "instrumentation_data_quality_issue"
        entity = _pick(FAMILY_REGISTRY[family].entity_names, rng)
        magnitude = float(rng.uniform(*TRACKING_COPIES))
        out = []
        for day in range(start, start + length):
            record = _inject_on_cells(plan, segment, family, day, entity, magnitude, key, stream)
            out.append(FrontierIncident(kind, replace(record, continues=start if day != start else None), segment))
        return out
    day = calendar.draw(rng)
    if day is None:
        return []
    if kind.startswith("segment/"):
        family = kind.removeprefix("segment/")
        segment = _pick((Segment(platform=_pick(plan.layout.values_of("platform"), rng)),
                         Segment(country=_pick(plan.layout.values_of("country"), rng))), rng)
        entity = _pick(FAMILY_REGISTRY[family].entity_names, rng)
        magnitude = float(rng.uniform(*FAMILY_REGISTRY[family].segment_magnitude_range))
        return [FrontierIncident(kind, _inject_on_cells(plan, segment, family, day, entity, magnitude, key, stream),
                                 segment)]
    if kind == "payment_failure":
        platform = _pick(MOBILE_PLATFORMS, rng)
        segment = Segment(platform, None, _live_version(plan, platform, day))
        hours = float(rng.integers(OUTAGE_HOURS[0], OUTAGE_HOURS[1] + 1))
        record = _inject_on_cells(plan, segment, "funnel_break", day, "order_placed_to_payment_successful", hours,
                                  key, stream)
        return [FrontierIncident(kind, record, segment)]
    if kind == "country_bots":  # the mix-shift injector on every cell of the country: its own hours and weights
        segment = Segment(country=_pick(plan.layout.values_of("country"), rng))
        share = float(rng.uniform(*BOT_SHARE))
        record = _inject_on_cells(plan, segment, "hourly_traffic_mix_shift", day, "app_opens", share, key, stream)
        return [FrontierIncident(kind, replace(record, description=f"bots from {segment.country}: "
                                                                   f"{record.description}"), segment)]
    start, end = draw_window(rng, int(rng.integers(OUTAGE_HOURS[0], OUTAGE_HOURS[1] + 1)))
    # segment_outage: a platform's or country's traffic collapses for a block of hours
    segment = _pick((Segment(platform=_pick(plan.layout.values_of("platform"), rng)),
                     Segment(country=_pick(plan.layout.values_of("country"), rng))), rng)
    cells = _cells(plan, segment)
    drop = float(rng.uniform(*OUTAGE_DROP))
    lost = drop * plan.traffic[cells, day, start:end].sum() / plan.traffic[cells, day].sum()
    plan.traffic[cells, day, start:end] *= 1.0 - drop
    neutral = counts_from(1) | hourly_mix_from(0)
    record = InjectionRecord("absolute_drop_in_event_count", day, "event_count", "app_opens", float(lost),
                             (start, end), f"{segment.label()} loses {drop:.0%} of its app opens between "
                             f"{start:02d}:00 and {end:02d}:00 (an outage); conversion is unchanged",
                             frozenset(neutral))
    return [FrontierIncident(kind, record, segment)]


def _fluctuation(kind: str, index: int, plan: SegmentedPlan, calendar: _Calendar,
                 rng: np.random.Generator) -> FrontierFluctuation | None:
    day = calendar.draw(rng)
    if day is None:
        return None
    if kind == "mix_shift":
        platform, country = _pick(LOW_CONVERTING, rng)
        segment = Segment(platform=platform, country=country)
        surge = float(rng.uniform(*MIX_SURGE))
        plan.traffic[_cells(plan, segment), day] *= 1.0 + surge
        return FrontierFluctuation(kind, day, segment, f"{segment.label()} (a low-converting segment) had "
                                   f"{surge:.0%} more traffic all day; its own conversion, and every other "
                                   "segment's, is unchanged")
    segment = _pick((Segment(platform=_pick(plan.layout.values_of("platform"), rng)),
                     Segment(country=_pick(plan.layout.values_of("country"), rng))), rng)
    cells = _cells(plan, segment)
    if kind == "segment_demand_swing":
        swing = float(rng.uniform(*DEMAND_SWING)) * (1 if rng.random() < 0.5 else -1)
        plan.traffic[cells, day] *= 1.0 + swing
        return FrontierFluctuation(kind, day, segment, f"demand in {segment.label()} {'rose' if swing > 0 else 'fell'}"
                                   f" by {abs(swing):.0%} all day: every event and hour together")
    hours = int(_pick(SEGMENT_TIMING_HOURS, rng)) * (1 if rng.random() < 0.5 else -1)
    plan.traffic[cells, day] = np.roll(plan.traffic[cells, day], hours, axis=1)
    plan.step_rates[cells, day] = np.roll(plan.step_rates[cells, day], hours, axis=1)
    return FrontierFluctuation(kind, day, segment, f"{segment.label()} used the app about {abs(hours)} hour(s) "
                               f"{'later' if hours > 0 else 'earlier'} than usual; totals and conversion unchanged")


@dataclass(frozen=True)
class FrontierWorld:
    """What build_frontier_episode makes before it turns the records into ground truth."""

    data: SegmentedData
    incidents: tuple[FrontierIncident, ...]
    fluctuations: tuple[FrontierFluctuation, ...]
    annotations: tuple[Annotation, ...]


def incident_kinds(config: EpisodeConfig, rng: np.random.Generator) -> list[str]:
    """The kinds of the episode's incidents: all kinds in a shuffled cycle (mixed), those of one family, or none."""
    if config.scenario_family == "null":
        return []
    count = incident_count(config)
    kinds = [k for k in config.incident_kinds or INCIDENT_KINDS
             if config.scenario_family == "mixed" or KIND_FAMILY[k] == config.scenario_family]
    # A family no kind reports: its own injector on one platform's or country's cells (segment_magnitude_range).
    if not kinds:
        kinds = [f"segment/{config.scenario_family}"]
    order = [str(k) for k in rng.permutation(kinds)]
    return [order[i % len(order)] for i in range(count)]


def decoy_count(decoy_ratio: float, incidents: int) -> int:
    """Benign look-alikes for `incidents` incidents: round(decoy_ratio x incidents), at least two unless the ratio
    is 0 (so the default ratio 1 gives as many as incidents, and a null episode two)."""
    return 0 if decoy_ratio == 0 else max(2, round(decoy_ratio * incidents))


def build_world(config: EpisodeConfig) -> FrontierWorld:
    """The frontier episode's data, its injected incidents, its benign fluctuations and its calendar notes."""
    if config.anomalies:
        raise ValueError("custom anomalies are not available at difficulty 'frontier'; use scenario_family "
                         "and anomaly_count, or another difficulty")
    key = config.key
    plan = segmented_plan(key)
    calendar = _Calendar(plan.num_days)
    schedule = derive_rng(key, "frontier-schedule")
    incidents: list[FrontierIncident] = []
    kinds = incident_kinds(config, schedule)
    for index, kind in enumerate(kinds):
        placed = _incident(kind, index, plan, calendar, key, derive_rng(key, "frontier-incident", index))
        if not placed:  # no room for this kind: a single-date segment outage always fits an eight-week window
            placed = _incident("segment_outage", index, plan, calendar, key,
                               derive_rng(key, "frontier-incident-fallback", index))
        incidents += placed
    # Benign look-alikes: decoy_ratio per incident (by default as many as incidents, and at least two, so a null
    # episode has them too); a curriculum may set fewer.
    fluctuations = []
    for index in range(decoy_count(config.decoy_ratio, len(kinds))):
        rng = derive_rng(key, "frontier-fluctuation", index)
        fluctuation = _fluctuation(_pick(FLUCTUATION_KINDS, rng), index, plan, calendar, rng)
        if fluctuation is not None:
            fluctuations.append(fluctuation)
    data = draw_segmented_counts(plan, key)
    dates = window_calendar(plan.num_days).iso_dates
    notes = [Annotation(dates[day], "public_holiday", f"Public holiday ({name}): lower traffic with a weekend-like "
                        "daily pattern.") for day, name in holiday_days(plan.num_days).items()]
    for release in plan.releases:
        notes.append(Annotation(dates[release.start_day], "release",
                                f"App release {release.version} started a staged rollout on {release.platform}: "
                                f"{', '.join(f'{s:.0%}' for s in ROLLOUT_STAGES)} of its users on consecutive "
                                "days (see get_releases)."))
    notes.sort(key=lambda a: (a.date, a.kind, a.note))
    return FrontierWorld(data, tuple(sorted(incidents, key=lambda i: i.record.day)), tuple(fluctuations),
                         tuple(notes))


def segment_row(row: MetricSubmissionRow, segment: Segment) -> MetricSubmissionRow:
    return row.model_copy(update=dict(zip(SEGMENT_FIELDS, segment.normalised().values(), strict=True)))
