"""Daily series for every entity and the published baseline rule, computed once per episode.

Both the analysis tools and the ground-truth builder read values through this module, so a row an agent
derives from the tools and the row the grader expects use one definition of "baseline".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metric_tracker_rl.catalog import (
    CONVERSION_BY_NAME,
    CONVERSION_METRIC_NAMES,
    COUNT_COLUMNS,
    ENTITY_NAMES,
    ENTITY_TYPES,
    FUNNEL_STEPS,
    severity_for,
)
from metric_tracker_rl.funnel import FunnelData

MAD_TO_SIGMA = 1.4826
COLUMN_INDEX = {name: i for i, name in enumerate(COUNT_COLUMNS)}


def safe_ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.maximum(denominator, 1), np.nan)


def same_weekday_peers(num_days: int) -> np.ndarray:
    """(D, W) indices of the same weekday in the other weeks, padded with -1."""
    peers = [[j for j in range(d % 7, num_days, 7) if j != d] for d in range(num_days)]
    width = max(len(p) for p in peers)
    return np.array([p + [-1] * (width - len(p)) for p in peers])


def peer_median(values: np.ndarray, peers: np.ndarray) -> np.ndarray:
    """Median over each date's peers along the last axis of `values` (shape (..., D))."""
    gathered = values[..., np.maximum(peers, 0)]  # (..., D, W)
    gathered = np.where(peers >= 0, gathered, np.nan)
    with np.errstate(all="ignore"):
        return np.nanmedian(gathered, axis=-1)


def leave_one_out_median(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Per date, the median over the other dates of the same group (axis 0 is the date)."""
    result = np.empty_like(values, dtype=float)
    for group in np.unique(groups):
        members = np.flatnonzero(groups == group)
        block = values[members]
        for position, day in enumerate(members):
            result[day] = np.median(np.delete(block, position, axis=0), axis=0) if len(members) > 1 else block[0]
    return result


def hourly_profiles(data: FunnelData) -> tuple[np.ndarray, np.ndarray]:
    """Each date's hour-of-day share per event (D, 24, 5) and its baseline profile (same day type)."""
    shares = safe_ratio(data.hourly.astype(float), data.daily[:, None, :].astype(float))
    shares = np.nan_to_num(shares, nan=0.0)
    baseline = leave_one_out_median(shares, data.weekend.astype(int))
    totals = baseline.sum(axis=1, keepdims=True)
    baseline = np.divide(baseline, totals, out=np.zeros_like(baseline), where=totals > 0)
    return shares, baseline


@dataclass(frozen=True)
class MetricPanel:
    """values/baseline/z have shape (K, D) for the K entities listed in `keys`."""

    keys: tuple[tuple[str, str], ...]
    values: np.ndarray
    baseline: np.ndarray
    spread: np.ndarray  # (K,) robust standard deviation of values - baseline
    hourly_share: np.ndarray  # (D, 24, 5)
    hourly_baseline_share: np.ndarray  # (D, 24, 5)

    @property
    def delta(self) -> np.ndarray:
        return self.values - self.baseline

    @property
    def z(self) -> np.ndarray:
        with np.errstate(all="ignore"):
            return self.delta / self.spread[:, None]

    def index(self, entity_type: str, entity_name: str) -> int:
        return self._positions[(entity_type, entity_name)]

    def row(self, entity_type: str, entity_name: str, day: int) -> dict[str, float | str | None]:
        k = self.index(entity_type, entity_name)
        observed, baseline = float(self.values[k, day]), float(self.baseline[k, day])
        finite = np.isfinite(observed) and np.isfinite(baseline)
        return {
            "baseline_value": baseline if finite else None,
            "observed_value": observed if finite else None,
            "delta_value": observed - baseline if finite else None,
            "robust_z": float(self.z[k, day]) if finite and np.isfinite(self.z[k, day]) else None,
            "severity": severity_for(entity_type, baseline, observed) if finite else None,
        }

    def __post_init__(self) -> None:
        object.__setattr__(self, "_positions", {key: i for i, key in enumerate(self.keys)})


def build_panel(data: FunnelData) -> MetricPanel:
    daily = data.daily.astype(float)
    series: dict[tuple[str, str], np.ndarray] = {}
    for name in COUNT_COLUMNS:
        series[("event_count", name)] = daily[:, COLUMN_INDEX[name]]
    for name in CONVERSION_METRIC_NAMES:
        metric = CONVERSION_BY_NAME[name]
        series[("conversion_rate", name)] = safe_ratio(
            daily[:, COLUMN_INDEX[metric.numerator]], daily[:, COLUMN_INDEX[metric.denominator]]
        )
    for name in FUNNEL_STEPS:
        series[("funnel_step", name)] = series[("conversion_rate", name)]
    shares, baseline_shares = hourly_profiles(data)
    distance = 0.5 * np.abs(shares - baseline_shares).sum(axis=1)  # (D, 5)
    for name in COUNT_COLUMNS:
        series[("hourly_mix", name)] = distance[:, COLUMN_INDEX[name]]
    for name in ENTITY_NAMES["data_quality"]:
        series[("data_quality", name)] = series[("event_count", name)]

    keys = tuple((t, n) for t in ENTITY_TYPES for n in ENTITY_NAMES[t])
    values = np.vstack([series[k] for k in keys])
    baseline = peer_median(values, same_weekday_peers(values.shape[1]))
    with np.errstate(all="ignore"):
        mad = np.nanmedian(np.abs(values - baseline), axis=1)
        scale = np.nanmedian(np.abs(baseline), axis=1)
    spread = np.maximum(MAD_TO_SIGMA * np.nan_to_num(mad), 1e-6 * np.nan_to_num(scale) + 1e-9)
    return MetricPanel(keys, values, baseline, spread, shares, baseline_shares)
