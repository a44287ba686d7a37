"""The segmented world of the `frontier` difficulty: what is public about it, and its counts.

At frontier, traffic is split into cells (platform, country, app version). Every cell has its own hourly and
daily counts; the aggregate funnel every other tool reads is their sum. Segments differ in level and in
conversion (web and two countries convert lower), so a move of traffic toward them moves the aggregate's
conversion while no segment's own conversion changes. Mobile releases roll out over several days, so the
version shares of ios and android change date by date; web has one version label.

Everything in this module is public (the brief and the tools may read it): the dimensions, their values, the
holiday calendar, the release schedule of an episode and the counts. How incidents were injected lives in
frontier.py and metric_tracker_rl/incident_kinds/, which the tools cannot import.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING

import numpy as np

from metric_tracker_rl.catalog import CONVERSION_METRICS, COUNT_COLUMNS, FRONTIER_WINDOW_DAYS
from metric_tracker_rl.funnel import HOURS, WINDOW_START, FunnelData, window_calendar
from metric_tracker_rl.sql_columns import Labels, SqlTable

if TYPE_CHECKING:
    import pandas as pd

PLATFORMS: tuple[str, ...] = ("ios", "android", "web")
MOBILE_PLATFORMS: tuple[str, ...] = ("ios", "android")
COUNTRIES: tuple[str, ...] = ("US", "GB", "DE", "BR", "IN")  # five: the reset budget pays per cell
WEB_VERSION = "web"  # web serves one build: its only app_version label
SEGMENT_FIELDS: tuple[str, ...] = ("platform", "country", "app_version")
# Each mobile platform ships RELEASES_PER_PLATFORM releases in the window, on top of the version live at its start.
RELEASES_PER_PLATFORM = 2

# Shares of traffic (they sum to 1 per dimension) and per-step conversion factors (menu, cart, order, payment).
PLATFORM_SHARE = {"ios": 0.36, "android": 0.44, "web": 0.20}
COUNTRY_SHARE = {"US": 0.32, "GB": 0.16, "DE": 0.16, "BR": 0.18, "IN": 0.18}
PLATFORM_RATE_FACTORS = {"ios": (1.04, 1.05, 1.03, 1.01), "android": (1.0, 0.97, 0.97, 0.99),
                         "web": (0.9, 0.84, 0.92, 0.98)}
COUNTRY_RATE_FACTORS = {"US": (1.03, 1.04, 1.02, 1.0), "GB": (1.02, 1.02, 1.01, 1.0), "DE": (1.0, 1.01, 1.0, 1.0),
                        "BR": (0.95, 0.9, 0.95, 0.97), "IN": (0.92, 0.85, 0.93, 0.96)}
# The staged rollout of a mobile release: the share of the platform's users offered it, day by day from its start.
ROLLOUT_STAGES: tuple[float, ...] = (0.05, 0.2, 0.5, 1.0)
UPDATE_ADOPTION = 0.95  # offered users who run the new version (the rest stay on the one before)

# The calendar's holidays (annotated): lower traffic with a weekend-like day. Fixed dates, the same every episode.
HOLIDAYS: dict[str, str] = {"2026-04-03": "Good Friday", "2026-04-06": "Easter Monday"}
HOLIDAY_TRAFFIC_FACTOR = 0.8

RELEASE_MEANING = (
    "A release annotation says a new app version started a staged rollout on one platform (see get_releases for "
    "its rollout share by date). A release sometimes breaks something on the new version only: such an incident "
    "is confined to that platform and version and its aggregate footprint grows with the rollout; most releases "
    "change nothing."
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
    """A set of cells named by its fields; None means every value of that dimension."""

    platform: str | None = None
    country: str | None = None
    app_version: str | None = None

    def label(self) -> str:
        parts = [f"{name}={value}" for name, value in zip(SEGMENT_FIELDS, self.values(), strict=True)
                 if value is not None]
        return ", ".join(parts) or "all traffic"

    def values(self) -> tuple[str | None, str | None, str | None]:
        return self.platform, self.country, self.app_version

    def normalised(self) -> Segment:
        """Web has one version: platform=web with or without app_version=web names the same cells."""
        if self.app_version == WEB_VERSION:
            return Segment("web", self.country, None) if self.platform in (None, "web") else self
        return self

    @property
    def is_aggregate(self) -> bool:
        return self.values() == (None, None, None)


@dataclass(frozen=True)
class CellLayout:
    """The cells of an episode: every (platform, version, country), mobile versions oldest first."""

    platforms: tuple[str, ...]
    countries: tuple[str, ...]
    versions: tuple[str, ...]

    @property
    def size(self) -> int:
        return len(self.platforms)

    def mask(self, segment: Segment) -> np.ndarray:
        """(S,) bool: the cells inside a segment."""
        segment = segment.normalised()
        keep = np.ones(self.size, dtype=bool)
        for wanted, values in ((segment.platform, self.platforms), (segment.country, self.countries),
                               (segment.app_version, self.versions)):
            if wanted is not None:
                keep &= np.array([value == wanted for value in values])
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
def cell_layout(base_minor: int) -> CellLayout:
    platforms, countries, versions = [], [], []
    for platform in PLATFORMS:
        labels = version_labels(base_minor) if platform in MOBILE_PLATFORMS else (WEB_VERSION,)
        for version in labels:
            for country in COUNTRIES:
                platforms.append(platform)
                countries.append(country)
                versions.append(version)
    return CellLayout(tuple(platforms), tuple(countries), tuple(versions))


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


def cell_mix(layout: CellLayout) -> tuple[np.ndarray, np.ndarray]:
    """(S,) expected share of traffic of each cell's platform and country, and (S, 4) its conversion factors."""
    share = np.array([PLATFORM_SHARE[p] * COUNTRY_SHARE[c] for p, c in zip(layout.platforms, layout.countries,
                                                                             strict=True)])
    factors = np.array([np.multiply(PLATFORM_RATE_FACTORS[p], COUNTRY_RATE_FACTORS[c])
                        for p, c in zip(layout.platforms, layout.countries, strict=True)])
    return share, factors


