"""The segmented world of the segmented tiers (frontier, deep): what is public about it, and its counts.

Traffic is split along the dimensions a tier names (tiers.py), each a `Dimension` of spec/dimensions.py: its values,
each value's share of traffic and its conversion profile. Two grains:
- cells: platform x app version x country, with hourly and daily counts. Every incident and benign kind acts on
  a segment of these dimensions, and its signature (which hours) shows at this grain. Mobile releases roll out
  over several days, so the version shares of ios and android change date by date; web has one version label;
- leaves: at a tier with daily-only dimensions (deep: acquisition channel and user type), each cell's daily counts
  are split further, one leaf per combination of their values, each with its own share and conversion. Hourly
  counts stay at the cell grain: the leaves multiply the rows by eight, and no kind's signature needs their hours.
The aggregate funnel every other tool reads is the sum of the cells, which is the sum of the leaves. Segments
differ in level and in conversion, so a move of traffic toward a low-converting one moves the aggregate's
conversion while no segment's own conversion changes.

Everything in this module is public (the brief and the tools may read it): the dimensions, their values, the
holiday calendar, the release schedule of an episode and the counts. How incidents were injected lives in
frontier.py and metric_tracker_rl/generation/kinds/, which the tools cannot import.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from metric_tracker_rl.spec.dimensions import (
    COUNTRIES,
    DIMENSIONS,
    PLATFORM_RATE_FACTORS,
    PLATFORM_SHARE,
    PLATFORMS,
    Dimension,
)
from metric_tracker_rl.spec.published import (
    ANOMALY_TYPES,
    CONVERSION_METRICS,
    COUNT_COLUMNS,
    FAMILY_ENTITY_TYPE,
    FRONTIER_WINDOW_DAYS,
    HOURLY_EVIDENCE_GRAIN,
    OVERLAP_CREDIT_RULE,
)
from metric_tracker_rl.spec.tiers import TIERS
from metric_tracker_rl.sql.columns import Labels, SqlTable
from metric_tracker_rl.world.context import CONTEXT_READING, ContextTables, context_meanings
from metric_tracker_rl.world.funnel import HOURS, WINDOW_START, FunnelData, window_calendar

if TYPE_CHECKING:
    import pandas as pd

MOBILE_PLATFORMS: tuple[str, ...] = ("ios", "android")
WEB_VERSION = "web"  # web serves one build: its only app_version label
CELL_FIELDS: tuple[str, ...] = ("platform", "country", "app_version")  # the hourly grain
DAILY_FIELDS: tuple[str, ...] = ("channel", "user_type")  # dimensions kept at the daily grain only
# Every field a segment (and a report row) may name; an episode has those of its tier's dimensions.
SEGMENT_FIELDS: tuple[str, ...] = (*CELL_FIELDS, *DAILY_FIELDS)
# Each mobile platform ships RELEASES_PER_PLATFORM releases in the window, on top of the version live at its start.
RELEASES_PER_PLATFORM = 2

SEGMENT_DAY_SIGMA = 0.05  # log-normal noise of a cell's traffic per date
SEGMENT_RATE_SIGMA = 0.03  # log-normal noise of a cell's step rates per date
# A leaf's share of its cell's traffic, and its step rates, vary date by date by this log-normal noise.
LEAF_SHARE_SIGMA = 0.05
LEAF_RATE_SIGMA = 0.03


@dataclass(frozen=True)
class World:
    """The dimensions of a segmented tier: the cells' country dimension and the daily-only dimensions, in order."""

    country: Dimension
    daily: tuple[Dimension, ...]

    @property
    def dimensions(self) -> tuple[Dimension, ...]:
        return (DIMENSIONS["platform"], self.country, DIMENSIONS["app_version"], *self.daily)

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(dimension.field for dimension in self.dimensions)

    @cached_property
    def leaf_split(self) -> LeafSplit:
        """How a cell splits along the daily-only dimensions (one per world: it keeps the masks it has built)."""
        return LeafSplit(self.daily)


