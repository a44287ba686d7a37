"""Canned tools over the segmented data of the frontier difficulty: the release schedule, and one metric on one
date broken down by a dimension, each segment against its own same-weekday baseline."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator

from metric_tracker_rl.analysis_tools.arguments import DateArgs, NoArgs, ToolArgs
from metric_tracker_rl.analysis_tools.registry import ToolError, finite_or_none, register_tool
from metric_tracker_rl.context import CONTEXT_TABLES
from metric_tracker_rl.daily_panel import (
    COLUMN_INDEX,
    MAD_TO_SIGMA,
    count_ratio,
    nanmedian_last_axis,
    peer_median,
    same_weekday_peers,
)
from metric_tracker_rl.public_episode import PublicEpisode
from metric_tracker_rl.published import CONVERSION_BY_NAME, CONVERSION_METRIC_NAMES, COUNT_COLUMNS, severity_for
from metric_tracker_rl.segments import Segment, SegmentedData
from metric_tracker_rl.validation import check_choice

NO_SEGMENTS = ("this episode's funnel has no segments (only difficulty frontier has); use the aggregate tools")
METRICS = (*COUNT_COLUMNS, *CONVERSION_METRIC_NAMES)
NO_CONTEXT = "this episode has no context tables (difficulty deep has); releases: get_releases"
SEGMENT_TOOL_NAMES = ("get_releases", "compare_segments")  # they answer only where the episode has segments
CONTEXT_TOOL_NAMES = ("get_context",)  # it answers only where the episode has context tables (deep)
# The rows a context table shows at most: every table of an episode fits (the schemas' budget has no room for
# an offset), and the query tool reads any table in full.
CONTEXT_PAGE_ROWS = 120


def _segments(episode: PublicEpisode) -> SegmentedData:
    if episode.segments is None:
        raise ToolError(NO_SEGMENTS)
    return episode.segments


def _release_steps(data: SegmentedData) -> list[dict[str, Any]]:
    """Each release's rollout stages: a row per date until it reaches every user, and that date's."""
    rows, previous = [], None
    for row in data.release_rows():  # each release's dates in order
        release = (row["platform"], row["app_version"])
        if row["rollout_share"] < 1.0 or previous != (release, row["rollout_share"]):
            rows.append(row)
        previous = (release, row["rollout_share"])
    return rows


@register_tool("get_releases", "With segments only (else an error): each release's rollout share by date.", NoArgs)
def get_releases(episode: PublicEpisode, args: NoArgs) -> dict[str, Any]:
    return {"rows": _release_steps(_segments(episode)), "note": "a release's share stays at 1.0 after its last row"}


class SegmentBreakdownArgs(DateArgs):
    metrics: ClassVar[tuple[str, ...]] = METRICS
    metric_name: str = Field(description="A count or rate")
    # One word: the names say it (TRL's docstrings need a description), and the schemas' budget is tight.
    dimension: Literal["platform", "country", "app_version", "channel", "user_type"] = Field(description="Dimension")

    @field_validator("metric_name")
    @classmethod
    def _metric(cls, value: str) -> str:
        return check_choice("metric_name", value, METRICS)


def _values(daily: np.ndarray, metric: str) -> np.ndarray:
    """(G, D) daily values of a metric from (G, D, 5) counts."""
    if metric in COLUMN_INDEX:
        return daily[..., COLUMN_INDEX[metric]].astype(float)
    definition = CONVERSION_BY_NAME[metric]
    return count_ratio(daily[..., COLUMN_INDEX[definition.numerator]], daily[..., COLUMN_INDEX[definition.denominator]])


@register_tool("compare_segments", "With segments only (else an error): a metric on a date per value of a "
               "dimension vs baseline.",
               SegmentBreakdownArgs,
               example={"metric_name": "order_placed_to_payment_successful", "date": "2026-03-10",
                        "dimension": "platform"})
def compare_segments(episode: PublicEpisode, args: SegmentBreakdownArgs) -> dict[str, Any]:
    data = _segments(episode)
    layout = data.layout
    values = data.dimension_values()
    if args.dimension not in values:
        raise ToolError(f"this episode has no {args.dimension} dimension; its dimensions: {', '.join(values)}")
    if args.dimension == "app_version":  # a version is a version of one platform
        segments = [Segment(p, None, v) for p in layout.values_of("platform") for v in layout.platform_versions(p)]
    else:
        segments = [Segment(**{args.dimension: value}) for value in values[args.dimension]]
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
        rows.append({**segment.named(),
                     "app_open_share": round(float(opens[g]) / total, 4),
                     "baseline_value": finite_or_none(base), "observed_value": finite_or_none(observed),
                     "delta_value": finite_or_none(observed - base), "robust_z": finite_or_none(z),
                     "severity": severity_for(entity_type, float(base), float(observed)) if known else None})
    return {"metric_name": args.metric_name, "date": args.date, "rows": rows}


class ContextArgs(ToolArgs):
    table: str = Field(description="Table")


@register_tool("get_context", "Deep only (else an error): a context table the brief lists.",
               ContextArgs, example={"table": "experiments"})
def get_context(episode: PublicEpisode, args: ContextArgs) -> dict[str, Any]:
    data = _segments(episode)
    if data.context is None:
        raise ToolError(NO_CONTEXT)
    if args.table not in CONTEXT_TABLES:
        raise ToolError(f"unknown context table {args.table!r}; valid: {', '.join(CONTEXT_TABLES)}")
    if args.table == "releases":
        rows = _release_steps(data)
    else:
        assert data.context is not None
        rows = data.context.rows(args.table)
    shown = rows[:CONTEXT_PAGE_ROWS]
    more = " (the query tool reads the rest)" if len(rows) > len(shown) else ""
    return {"table": args.table, "showing": f"{len(shown)} of {len(rows)}{more}", "rows": shown}