def holiday_days(num_days: int = FRONTIER_WINDOW_DAYS) -> dict[int, str]:
    """Positions of the calendar's holidays inside a window of this length."""
    days = {}
    for iso, name in HOLIDAYS.items():
        day = (dt.date.fromisoformat(iso) - WINDOW_START).days
        if 0 <= day < num_days:
            days[day] = name
    return days


@dataclass(frozen=True)
class SegmentedData:
    """The public counts of every cell: hourly (S, D, 24, 5), daily (S, D, 5), and the release schedule."""

    layout: CellLayout
    releases: tuple[Release, ...]
    hourly: np.ndarray
    daily: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "daily", self.hourly.sum(axis=2))
        for array in (self.hourly, self.daily):
            array.setflags(write=False)

    @property
    def num_days(self) -> int:
        return self.hourly.shape[1]

    def dimension_values(self) -> dict[str, list[str]]:
        return {name: list(self.layout.values_of(name)) for name in SEGMENT_FIELDS}

    def segment_funnel(self, segment: Segment) -> FunnelData:
        """The funnel of one segment (the sum of its cells), as the aggregate tools read a funnel."""
        mask = self.layout.mask(segment)
        if not mask.any():
            raise ValueError(f"no traffic cell matches {segment.label()}")
        calendar = window_calendar(self.num_days)
        return FunnelData(dates=calendar.iso_dates, weekdays=calendar.weekday_names, weekend=calendar.weekend,
                          hourly=self.hourly[mask].sum(axis=0))

    def release_rows(self) -> list[dict[str, object]]:
        """One row per release and date from its start: the share of the platform's users it was offered."""
        dates = window_calendar(self.num_days).iso_dates
        rows: list[dict[str, object]] = []
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
        daily = pd.DataFrame({"date": np.tile(calendar.iso_dates, cells), **keys})
        for position, column in enumerate(COUNT_COLUMNS):
            daily[column] = self.daily[..., position].reshape(-1)
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
        count is far below 2**31)."""
        cells, days = self.layout.size, self.num_days
        dates = np.arange(days).astype("timedelta64[D]") + np.datetime64(WINDOW_START, "D")
        dimensions = {name: self._dimension_codes(name) for name in SEGMENT_FIELDS}

        def keys(repeat: int) -> dict[str, Labels]:
            return {name: Labels(np.repeat(codes, repeat), values) for name, (codes, values) in dimensions.items()}

        counts = self.daily.reshape(cells * days, len(COUNT_COLUMNS))
        daily: SqlTable = {"date": np.tile(dates, cells), **keys(days),
                           **{column: counts[:, i].astype(np.int32) for i, column in enumerate(COUNT_COLUMNS)}}
        for metric in CONVERSION_METRICS:
            numerator = counts[:, COUNT_COLUMNS.index(metric.numerator)].astype(float)
            denominator = counts[:, COUNT_COLUMNS.index(metric.denominator)]
            daily[metric.name] = np.divide(numerator, denominator, out=np.full(len(counts), np.nan),
                                           where=denominator > 0)
        counts = self.hourly.reshape(cells * days * HOURS, len(COUNT_COLUMNS))
        hourly: SqlTable = {"date": np.tile(np.repeat(dates, HOURS), cells),
                            "hour": np.tile(np.arange(HOURS, dtype=np.int32), cells * days), **keys(days * HOURS),
                            **{column: counts[:, i].astype(np.int32) for i, column in enumerate(COUNT_COLUMNS)}}
        rows = self.release_rows()
        releases: SqlTable = {
            "platform": np.array([row["platform"] for row in rows], dtype=object),
            "app_version": np.array([row["app_version"] for row in rows], dtype=object),
            "rollout_start": np.array([row["rollout_start"] for row in rows], dtype="datetime64[D]"),
            "date": np.array([row["date"] for row in rows], dtype="datetime64[D]"),
            "rollout_share": np.array([row["rollout_share"] for row in rows], dtype=float)}
        return {"daily_by_segment": daily, "hourly_by_segment": hourly, "releases": releases}

    def _dimension_codes(self, name: str) -> tuple[np.ndarray, tuple[str, ...]]:
        """(S,) each cell's position among the dimension's values, and the values."""
        values = self.layout.values_of(name)
        column = {"platform": self.layout.platforms, "country": self.layout.countries,
                  "app_version": self.layout.versions}[name]
        position = {value: i for i, value in enumerate(values)}
        return np.array([position[value] for value in column], dtype=np.int8), values


SEGMENT_REPORTING = (
    "At frontier every incident is confined to a segment: report it with the platform, country and/or app_version "
    "that name the segment (omit a field to mean all its values; web has the single app_version 'web'), and read "
    "its baseline, observed value and delta from that segment's own data with the published baseline rule. The "
    "exact segment earns full credit, a correct parent (the right platform, no version) half, the right platform "
    "with a wrong version or a segment narrower than the incident a quarter, the aggregate or a wrong segment none."
)
BENIGN_AT_FRONTIER = (
    "Unannotated and benign, with sizes that overlap incidents' (no threshold separates them): more traffic from a "
    "low-converting segment (the aggregate's conversion moves, no segment's own does); a segment's demand rising or "
    "falling all day with every event and hour together; a segment using the app a few hours earlier or later. "
    "Holidays and releases are annotated. The signature tells incidents apart: which hours, which segment, which "
    "metrics move together, and when it started."
)


def frontier_brief() -> dict[str, object]:
    """What the brief publishes about the segmented world (the same for every frontier episode)."""
    return {
        "dimensions": {"platform": ",".join(PLATFORMS), "country": ",".join(COUNTRIES),
                       "app_version": f"{WEB_VERSION} on web; on ios and android the version live at the window's "
                                      f"start and {RELEASES_PER_PLATFORM} releases per platform (get_releases)"},
        "traffic_split": "every count exists per (platform, country, app_version) cell; the aggregate funnel the "
                         "other tools read is their sum",
        "conversion": "web, BR and IN convert lower than the rest",
        "holidays": ", ".join(f"{date} {name}" for date, name in HOLIDAYS.items()),
        "releases": RELEASE_MEANING,
        "reporting": SEGMENT_REPORTING,
    }