@cache
def world_of(dimensions: tuple[str, ...]) -> World:
    """The world a tier's dimension keys name: platform, one country dimension and app_version (the cells), then
    any daily-only dimensions."""
    unknown = [name for name in dimensions if name not in DIMENSIONS]
    if unknown:
        raise ValueError(f"unknown dimension(s) {unknown}; known: {', '.join(DIMENSIONS)}")
    chosen = [DIMENSIONS[name] for name in dimensions]
    cells = [d for d in chosen if d.hourly]
    if [d.field for d in cells] != list(CELL_FIELDS) or len(set(map(id, chosen))) != len(chosen):
        raise ValueError(f"a segmented tier names platform, one country dimension and app_version, in that order, "
                         f"then daily-only dimensions; got {dimensions}")
    return World(cells[1], tuple(d for d in chosen if not d.hourly))


# The staged rollout of a mobile release: the share of the platform's users offered it, day by day from its start.
ROLLOUT_STAGES: tuple[float, ...] = (0.05, 0.2, 0.5, 1.0)
UPDATE_ADOPTION = 0.95  # offered users who run the new version (the rest stay on the one before)

# The calendar's holidays (annotated): lower traffic with a weekend-like day. Fixed dates, the same every episode.
HOLIDAYS: dict[str, str] = {"2026-04-03": "Good Friday", "2026-04-06": "Easter Monday"}
HOLIDAY_TRAFFIC_FACTOR = 0.8

# A release that breaks its new version does so from its rollout's first date for this many dates (inclusive), one
# row each, until a fix (generation/kinds/release_regression.py).
REGRESSION_DAYS: tuple[int, int] = (3, 6)

RELEASE_MEANING = (
    "A release annotation says a new app version started a staged rollout on one platform: "
    f"{', '.join(f'{stage:.0%}' for stage in ROLLOUT_STAGES)} of its users on consecutive dates (get_releases). A "
    "release sometimes breaks a step on the new version only (its platform and version, at deep perhaps only some "
    f"of its users): from the rollout's first date for {REGRESSION_DAYS[0]} to {REGRESSION_DAYS[1]} dates in a row, "
    "one row each, by the same share every date, then it is fixed, whether or not the rollout has reached "
    f"{ROLLOUT_STAGES[-1]:.0%}. Its aggregate footprint grows with the rollout until the fix. Most releases change "
    "nothing."
)


@dataclass(frozen=True)
class Release:
    """A mobile release: from `start_day`, its share of the platform's users follows ROLLOUT_STAGES."""

    platform: str
    version: str
    start_day: int

    def offered_share(self, num_days: int) -> np.ndarray:
        """(D,) share of the platform's users offered the version on each date (0 before the start)."""
        share = np.zeros(num_days)
        for offset, stage in enumerate(ROLLOUT_STAGES):
            if self.start_day + offset < num_days:
                share[self.start_day + offset:] = stage
        return share


@dataclass(frozen=True)
class Segment:
    """A set of cells (or leaves) named by its fields; None means every value of that dimension."""

    platform: str | None = None
    country: str | None = None
    app_version: str | None = None
    channel: str | None = None
    user_type: str | None = None

    def label(self) -> str:
        parts = [f"{name}={value}" for name, value in zip(SEGMENT_FIELDS, self.values(), strict=True)
                 if value is not None]
        return ", ".join(parts) or "all traffic"

    def values(self) -> tuple[str | None, ...]:
        """The fields in SEGMENT_FIELDS order."""
        return self.platform, self.country, self.app_version, self.channel, self.user_type

    def named(self) -> dict[str, str]:
        """The fields it names (a dimension left out means all its values)."""
        return {name: value for name, value in zip(SEGMENT_FIELDS, self.values(), strict=True) if value is not None}

    def normalised(self) -> Segment:
        """Web has one version: platform=web with or without app_version=web names the same cells."""
        if self.app_version == WEB_VERSION:
            return replace(self, platform="web", app_version=None) if self.platform in (None, "web") else self
        return self

    def cell_part(self) -> Segment:
        """The cells the segment falls in: its fields of the cell grain only."""
        return Segment(self.platform, self.country, self.app_version)

    @property
    def names_daily_field(self) -> bool:
        """Whether it names a dimension kept at the daily grain only (it has no hourly counts)."""
        return self.channel is not None or self.user_type is not None

    @property
    def is_aggregate(self) -> bool:
        return all(value is None for value in self.values())


