"""The segmented world of the segmented tiers (frontier, deep, abyss): its dimensions, segments, cells and leaves, its
releases and holidays, and its counts with the tables the tools read.

Traffic is split along the dimensions a tier names (tiers.py), each a `Dimension` of catalog/dimensions.py: its values,
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
holiday calendar, the release schedule of an episode and the counts. How expected traffic splits among cells is
traffic_split.py's, what the brief says of this world segment_brief.py's. How incidents were injected lives in
metric_tracker_rl/generation/segmented.py and kinds/, which the tools cannot import.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field, replace
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from metric_tracker_rl.catalog.dimensions import (
    DIMENSIONS,
    Dimension,
)
from metric_tracker_rl.catalog.published import (
    CONVERSION_METRICS,
    COUNT_COLUMNS,
)
from metric_tracker_rl.sql.columns import Labels, SqlTable
from metric_tracker_rl.world.context import ContextTables
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
        raise ValueError(
            f"a segmented tier names platform, one country dimension and app_version, in that order, "
            f"then daily-only dimensions; got {dimensions}"
        )
    return World(cells[1], tuple(d for d in chosen if not d.hourly))


# The staged rollout of a mobile release: the share of the platform's users offered it, day by day from its start.
ROLLOUT_STAGES: tuple[float, ...] = (0.05, 0.2, 0.5, 1.0)

# The calendar's holidays (annotated): lower traffic with a weekend-like day. Fixed dates, the same every episode.
HOLIDAYS: dict[str, str] = {"2026-04-03": "Good Friday", "2026-04-06": "Easter Monday"}

# A release that breaks its new version does so from its rollout's first date for this many dates (inclusive), one
# row each, until a fix (generation/kinds/release_regression.py).
REGRESSION_DAYS: tuple[int, int] = (3, 6)
# The steps such a release breaks (one of them, drawn in this order): the checkout and the payment.
REGRESSION_STEPS: tuple[str, ...] = ("order_placed_to_payment_successful", "product_added_to_cart_to_order_placed")


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
                share[self.start_day + offset :] = stage
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
        parts = [
            f"{name}={value}" for name, value in zip(SEGMENT_FIELDS, self.values(), strict=True) if value is not None
        ]
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


def segments_meet(first: Segment, second: Segment) -> bool:
    """Whether two segments share cells: no field that both name holds different values in them (a version is
    always named with its platform, and web's with none)."""
    one, other = first.normalised().named(), second.normalised().named()
    return all(other[field] == value for field, value in one.items() if field in other)


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
            for wanted, values in (
                (cells.platform, self.platforms),
                (cells.country, self.countries),
                (cells.app_version, self.versions),
            ):
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
        return np.array(
            [np.prod([d.share[v] for d, v in zip(self.dimensions, combo, strict=True)]) for combo in self.combinations]
        )

    def rate_factors(self) -> np.ndarray:
        """(K, 4) each leaf's factors on its cell's step rates."""
        return np.array(
            [
                np.prod([d.rate_factors[v] for d, v in zip(self.dimensions, combo, strict=True)], axis=0)
                for combo in self.combinations
            ]
        )

    def mask(self, segment: Segment) -> np.ndarray:
        """(K,) bool, read-only: the combinations inside a segment's daily-only fields."""
        keep = self._masks.get(segment)
        if keep is None:
            named = segment.named()
            keep = np.array(
                [
                    all(named.get(d.field) in (None, v) for d, v in zip(self.dimensions, combo, strict=True))
                    for combo in self.combinations
                ]
            )
            keep.setflags(write=False)
            self._masks[segment] = keep
        return keep


def holiday_days(num_days: int) -> dict[int, str]:
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
            raise ValueError(
                f"{segment.label()}: hourly counts exist per {', '.join(CELL_FIELDS)} only; read its "
                "days with compare_segments or daily_by_segment"
            )
        mask = self.layout.mask(segment)
        if not mask.any():
            raise ValueError(f"no traffic cell matches {segment.label()}")
        calendar = window_calendar(self.num_days)
        return FunnelData(
            dates=calendar.iso_dates,
            weekdays=calendar.weekday_names,
            weekend=calendar.weekend,
            hourly=self.hourly[mask].sum(axis=0),
        )

    def release_rows(self) -> list[dict[str, Any]]:
        """One row per release and date from its start: the share of the platform's users it was offered."""
        dates = window_calendar(self.num_days).iso_dates
        rows: list[dict[str, Any]] = []
        for release in self.releases:
            offered = release.offered_share(self.num_days)
            for day in range(release.start_day, self.num_days):
                rows.append(
                    {
                        "platform": release.platform,
                        "app_version": release.version,
                        "rollout_start": dates[release.start_day],
                        "date": dates[day],
                        "rollout_share": float(offered[day]),
                    }
                )
        return rows

    def tables(self) -> dict[str, pd.DataFrame]:
        """daily_by_segment, hourly_by_segment and releases as DataFrames (the SQL tool's segment tables)."""
        import pandas as pd

        calendar = window_calendar(self.num_days)
        cells, days = self.layout.size, self.num_days
        keys = {
            "platform": np.repeat(self.layout.platforms, days),
            "country": np.repeat(self.layout.countries, days),
            "app_version": np.repeat(self.layout.versions, days),
        }
        leaf_keys = {name: np.repeat(values, days) for name, values in self._leaf_columns().items()}
        leaves = len(self.leaves)
        daily = pd.DataFrame({"date": np.tile(calendar.iso_dates, leaves), **leaf_keys})
        for position, column in enumerate(COUNT_COLUMNS):
            daily[column] = self.leaves[..., position].reshape(-1)
        for metric in CONVERSION_METRICS:
            daily[metric.name] = daily[metric.numerator] / daily[metric.denominator].where(
                daily[metric.denominator] > 0
            )
        hourly = pd.DataFrame(
            {
                "date": np.tile(np.repeat(calendar.iso_dates, HOURS), cells),
                "hour": np.tile(np.arange(HOURS), cells * days),
                **{name: np.repeat(values, HOURS) for name, values in keys.items()},
            }
        )
        for position, column in enumerate(COUNT_COLUMNS):
            hourly[column] = self.hourly[..., position].reshape(-1)
        releases = pd.DataFrame(
            self.release_rows(), columns=["platform", "app_version", "rollout_start", "date", "rollout_share"]
        )
        return {"daily_by_segment": daily, "hourly_by_segment": hourly, "releases": releases}

    def sql_tables(self) -> dict[str, SqlTable]:
        """The same tables as `tables`, as the SQL tool's columns built straight from the arrays: dates as
        datetime64 (DATE), the dimensions as Labels (VARCHAR), counts and hours as int32 (INTEGER: a cell's
        count is far below 2**31). daily_by_segment is at the finest grain (a column per dimension),
        hourly_by_segment at the cells'."""
        cells, days = self.layout.size, self.num_days
        leaves = len(self.leaves)
        dates = np.arange(days).astype("timedelta64[D]") + np.datetime64(WINDOW_START, "D")
        cell_codes = {
            name: self._dimension_codes(name, column)
            for name, column in zip(CELL_FIELDS, self._cell_columns(), strict=True)
        }
        leaf_codes = {name: self._dimension_codes(name, column) for name, column in self._leaf_columns().items()}

        def keys(codes: dict[str, tuple[np.ndarray, tuple[str, ...]]], repeat: int) -> dict[str, Labels]:
            return {name: Labels(np.repeat(code, repeat), values) for name, (code, values) in codes.items()}

        counts = self.leaves.reshape(leaves * days, len(COUNT_COLUMNS))
        daily: SqlTable = {
            "date": np.tile(dates, leaves),
            **keys(leaf_codes, days),
            **{column: counts[:, i].astype(np.int32) for i, column in enumerate(COUNT_COLUMNS)},
        }
        for metric in CONVERSION_METRICS:
            numerator = counts[:, COUNT_COLUMNS.index(metric.numerator)].astype(float)
            denominator = counts[:, COUNT_COLUMNS.index(metric.denominator)]
            daily[metric.name] = np.divide(
                numerator, denominator, out=np.full(len(counts), np.nan), where=denominator > 0
            )
        counts = self.hourly.reshape(cells * days * HOURS, len(COUNT_COLUMNS))
        hourly: SqlTable = {
            "date": np.tile(np.repeat(dates, HOURS), cells),
            "hour": np.tile(np.arange(HOURS, dtype=np.int32), cells * days),
            **keys(cell_codes, days * HOURS),
            **{column: counts[:, i].astype(np.int32) for i, column in enumerate(COUNT_COLUMNS)},
        }
        rows = self.release_rows()
        releases: SqlTable = {
            "platform": np.array([row["platform"] for row in rows], dtype=object),
            "app_version": np.array([row["app_version"] for row in rows], dtype=object),
            "rollout_start": np.array([row["rollout_start"] for row in rows], dtype="datetime64[D]"),
            "date": np.array([row["date"] for row in rows], dtype="datetime64[D]"),
            "rollout_share": np.array([row["rollout_share"] for row in rows], dtype=float),
        }
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
