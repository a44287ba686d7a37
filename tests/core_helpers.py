"""Small helpers shared by the in-process core tests (episodes built from reset-style settings)."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from metric_tracker_rl.catalog.published import row_key
from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.catalog.tiers import TIERS
from metric_tracker_rl.generation import build_episode
from metric_tracker_rl.generation.episode import Episode
from metric_tracker_rl.generation.kinds import KIND_FAMILY
from metric_tracker_rl.generation.segmented import LISTED_KIND_FAMILIES, DrawnWorld, build_world
from metric_tracker_rl.models import MetricSubmissionRow

ROOT = Path(__file__).resolve().parents[1]
# The listed tiers a reset's segment knobs (decoy_ratio, ...) and its cuboid dial (max_cuboid_depth, ...) apply at,
# as a reset's error names them: read off each tier's config, so listing a tier extends them. A tier that hides its
# mechanisms refuses every knob that names or sizes one (the only ones these name), so neither names it.
SEGMENT_KNOB_TIERS = " or ".join(
    repr(name)
    for name, tier in TIERS.items()
    if tier.listed and tier.segmented is not None and not tier.hides_mechanisms
)
# The segmented tiers whose brief describes their kinds (a tier that hides its mechanisms publishes none).
PUBLISHING_MECHANISMS = tuple(name for name, tier in TIERS.items() if tier.dimensions and not tier.hides_mechanisms)
CUBOID_DIAL_TIERS = " or ".join(
    repr(name)
    for name, tier in TIERS.items()
    if tier.listed and not tier.hides_mechanisms and tier.segmented is not None and tier.segmented.cuboid_root_causes
)


def draws_family(difficulty: str, family: str) -> bool:
    """Whether a tier draws incidents of `family` (a scenario_family): every family at an aggregate tier; at a
    segmented one, those its kinds report and those no kind reports (the family's own injector stands in), not
    those only a kind a listed tier draws and it leaves out reports."""
    kinds = TIERS[difficulty].incident_kinds
    return not kinds or family in {KIND_FAMILY[k] for k in kinds} or family not in LISTED_KIND_FAMILIES


def reset_episode(**reset: Any) -> Episode:
    """The episode a reset with these arguments builds, at the tier its difficulty names."""
    config = resolve_episode_config(**reset)
    return build_episode(config)


def reset_world(**reset: Any) -> DrawnWorld:
    """The segmented world (before its truth) a reset with these arguments draws, at its tier."""
    config = resolve_episode_config(**reset)
    return build_world(TIERS[config.difficulty], config)


class ShownEpisode:
    """An episode's parts under a repr of its config only, so failure reports (and hypothesis, which
    pretty-prints dataclasses field by field) stay short."""

    def __init__(self, built: Episode) -> None:
        self.config, self.public, self.truth = built.config, built.public, built.truth

    def __repr__(self) -> str:
        c = self.config
        return f"Episode(seed={c.seed}, {c.scenario_family!r}, {c.difficulty!r}, anomaly_count={c.anomaly_count})"


@lru_cache(maxsize=512)
def episode(
    seed: int, scenario_family: str = "mixed", difficulty: str = "hard", anomaly_count: int | None = None
) -> ShownEpisode:
    """A cached episode (episodes are immutable, so sharing one between tests is safe)."""
    built = reset_episode(
        seed=seed, scenario_family=scenario_family, difficulty=difficulty, anomaly_count=anomaly_count
    )
    return ShownEpisode(built)


def custom_episode(seed: int, anomalies: list[dict], difficulty: str = "easy") -> Episode:
    return reset_episode(seed=seed, anomalies=anomalies, difficulty=difficulty)


def key_of(row: MetricSubmissionRow | dict) -> str:
    if isinstance(row, dict):
        return row_key(row["date"], row["entity_type"], row["entity_name"])
    return row_key(row.date, row.entity_type, row.entity_name)


def same_weekday_median(series: np.ndarray, day: int) -> float:
    """Median of a daily series over the same weekday in the other weeks (written independently of the core)."""
    peers = [series[j] for j in range(len(series)) if j % 7 == day % 7 and j != day]
    return float(np.median(peers))


def data_digest(seed: int) -> str:
    """sha256 of a hard task episode's public counts and dates."""
    data = reset_episode(task_id="hard_mixed_multi", seed=seed).public.data
    return hashlib.sha256(data.hourly.tobytes() + data.daily.tobytes() + "|".join(data.dates).encode()).hexdigest()


# The analysis methods kept from the reference design (its inference script names them all).
REFERENCE_TOOL_NAMES = (
    "task_overview",
    "list_dates",
    "list_entities",
    "rows_for_date",
    "hourly_rows_for_date",
    "compare_rate_to_median",
    "compare_count_to_median",
    "detect_funnel_break",
    "check_impossible_counts",
    "list_suspicious_dates",
    "preview_submission",
    "show_raw_data",
    "get_metric_median",
    "get_metric_std_dev_from_median",
    "get_rows_with_abs_diff_from_median_gt",
    "get_median_filter_rows",
    "get_rate_drop_from_median_rows",
    "get_rate_spike_from_median_rows",
    "get_absolute_drop_in_event_count_rows",
    "get_absolute_spike_in_event_count_rows",
    "get_funnel_break_rows",
    "get_hourly_traffic_mix_shift_rows",
    "get_instrumentation_data_quality_issue_rows",
    "payload_generator",
)