@dataclass(frozen=True)
class CellLayout:
    """The cells of an episode: every (platform, version, country), mobile versions oldest first."""

    platforms: tuple[str, ...]
    countries: tuple[str, ...]
    versions: tuple[str, ...]
    # Masks already built (read-only): a reset asks for the same segments' cells many times.
    _masks: dict[Segment, np.ndarray] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def size(self) -> int:
        return len(self.platforms)

    def mask(self, segment: Segment) -> np.ndarray:
        """(S,) bool, read-only: the cells inside a segment of the cell dimensions."""
        keep = self._masks.get(segment)
        if keep is None:
            assert not segment.names_daily_field, f"{segment.label()} is finer than a cell"
            cells = segment.normalised()
            keep = np.ones(self.size, dtype=bool)
            for wanted, values in ((cells.platform, self.platforms), (cells.country, self.countries),
                                   (cells.app_version, self.versions)):
                if wanted is not None:
                    keep &= np.array([value == wanted for value in values])
            keep.setflags(write=False)
            self._masks[segment] = keep
        return keep

    def values_of(self, name: str) -> tuple[str, ...]:
        """The distinct values of one dimension, in layout order."""
        column = {"platform": self.platforms, "country": self.countries, "app_version": self.versions}[name]
        return tuple(dict.fromkeys(column))

    def platform_versions(self, platform: str) -> tuple[str, ...]:
        return tuple(dict.fromkeys(v for p, v in zip(self.platforms, self.versions, strict=True) if p == platform))


def version_labels(base_minor: int) -> tuple[str, ...]:
    """The version live at the window's start and the releases after it (both mobile platforms share numbers).
    Three parts, as app stores show them: a label never reads as a number, so a table shows it bare (6.31.0,
    where a number-like 6.31 would need quotes to stay text)."""
    return tuple(f"6.{base_minor + i}.0" for i in range(RELEASES_PER_PLATFORM + 1))


@cache
def cell_layout(base_minor: int, countries: tuple[str, ...] = COUNTRIES) -> CellLayout:
    platforms, cell_countries, versions = [], [], []
    for platform in PLATFORMS:
        labels = version_labels(base_minor) if platform in MOBILE_PLATFORMS else (WEB_VERSION,)
        for version in labels:
            for country in countries:
                platforms.append(platform)
                cell_countries.append(country)
                versions.append(version)
    return CellLayout(tuple(platforms), tuple(cell_countries), tuple(versions))


def version_shares(layout: CellLayout, releases: tuple[Release, ...], num_days: int) -> np.ndarray:
    """(S, D) share of its platform's traffic that each cell's version carries on each date.

    A newer release takes UPDATE_ADOPTION of the users offered it from every older version alike, so the oldest
    version keeps a tail of users who never update."""
    shares = np.zeros((layout.size, num_days))
    for platform in PLATFORMS:
        versions = layout.platform_versions(platform)
        per_version = np.zeros((len(versions), num_days))
        per_version[0] = 1.0
        for release in (r for r in releases if r.platform == platform):
            adopted = UPDATE_ADOPTION * release.offered_share(num_days)
            position = versions.index(release.version)
            per_version[position] = adopted
            per_version[:position] *= 1.0 - adopted
        for position, version in enumerate(versions):
            cells = np.array([p == platform and v == version
                              for p, v in zip(layout.platforms, layout.versions, strict=True)])
            shares[cells] = per_version[position]
    return shares


