"""`compare_segments`: one metric on one date per value (or pair of values) of one or two dimensions, optionally
inside a cuboid, each segment against its own same-weekday baseline: the drill-down for agents without SQL."""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

import numpy as np
from pydantic import Field, field_validator

from metric_tracker_rl.analysis_tools.arguments import DateArgs
from metric_tracker_rl.analysis_tools.registry import ToolError, finite_or_none, register_tool
from metric_tracker_rl.analysis_tools.segment_tools import segments_of
from metric_tracker_rl.catalog.published import CONVERSION_BY_NAME, CONVERSION_METRIC_NAMES, COUNT_COLUMNS, severity_for
from metric_tracker_rl.catalog.tiers import SEGMENTS
from metric_tracker_rl.catalog.validation import check_choice
from metric_tracker_rl.world.daily_panel import (
    COLUMN_INDEX,
    MAD_TO_SIGMA,
    count_ratio,
    nanmedian_last_axis,
    peer_median,
    same_weekday_peers,
)
from metric_tracker_rl.world.public_episode import PublicEpisode
from metric_tracker_rl.world.segments import Segment

METRICS = (*COUNT_COLUMNS, *CONVERSION_METRIC_NAMES)
DIMENSION_NAMES = ("platform", "country", "app_version", "channel", "user_type")


class SegmentBreakdownArgs(DateArgs):
    metrics: ClassVar[tuple[str, ...]] = METRICS
    metric_name: str = Field(description="A count or rate")
    # Text, not an enum per field: the schemas' budget is tight (tests/test_tool_calls.py). One schema serves every
    # segmented tier, so the examples name only dimensions every one has, and together make a valid call.
    dimension: str = Field(description="1-2 dimensions, e.g. country,app_version")
    within: str = Field(default="", description="Cuboid on dimensions not grouped, e.g. platform=ios")

    @field_validator("metric_name")
    @classmethod
    def _metric(cls, value: str) -> str:
        return check_choice("metric_name", value, METRICS)

    @field_validator("dimension")
    @classmethod
    def _dimensions(cls, value: str) -> str:
        names = [name.strip() for name in value.split(",")]
        for name in names:
            check_choice("dimension", name, DIMENSION_NAMES)
        if len(names) > 2 or len(set(names)) < len(names):
            raise ValueError(f"dimension names one or two different dimensions, not {value!r}")
        return ",".join(names)

    @field_validator("within")
    @classmethod
    def _within(cls, value: str) -> str:
        pairs = [part.strip() for part in value.split(",") if part.strip()]
        fields = []
        for pair in pairs:
            field, _, named = pair.partition("=")
            if not named.strip():
                raise ValueError(f"within is field=value pairs separated by commas, not {pair!r}")
            fields.append(check_choice("within field", field.strip(), DIMENSION_NAMES))
        if len(set(fields)) < len(fields):
            raise ValueError("within names each field once")
        return ",".join(f"{field}={pair.partition('=')[2].strip()}" for field, pair in zip(fields, pairs, strict=True))

    def grouped(self) -> list[str]:
        return self.dimension.split(",")

    def cuboid(self) -> dict[str, str]:
        return dict(pair.split("=", 1) for pair in self.within.split(",") if pair)


def _values(daily: np.ndarray, metric: str) -> np.ndarray:
    """(G, D) daily values of a metric from (G, D, 5) counts."""
    if metric in COLUMN_INDEX:
        return daily[..., COLUMN_INDEX[metric]].astype(float)
    definition = CONVERSION_BY_NAME[metric]
    return count_ratio(daily[..., COLUMN_INDEX[definition.numerator]], daily[..., COLUMN_INDEX[definition.denominator]])


def _breakdown(episode: PublicEpisode, args: SegmentBreakdownArgs) -> list[Segment]:
    """The segments of the breakdown: every value (or pair of values) of the grouped dimensions inside the cuboid,
    an app version with its platform (the same label ships on ios and android)."""
    data = segments_of(episode)
    values = data.dimension_values()
    grouped, cuboid = args.grouped(), args.cuboid()
    for name in [*grouped, *cuboid]:
        if name not in values:
            raise ToolError(f"this episode has no {name} dimension; its dimensions: {', '.join(values)}")
    for name, value in cuboid.items():
        if name in grouped:
            raise ToolError(f"within names {name}, which the breakdown groups by; name it in one of them")
        if name != "app_version" and value not in values[name]:
            raise ToolError(f"unknown {name} {value!r}; valid: {', '.join(values[name])}")
    versions = {p: data.layout.platform_versions(p) for p in values["platform"]}
    if "app_version" in cuboid and cuboid["app_version"] not in versions.get(cuboid.get("platform", ""), ()):
        valid = ", ".join(f"platform={p},app_version={v}" for p, labels in versions.items() for v in labels)
        raise ToolError(
            f"within names an app_version with its platform (the same label ships on ios and android); valid: {valid}"
        )
    choices: list[list[dict[str, str]]] = []
    for name in grouped:
        if name == "app_version":  # a version is a version of one platform: its row names both
            platforms = [cuboid["platform"]] if "platform" in cuboid else list(versions)
            choices.append([{"platform": p, "app_version": v} for p in platforms for v in versions[p]])
        elif not (name == "platform" and "app_version" in grouped):  # the versions' rows name their platform
            choices.append([{name: value} for value in values[name]])
    segments = []
    for combination in itertools.product(*choices):
        named = dict(cuboid)
        for part in combination:
            named.update(part)
        segments.append(Segment(**named))
    return segments


# Offered where there are segments: elsewhere a call answers that the tier does not offer it, naming the tier's tools.
@register_tool(
    "compare_segments",
    "Segments only: a metric on a date per value of 1-2 dimensions in a cuboid, vs baseline.",
    SegmentBreakdownArgs,
    reads=(SEGMENTS,),
    example={"metric_name": "order_placed_to_payment_successful", "date": "2026-03-10", "dimension": "platform"},
)
def compare_segments(episode: PublicEpisode, args: SegmentBreakdownArgs) -> dict[str, Any]:
    data = segments_of(episode)
    segments = _breakdown(episode, args)
    masks = np.array([data.leaf_mask(s) for s in segments])
    daily = np.einsum("gs,sde->gde", masks.astype(np.int64), data.leaves)
    values = _values(daily, args.metric_name)
    baseline = peer_median(values, same_weekday_peers(values.shape[1]))
    spread = MAD_TO_SIGMA * nanmedian_last_axis(np.abs(values - baseline))
    day = episode.data.date_index(args.date)
    opens = daily[:, day, 0]
    total = max(int(opens.sum()), 1)
    entity_type = "event_count" if args.metric_name in COLUMN_INDEX else "conversion_rate"
    rows = []
    for g, segment in enumerate(segments):
        observed, base = values[g, day], baseline[g, day]
        known = np.isfinite(observed) and np.isfinite(base)
        z = (observed - base) / spread[g] if known and spread[g] > 0 else np.nan
        rows.append(
            {
                **segment.named(),
                "app_open_share": round(float(opens[g]) / total, 4),
                "baseline_value": finite_or_none(base),
                "observed_value": finite_or_none(observed),
                "delta_value": finite_or_none(observed - base),
                "robust_z": finite_or_none(z),
                "severity": severity_for(entity_type, float(base), float(observed)) if known else None,
            }
        )
    result: dict[str, Any] = {"metric_name": args.metric_name, "date": args.date, "rows": rows}
    if args.within:
        result["within"] = args.within  # app_open_share is each row's share of the cuboid's opens
    return result
