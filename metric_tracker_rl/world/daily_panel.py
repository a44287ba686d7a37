"""Daily series for every entity and the published baseline rule, computed once per episode.

Both the analysis tools and the ground-truth builder read values through this module, so a row an agent
derives from the tools and the row the grader expects use one definition of "baseline".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from metric_tracker_rl.catalog.published import (
    CONVERSION_BY_NAME,
    COUNT_COLUMNS,
    ENTITY_NAMES,
    ENTITY_TYPES,
    SEVERITIES,
    severity_indices,
)
from metric_tracker_rl.world.funnel import HOURS, FunnelData

MAD_TO_SIGMA = 1.4826
COLUMN_INDEX = {name: i for i, name in enumerate(COUNT_COLUMNS)}
ROW_FIELDS = ("baseline_value", "observed_value", "delta_value", "robust_z", "severity")
# The (entity_type, entity_name) of each panel row, the same for every episode.
PANEL_KEYS: tuple[tuple[str, str], ...] = tuple((t, n) for t in ENTITY_TYPES for n in ENTITY_NAMES[t])


def safe_ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio: np.ndarray = np.where(denominator > 0, numerator / np.maximum(denominator, 1), np.nan)
    return ratio


def count_ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """safe_ratio of counts (whole numbers, so a positive denominator is at least 1): the same values, with the
    division done only where the denominator is positive."""
    ratio: np.ndarray = np.divide(
        numerator, denominator, out=np.full(np.shape(numerator), np.nan), where=denominator > 0
    )
    return ratio


def nan_to_zero(values: np.ndarray) -> np.ndarray:
    """np.nan_to_num(values, nan=0.0) as a new array; most panels hold no NaN, and then a copy is all it takes
    (nan_to_num's own checks cost more than the copy)."""
    filled: np.ndarray = values.copy() if np.isfinite(values).all() else np.nan_to_num(values, nan=0.0)
    return filled


def sum_over_hours(values: np.ndarray) -> np.ndarray:
    """values.sum(axis=1) of a (D, 24, 5) array, bit for bit, at a third of the cost on arrays this small: with
    the five events innermost, both add the hours one after another (over a single event numpy would sum
    pairwise instead, so this is only for the panel's per-event arrays)."""
    sums: np.ndarray = np.einsum("dhe->de", values)
    return sums


@cache
def same_weekday_peers(num_days: int) -> np.ndarray:
    """(D, W) indices of the same weekday in the other weeks, padded with -1 (cached, read-only)."""
    peers = [[j for j in range(d % 7, num_days, 7) if j != d] for d in range(num_days)]
    width = max(len(p) for p in peers)
    table = np.array([p + [-1] * (width - len(p)) for p in peers])
    table.setflags(write=False)
    return table


@cache
def same_weekday_peer_lists(num_days: int) -> tuple[tuple[int, ...], ...]:
    """same_weekday_peers without the padding, as plain ints (cached)."""
    return tuple(tuple(int(p) for p in row if p >= 0) for row in same_weekday_peers(num_days))


def nanmedian_last_axis(values: np.ndarray) -> np.ndarray:
    """np.nanmedian(values, axis=-1) without its per-call masked-array overhead (same numbers).

    One sort puts NaN last; the median is read at the middle ranks of the non-NaN prefix and, like numpy,
    the two middle values of an even count are averaged as (low + high) / 2. An all-NaN slice gives NaN
    without a warning. Without any NaN (the usual case) the middle ranks are the same for every slice.
    """
    ordered = np.sort(values, axis=-1)
    size = ordered.shape[-1]
    if size and not np.isnan(ordered[..., -1]).any():  # NaN sorts last: no NaN anywhere
        middle: np.ndarray = (
            ordered[..., size // 2] if size % 2 else (ordered[..., size // 2 - 1] + ordered[..., size // 2]) / 2
        )
        return middle
    count = np.count_nonzero(~np.isnan(ordered), axis=-1)[..., None]
    last = size - 1
    low = np.take_along_axis(ordered, np.clip((count - 1) // 2, 0, last), axis=-1)
    high = np.take_along_axis(ordered, np.minimum(count // 2, last), axis=-1)
    # An odd count has one middle value, taken as it is: (x + x) / 2 would overflow for |x| above half the
    # largest float, where numpy returns x.
    middles = np.where(count % 2 == 1, low, (low + high) / 2)
    medians: np.ndarray = np.where(count > 0, middles, np.nan)[..., 0]
    return medians


def _median_of_three(first: np.ndarray, second: np.ndarray, third: np.ndarray) -> np.ndarray:
    """The middle value of three NaN-free arrays, element by element (one of the three values, as a sort gives)."""
    middle: np.ndarray = np.maximum(np.minimum(first, second), np.minimum(np.maximum(first, second), third))
    return middle


def peer_median(values: np.ndarray, peers: np.ndarray) -> np.ndarray:
    """Median over each date's peers along the last axis of `values` (shape (..., D))."""
    if peers.min() >= 0:  # every date has the same number of peers (whole weeks): no padding to mask
        if peers.shape[-1] == 3 and not np.isnan(values).any():  # four weeks: the middle of three values
            return _median_of_three(values[..., peers[:, 0]], values[..., peers[:, 1]], values[..., peers[:, 2]])
        return nanmedian_last_axis(values[..., peers])
    gathered = values[..., np.maximum(peers, 0)]  # (..., D, W)
    gathered = np.where(peers >= 0, gathered, np.nan)
    return nanmedian_last_axis(gathered)


def leave_one_out_median(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Per date, the median over the other dates of the same group (axis 0 is the date).

    Each group of n dates is sorted once (s_0 <= ... <= s_{n-1}). Leaving a date out shifts every rank above it
    down by one, so the value at rank i of the other n - 1 dates is s_{i+1} when the date's own value x is at
    most s_i, and s_i otherwise (with x == s_i both are equal). The median needs the one or two middle ranks.
    NaN follows np.median: the result is NaN when any of the other dates is NaN.
    """
    values = np.asarray(values, dtype=float)
    result = np.empty_like(values)
    for group in sorted(set(groups.tolist())):
        members = np.flatnonzero(groups == group)
        block = values[members]
        size = len(members)
        if size == 1:
            result[members] = block
            continue
        ordered = np.sort(block, axis=0)
        others = size - 1
        low = (others - 1) // 2
        median = np.where(block <= ordered[low], ordered[low + 1], ordered[low])
        if others % 2 == 0:
            high = np.where(block <= ordered[low + 1], ordered[low + 2], ordered[low + 1])
            median = (median + high) / 2
        missing = np.isnan(ordered[-1])  # NaN sorts last: the columns holding any NaN
        if missing.any():
            nan_count = np.isnan(block).sum(axis=0)
            median = np.where(nan_count - np.isnan(block) > 0, np.nan, median)
        result[members] = median
    return result


def hourly_profiles(data: FunnelData) -> tuple[np.ndarray, np.ndarray]:
    """Each date's hour-of-day share per event (D, 24, 5) and its baseline profile (same day type)."""
    daily = data.daily[:, None, :]
    shares = np.divide(data.hourly, daily, out=np.zeros(data.hourly.shape), where=daily > 0)
    baseline = leave_one_out_median(shares, data.weekend)
    totals = sum_over_hours(baseline)[:, None, :]
    baseline = np.divide(baseline, totals, out=np.zeros_like(baseline), where=totals > 0)
    return shares, baseline


@cache
def key_positions(keys: tuple[tuple[str, str], ...]) -> dict[tuple[str, str], int]:
    """Row of each (entity_type, entity_name) in a panel (cached: every panel lists the same keys; read only)."""
    return {key: i for i, key in enumerate(keys)}


@dataclass(frozen=True)
class MetricPanel:
    """values/baseline/delta/z have shape (K, D) for the K entities listed in `keys`.

    delta and z (and their NaN-free copies, NaN read as 0) are derived once here: tools read them on every call.
    """

    keys: tuple[tuple[str, str], ...]
    values: np.ndarray
    baseline: np.ndarray
    spread: np.ndarray  # (K,) robust standard deviation of values - baseline
    hourly_share: np.ndarray  # (D, 24, 5)
    hourly_baseline_share: np.ndarray  # (D, 24, 5)
    delta: np.ndarray = field(init=False)  # values - baseline
    z: np.ndarray = field(init=False)  # delta / spread
    filled_delta: np.ndarray = field(init=False)  # delta with NaN as 0
    filled_z: np.ndarray = field(init=False)  # z with NaN as 0
    _positions: dict[tuple[str, str], int] = field(init=False, repr=False, compare=False)
    # Each entity's plain lists, converted on first use (see entity_lists).
    _entity_lists: dict[int, tuple[list[float], list[float], list[float], list[str | None]]] = field(
        init=False, repr=False, compare=False
    )

    def index(self, entity_type: str, entity_name: str) -> int:
        return self._positions[(entity_type, entity_name)]

    def row(self, entity_type: str, entity_name: str, day: int) -> dict[str, float | str | None]:
        """The published numbers of one entity on one date (None where the date has no finite value)."""
        return dict(zip(ROW_FIELDS, self.numbers(self._positions[(entity_type, entity_name)], day), strict=True))

    def numbers(self, k: int, day: int) -> tuple[float | None, float | None, float | None, float | None, str | None]:
        """row() of entity k as a tuple in ROW_FIELDS order."""
        observed, baseline, z, severity = self.entity_lists(k)
        if severity[day] is None:
            return None, None, None, None, None
        z_value = z[day]
        return (
            baseline[day],
            observed[day],
            observed[day] - baseline[day],
            z_value if math.isfinite(z_value) else None,
            severity[day],
        )

    def entity_lists(self, k: int) -> tuple[list[float], list[float], list[float], list[str | None]]:
        """Entity k's values, baselines, z-scores and severities (None where not finite) as plain lists.

        Tools answer from these: indexing a list costs a fraction of indexing a numpy array. Each entity is
        converted on its first use, so an episode holds lists only for the entities its agent looks at."""
        lists = self._entity_lists.get(k)
        if lists is None:
            values, baseline = self.values[k], self.baseline[k]
            finite = np.isfinite(values) & np.isfinite(baseline)
            # The published rule over the whole series at once (non-finite dates get no severity).
            labels = severity_indices(self.keys[k][0], np.where(finite, baseline, 0.0), np.where(finite, values, 0.0))
            severity: list[str | None] = [
                SEVERITIES[i] if ok else None for i, ok in zip(labels.tolist(), finite.tolist(), strict=True)
            ]
            lists = self._entity_lists[k] = (values.tolist(), baseline.tolist(), self.z[k].tolist(), severity)
        return lists

    def __post_init__(self) -> None:
        object.__setattr__(self, "_positions", key_positions(self.keys))
        delta = self.values - self.baseline
        with np.errstate(all="ignore"):
            z = delta / self.spread[:, None]
        object.__setattr__(self, "delta", delta)
        object.__setattr__(self, "z", z)
        object.__setattr__(self, "filled_delta", nan_to_zero(delta))
        object.__setattr__(self, "filled_z", nan_to_zero(z))
        object.__setattr__(self, "_entity_lists", {})


def _row_sources() -> dict[str, tuple[np.ndarray, ...]]:
    """Where each panel row's daily series comes from, as index arrays: a count column (event counts and data
    quality), a ratio of two count columns (conversion rates and funnel steps), or an hour-mix column."""
    sources: dict[str, list[tuple[int, ...]]] = {"count": [], "rate": [], "mix": []}
    for row, (entity_type, name) in enumerate(PANEL_KEYS):
        if entity_type in ("event_count", "data_quality"):
            sources["count"].append((row, COLUMN_INDEX[name]))
        elif entity_type in ("conversion_rate", "funnel_step"):
            metric = CONVERSION_BY_NAME[name]
            sources["rate"].append((row, COLUMN_INDEX[metric.numerator], COLUMN_INDEX[metric.denominator]))
        elif entity_type == "hourly_mix":
            sources["mix"].append((row, COLUMN_INDEX[name]))
        else:
            raise ValueError(f"no daily series is defined for entity type {entity_type!r}")
    return {kind: tuple(np.array(column) for column in zip(*rows, strict=True)) for kind, rows in sources.items()}


ROW_SOURCES = _row_sources()


def daily_values(daily: np.ndarray) -> np.ndarray:
    """(K, D) each panel row's series from (D, 5) daily counts: counts and rates; the hourly-mix rows are NaN (a
    distance from the usual hours needs the hours)."""
    counts = daily.T.astype(float)  # (5, D)
    values = np.full((len(PANEL_KEYS), counts.shape[1]), np.nan)
    rows, columns = ROW_SOURCES["count"]
    values[rows] = counts[columns]
    rows, numerators, denominators = ROW_SOURCES["rate"]
    values[rows] = count_ratio(counts[numerators], counts[denominators])
    return values


def _published_panel(values: np.ndarray, shares: np.ndarray, baseline_shares: np.ndarray) -> MetricPanel:
    """The panel of these series with their baselines and spreads by the published rule."""
    baseline = peer_median(values, same_weekday_peers(values.shape[1]))
    mad = nanmedian_last_axis(np.abs(values - baseline))
    scale = nanmedian_last_axis(np.abs(baseline))
    spread = np.maximum(MAD_TO_SIGMA * nan_to_zero(mad), 1e-6 * nan_to_zero(scale) + 1e-9)
    return MetricPanel(PANEL_KEYS, values, baseline, spread, shares, baseline_shares)


def build_panel(data: FunnelData) -> MetricPanel:
    values = daily_values(data.daily)
    shares, baseline_shares = hourly_profiles(data)
    distance = 0.5 * sum_over_hours(np.abs(shares - baseline_shares))  # (D, 5)
    rows, columns = ROW_SOURCES["mix"]
    values[rows] = distance.T[columns]
    return _published_panel(values, shares, baseline_shares)


def build_daily_panel(daily: np.ndarray) -> MetricPanel:
    """The panel of a segment with daily counts only (deep's channel and user type split a cell's days, not its
    hours): its counts and rates with their baselines, as build_panel gives a funnel's, and no hourly mix (its
    rows and hourly shares are NaN)."""
    no_hours = np.full((daily.shape[0], HOURS, daily.shape[1]), np.nan)
    return _published_panel(daily_values(daily), no_hours, no_hours)