def cell_mix(layout: CellLayout, country: Dimension = DIMENSIONS["country"]) -> tuple[np.ndarray, np.ndarray]:
    """(S,) expected share of traffic of each cell's platform and country, and (S, 4) its conversion factors."""
    share = np.array([PLATFORM_SHARE[p] * country.share[c] for p, c in zip(layout.platforms, layout.countries,
                                                                             strict=True)])
    factors = np.array([np.multiply(PLATFORM_RATE_FACTORS[p], country.rate_factors[c])
                        for p, c in zip(layout.platforms, layout.countries, strict=True)])
    return share, factors


@dataclass(frozen=True)
class LeafSplit:
    """How each cell's daily counts split along the daily-only dimensions: one leaf per combination of their
    values (the first dimension varies slowest). Leaf i of cell c is row c * size + i of the leaf arrays."""

    dimensions: tuple[Dimension, ...]
    _masks: dict[Segment, np.ndarray] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def combinations(self) -> tuple[tuple[str, ...], ...]:
        return tuple(itertools.product(*(d.values for d in self.dimensions)))

    @property
    def size(self) -> int:
        return len(self.combinations)

    def shares(self) -> np.ndarray:
        """(K,) expected share of a cell's traffic in each leaf."""
        return np.array([np.prod([d.share[v] for d, v in zip(self.dimensions, combo, strict=True)])
                         for combo in self.combinations])

    def rate_factors(self) -> np.ndarray:
        """(K, 4) each leaf's factors on its cell's step rates."""
        return np.array([np.prod([d.rate_factors[v] for d, v in zip(self.dimensions, combo, strict=True)], axis=0)
                         for combo in self.combinations])

    def mask(self, segment: Segment) -> np.ndarray:
        """(K,) bool, read-only: the combinations inside a segment's daily-only fields."""
        keep = self._masks.get(segment)
        if keep is None:
            named = segment.named()
            keep = np.array([all(named.get(d.field) in (None, v) for d, v in zip(self.dimensions, combo, strict=True))
                             for combo in self.combinations])
            keep.setflags(write=False)
            self._masks[segment] = keep
        return keep


def holiday_days(num_days: int = FRONTIER_WINDOW_DAYS) -> dict[int, str]:
    """Positions of the calendar's holidays inside a window of this length."""
    days = {}
    for iso, name in HOLIDAYS.items():
        day = (dt.date.fromisoformat(iso) - WINDOW_START).days
        if 0 <= day < num_days:
            days[day] = name
    return days


def day_sums(hourly: np.ndarray) -> np.ndarray:
    """(S, D, 5) each cell's daily counts from its hourly ones (S, D, 24, 5): einsum takes a third of
    sum(axis=2)'s time, and integer sums come out the same in any order."""
    daily: np.ndarray = np.einsum("sdhe->sde", hourly)
    return daily


@dataclass(frozen=True)
class SegmentedData:
    """The public counts of every cell: hourly (S, D, 24, 5), daily (S, D, 5), and the release schedule; at a tier
    with daily-only dimensions also `leaf_daily` (S x K, D, 5), each cell's days split along `split`; at a tier
    with context (deep) also its context tables."""

    layout: CellLayout
    releases: tuple[Release, ...]
    hourly: np.ndarray
    daily: np.ndarray = field(init=False)
    split: LeafSplit | None = None
    leaf_daily: np.ndarray | None = None
    context: ContextTables | None = None  # at a tier with context (deep): its context tables

    def __post_init__(self) -> None:
        object.__setattr__(self, "daily", day_sums(self.hourly))
        if (self.split is None) != (self.leaf_daily is None):
            raise ValueError("a leaf split comes with its leaves' daily counts")
        for array in (self.hourly, self.daily, self.leaf_daily):
            if array is not None:
                array.setflags(write=False)

    @property
    def num_days(self) -> int:
        days: int = self.hourly.shape[1]
        return days

    @property
    def fields(self) -> tuple[str, ...]:
        """The dimensions of the episode (its report fields), cells' first."""
        return CELL_FIELDS + (() if self.split is None else tuple(d.field for d in self.split.dimensions))

    @property
    def leaves(self) -> np.ndarray:
        """(L, D, 5) daily counts at the finest grain: the leaves, or the cells where there is no split."""
        return self.daily if self.leaf_daily is None else self.leaf_daily

    def dimension_values(self) -> dict[str, list[str]]:
        values = {name: list(self.layout.values_of(name)) for name in CELL_FIELDS}
        for dimension in () if self.split is None else self.split.dimensions:
            values[dimension.field] = list(dimension.values)
        return values

    def leaf_mask(self, segment: Segment) -> np.ndarray:
        """(L,) bool: the leaves inside a segment (the cells inside it where there is no split)."""
        cells = self.layout.mask(segment.cell_part())
        if self.split is None:
            if segment.names_daily_field:
                raise ValueError(f"this episode has no dimension {', '.join(set(segment.named()) - set(CELL_FIELDS))}")
            return cells
        return np.outer(cells, self.split.mask(segment)).reshape(-1)

    def segment_daily(self, segment: Segment) -> np.ndarray:
        """(D, 5) daily counts of a segment of any of the episode's dimensions (the sum of its leaves)."""
        daily: np.ndarray = self.leaves[self.leaf_mask(segment)].sum(axis=0)
        return daily

    def segment_funnel(self, segment: Segment) -> FunnelData:
        """The funnel of one segment (the sum of its cells), as the aggregate tools read a funnel. Hourly counts
        exist per cell only: a segment that names a daily-only dimension is a ValueError."""
        if segment.names_daily_field:
            raise ValueError(f"{segment.label()}: hourly counts exist per {', '.join(CELL_FIELDS)} only; read its "
                             "days with compare_segments or daily_by_segment")
        mask = self.layout.mask(segment)
        if not mask.any():
            raise ValueError(f"no traffic cell matches {segment.label()}")
        calendar = window_calendar(self.num_days)
        return FunnelData(dates=calendar.iso_dates, weekdays=calendar.weekday_names, weekend=calendar.weekend,
                          hourly=self.hourly[mask].sum(axis=0))

    def release_rows(self) -> list[dict[str, Any]]:
        """One row per release and date from its start: the share of the platform's users it was offered."""
        dates = window_calendar(self.num_days).iso_dates
        rows: list[dict[str, Any]] = []
        for release in self.releases:
            offered = release.offered_share(self.num_days)
            for day in range(release.start_day, self.num_days):
                rows.append({"platform": release.platform, "app_version": release.version,
                             "rollout_start": dates[release.start_day], "date": dates[day],
                             "rollout_share": float(offered[day])})
        return rows

    def tables(self) -> dict[str, pd.DataFrame]:
        """daily_by_segment, hourly_by_segment and releases as DataFrames (the SQL tool's segment tables)."""
        import pandas as pd

        calendar = window_calendar(self.num_days)
        cells, days = self.layout.size, self.num_days
        keys = {"platform": np.repeat(self.layout.platforms, days), "country": np.repeat(self.layout.countries, days),
                "app_version": np.repeat(self.layout.versions, days)}
        leaf_keys = {name: np.repeat(values, days) for name, values in self._leaf_columns().items()}
        leaves = len(self.leaves)
        daily = pd.DataFrame({"date": np.tile(calendar.iso_dates, leaves), **leaf_keys})
        for position, column in enumerate(COUNT_COLUMNS):
            daily[column] = self.leaves[..., position].reshape(-1)
        for metric in CONVERSION_METRICS:
            daily[metric.name] = daily[metric.numerator] / daily[metric.denominator].where(
                daily[metric.denominator] > 0)
        hourly = pd.DataFrame({"date": np.tile(np.repeat(calendar.iso_dates, HOURS), cells),
                               "hour": np.tile(np.arange(HOURS), cells * days),
                               **{name: np.repeat(values, HOURS) for name, values in keys.items()}})
        for position, column in enumerate(COUNT_COLUMNS):
            hourly[column] = self.hourly[..., position].reshape(-1)
        releases = pd.DataFrame(self.release_rows(), columns=["platform", "app_version", "rollout_start", "date",
                                                               "rollout_share"])
        return {"daily_by_segment": daily, "hourly_by_segment": hourly, "releases": releases}


    def sql_tables(self) -> dict[str, SqlTable]:
        """The same tables as `tables`, as the SQL tool's columns built straight from the arrays: dates as
        datetime64 (DATE), the dimensions as Labels (VARCHAR), counts and hours as int32 (INTEGER: a cell's
        count is far below 2**31). daily_by_segment is at the finest grain (a column per dimension),
        hourly_by_segment at the cells'."""
        cells, days = self.layout.size, self.num_days
        leaves = len(self.leaves)
        dates = np.arange(days).astype("timedelta64[D]") + np.datetime64(WINDOW_START, "D")
        cell_codes = {name: self._dimension_codes(name, column)
                      for name, column in zip(CELL_FIELDS, self._cell_columns(), strict=True)}
        leaf_codes = {name: self._dimension_codes(name, column) for name, column in self._leaf_columns().items()}

        def keys(codes: dict[str, tuple[np.ndarray, tuple[str, ...]]], repeat: int) -> dict[str, Labels]:
            return {name: Labels(np.repeat(code, repeat), values) for name, (code, values) in codes.items()}

        counts = self.leaves.reshape(leaves * days, len(COUNT_COLUMNS))
        daily: SqlTable = {"date": np.tile(dates, leaves), **keys(leaf_codes, days),
                           **{column: counts[:, i].astype(np.int32) for i, column in enumerate(COUNT_COLUMNS)}}
        for metric in CONVERSION_METRICS:
            numerator = counts[:, COUNT_COLUMNS.index(metric.numerator)].astype(float)
            denominator = counts[:, COUNT_COLUMNS.index(metric.denominator)]
            daily[metric.name] = np.divide(numerator, denominator, out=np.full(len(counts), np.nan),
                                           where=denominator > 0)
        counts = self.hourly.reshape(cells * days * HOURS, len(COUNT_COLUMNS))
        hourly: SqlTable = {"date": np.tile(np.repeat(dates, HOURS), cells),
                            "hour": np.tile(np.arange(HOURS, dtype=np.int32), cells * days),
                            **keys(cell_codes, days * HOURS),
                            **{column: counts[:, i].astype(np.int32) for i, column in enumerate(COUNT_COLUMNS)}}
        rows = self.release_rows()
        releases: SqlTable = {
            "platform": np.array([row["platform"] for row in rows], dtype=object),
            "app_version": np.array([row["app_version"] for row in rows], dtype=object),
            "rollout_start": np.array([row["rollout_start"] for row in rows], dtype="datetime64[D]"),
            "date": np.array([row["date"] for row in rows], dtype="datetime64[D]"),
            "rollout_share": np.array([row["rollout_share"] for row in rows], dtype=float)}
        tables = {"daily_by_segment": daily, "hourly_by_segment": hourly, "releases": releases}
        if self.context is not None:  # a tier with context (deep): its other context tables
            tables.update(self.context.sql_tables())
        return tables

    def _cell_columns(self) -> tuple[tuple[str, ...], ...]:
        return self.layout.platforms, self.layout.countries, self.layout.versions

    def _leaf_columns(self) -> dict[str, tuple[str, ...]]:
        """Each dimension's value per leaf (per cell where there is no split), in leaf order."""
        columns = dict(zip(CELL_FIELDS, self._cell_columns(), strict=True))
        if self.split is None:
            return columns
        k = self.split.size
        combos = self.split.combinations
        leaf_columns = {name: tuple(np.repeat(values, k)) for name, values in columns.items()}
        for position, dimension in enumerate(self.split.dimensions):
            leaf_columns[dimension.field] = tuple(combo[position] for combo in combos) * self.layout.size
        return leaf_columns

    def _dimension_codes(self, name: str, column: tuple[str, ...]) -> tuple[np.ndarray, tuple[str, ...]]:
        """(N,) each row's position among the dimension's values, and the values."""
        values = tuple(self.dimension_values()[name])
        position = {value: i for i, value in enumerate(values)}
        return np.array([position[value] for value in column], dtype=np.int8), values


SEGMENT_REPORTING = (
    "At frontier every incident is confined to a segment: report it with the platform, country and/or app_version "
    "that name the segment (omit a field to mean all its values; web has the single app_version 'web'), and read "
    "its baseline, observed value and delta from that segment's own data with the published baseline rule. The "
    "exact segment earns full credit, a correct parent (the right platform, no version) half, the right platform "
    "with a wrong version or a segment narrower than the incident a quarter, the aggregate or a wrong segment none."
)
# At a tier that credits segments by overlap (deep): any of its dimensions, and the continuous credit.
OVERLAP_REPORTING = (
    "At {difficulty} every incident is confined to a segment: report it with any of the fields {fields} that name "
    "it (omit a field to mean all its values; web has the single app_version 'web'), and read its baseline, "
    "observed value and delta from that segment's own data with the published baseline rule. The row's quality is "
    "multiplied by its segment credit. " + OVERLAP_CREDIT_RULE
)
BENIGN_AT_FRONTIER = (
    "Unannotated and benign, with sizes that overlap incidents' (no threshold separates them): more traffic from a "
    "low-converting segment (the aggregate's conversion moves, no segment's own does); a segment's demand rising or "
    "falling all day with every event and hour together; a segment using the app a few hours earlier or later. "
    "Holidays and releases are annotated. The signature tells incidents apart: which hours, which segment, which "
    "metrics move together, and when it started."
)


BENIGN_WITH_CONTEXT = (
    " With context tables (deep), also benign: an experiment's intended effect on the step it targets in its arm, "
    "a campaign's extra low-intent traffic in its channel and country, and a country's holiday; they are listed "
    "there, not annotated."
)


def benign_brief(difficulty: str) -> str:
    """What a segmented tier's brief says of its benign changes: frontier's, and at a tier with context the kinds
    its context tables list."""
    mix = TIERS[difficulty].segmented
    return BENIGN_AT_FRONTIER + (BENIGN_WITH_CONTEXT if mix is not None and mix.context else "")


def frontier_brief(difficulty: str = "frontier", note_share: float | None = None) -> dict[str, object]:
    """What the brief publishes about the segmented world of a segmented tier (the same for every episode of it
    but for the share of partner failures with a notice, the episode's `note_share`; None: the tier's)."""
    tier = TIERS[difficulty]
    world = world_of(tier.dimensions)
    versions = (f"{WEB_VERSION} on web; on ios and android the version live at the window's start and "
                f"{RELEASES_PER_PLATFORM} releases per platform (get_releases)")
    if not world.daily:
        return {
            "dimensions": {"platform": ",".join(PLATFORMS), "country": ",".join(world.country.values),
                           "app_version": versions},
            "traffic_split": "every count exists per (platform, country, app_version) cell; the aggregate funnel "
                             "the other tools read is their sum",
            "conversion": "web, BR and IN convert lower than the rest",
            "holidays": ", ".join(f"{date} {name}" for date, name in HOLIDAYS.items()),
            # What a release means is the brief's calendar_note_kinds.release, once.
            "reporting": SEGMENT_REPORTING,
        }
    daily = [dimension.field for dimension in world.daily]
    return {
        "dimensions": {"platform": ",".join(PLATFORMS), "country": ",".join(world.country.values),
                       "app_version": versions, **{d.field: ",".join(d.values) for d in world.daily}},
        "traffic_split": f"hourly counts exist per (platform, country, app_version) cell (hourly_by_segment); daily "
                         f"counts per cell and {' and '.join(daily)} (daily_by_segment, a column per dimension); the "
                         "aggregate funnel the other tools read is their sum",
        "hourly_evidence": HOURLY_EVIDENCE_GRAIN,
        "conversion": "; ".join(f"{d.field}: {d.profile}" for d in world.dimensions),
        "holidays": ", ".join(f"{date} {name}" for date, name in HOLIDAYS.items()),
        # What a release means is the brief's calendar_note_kinds.release, once.
        "reporting": _reporting(difficulty, world),
        **({"context_tables": context_brief(tier.segmented.note_share if note_share is None else note_share)}
           if tier.segmented is not None and tier.segmented.context else {}),
    }


@dataclass(frozen=True)
class KindText:
    """An incident kind as the brief shows it: its name, the family it is reported as, its one-line definition,
    and whether it may move a segment's counts together all day."""

    name: str
    family: str
    definition: str
    count_all_day: bool = False


def kinds_brief(kinds: Sequence[KindText]) -> dict[str, object]:
    """The brief's incident kinds of an episode (those it may draw), a row each with its family and definition,
    and what follows: the brief's families table keeps only those families (`drawn_families`), and whether an
    all-day move of a segment's counts can be an incident."""
    if not kinds:
        return {}
    counts = [kind.name for kind in kinds if FAMILY_ENTITY_TYPE[kind.family] == "event_count"]
    note = "Every incident is one of incident_kinds, reported as its family (the families table lists those only)."
    if not any(kind.count_all_day for kind in kinds):
        note += (" No incident moves a segment's counts together all day" + (
            f" ({' and '.join(counts)} {'is a block' if len(counts) == 1 else 'are blocks'} of hours)"
            if counts else "") + ": that is a benign demand swing.")
    return {"incident_kinds": [{"kind": kind.name, "family": kind.family, "definition": kind.definition}
                               for kind in kinds],
            "families_drawn": note}


def drawn_families(segments: Mapping[str, object] | None) -> tuple[str, ...] | None:
    """The families a brief's incident kinds are reported as, in publication order (None: no kinds shown, so
    every family may occur)."""
    kinds = (segments or {}).get("incident_kinds")
    if not isinstance(kinds, list):
        return None
    named = {row["family"] for row in kinds}
    return tuple(family for family in ANOMALY_TYPES if family in named)


def _reporting(difficulty: str, world: World) -> str:
    """How a row names its segment and how it is credited at a tier with daily-only dimensions."""
    if TIERS[difficulty].segment_credit == "overlap":
        return OVERLAP_REPORTING.format(difficulty=difficulty, fields=", ".join(world.fields))
    return SEGMENT_REPORTING.replace("At frontier", f"At {difficulty}").replace(
        "platform, country and/or app_version", f"platform, country, {', '.join(world.fields[2:])}")


def context_brief(note_share: float) -> dict[str, str]:
    """Each context table a model reads (get_context, or the query tool under the same name): its columns, read
    off the tables of an empty episode, and what it holds in an episode of this `note_share`."""
    empty = SegmentedData(CellLayout((), (), ()), (), np.zeros((0, 0, HOURS, len(COUNT_COLUMNS)), dtype=np.int64),
                          context=ContextTables())
    tables = empty.sql_tables()
    return {"reading": CONTEXT_READING,
            **{name: f"({', '.join(tables[name])}): {meaning}"
               for name, meaning in context_meanings(note_share).items()}}
