"""Generators: scan every date with one rule and return candidate submission rows.

They know nothing about the labels. Each stamps its own name as the detection method and derives the
anomaly type from the entity kind and the direction of the deviation, so a generic scan can mislabel an
incident that only a family-specific check recognises.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import ValidationError

from metric_tracker_rl.analysis_tools.arguments import (
    AbsDiffArgs,
    AnyMetricThreshold,
    CountThreshold,
    FamilyThreshold,
    PayloadArgs,
    RateThreshold,
    _MetricSelection,
)
from metric_tracker_rl.analysis_tools.comparisons import broken_hour_flags, impossible_hour_flags
from metric_tracker_rl.analysis_tools.registry import (
    REFERENCE_API,
    STRENGTH,
    TOOL_REGISTRY,
    ToolError,
    derived,
    offered_fields,
    page,
    register_tool,
    strongest_first,
)
from metric_tracker_rl.spec.plain_types import PayloadGeneratorMethod
from metric_tracker_rl.spec.published import COUNT_COLUMNS, DIRECTIONAL_FAMILIES, ENTITY_NAMES, FUNNEL_STEPS, row_key
from metric_tracker_rl.spec.validation import describe_validation_error
from metric_tracker_rl.world.public_episode import PublicEpisode

MIN_FLAGGED_HOURS = 2


def candidate_row(episode: PublicEpisode, entity_type: str, entity_name: str, day: int, anomaly_type: str,
                  method: str) -> dict[str, Any]:
    """A submission row, with its |robust z| as the evidence that orders a generator's result."""
    baseline, observed, delta, z, severity = episode.panel.numbers(episode.panel.index(entity_type, entity_name),
                                                                   day)
    return {"date": episode.data.dates[day], "entity_type": entity_type, "entity_name": entity_name,
            "anomaly_type": anomaly_type, "detection_method": method, "baseline_value": baseline,
            "observed_value": observed, "delta_value": delta, "severity": severity,
            STRENGTH: abs(z) if z is not None else 0.0}


# Each generator's rows in full, by tool name: the tool shows them a page at a time, a generator submission
# (and the payload_generator preview) merges them whole.
GENERATOR_ROWS: dict[str, Any] = {}


# A family generator's rows share their entity type and anomaly type; every generator stamps its own name.
FAMILY_CONSTANTS = frozenset({"entity_type", "anomaly_type", "detection_method"})
SCAN_CONSTANTS = frozenset({"detection_method"})


def page_of(args: Any) -> dict[str, Any]:
    """The arguments a page belongs to (all but limit and offset, defaults included): a next_offset means the
    next page of this result, and a call with other arguments is another result, ranked anew."""
    offered = set(offered_fields(type(args))) - {"limit", "offset"}
    return {key: value for key, value in args.model_dump().items() if key in offered and value is not None}


def register_generator(name: str, description: str, args_model: type, example: dict[str, Any], *,
                       kept_for: str = "", constant_columns: frozenset[str] = SCAN_CONSTANTS) -> Any:
    """Register a function that lists every candidate row as the generator tool `name`, paged strongest first."""
    def decorator(rows_of: Any) -> Any:
        def tool(episode: PublicEpisode, args: Any) -> dict[str, Any]:
            result = page(strongest_first(rows_of(episode, args)), args.offset, args.limit)
            if args.offset or result["next_offset"] is not None:
                result["page_of"] = page_of(args)
            return result

        register_tool(name, description, args_model, kind="generator", example=example, kept_for=kept_for,
                      constant_columns=constant_columns)(tool)
        GENERATOR_ROWS[name] = rows_of
        return rows_of
    return decorator


@dataclass(frozen=True)
class DeviationIndex:
    """Every (metric, date) whose signed deviation is positive, largest first: a threshold query reads a prefix.

    Built once per episode for each score and direction, so repeated scans (other thresholds, other metric
    selections) cost a binary search and the rows they return."""

    negated: np.ndarray  # -(signed deviation), ascending
    rows: np.ndarray  # panel row of each entry
    days: np.ndarray
    rises: np.ndarray  # whether the value is above its baseline

    @classmethod
    def build(cls, episode: PublicEpisode, score: str, direction: int) -> DeviationIndex:
        panel = episode.panel
        # The panel rows a deviation generator can select: every event count and conversion rate.
        selectable = np.array([k for k, (t, _) in enumerate(panel.keys) if t in ("event_count", "conversion_rate")])
        deviation = (panel.filled_z if score == "z" else panel.filled_delta)[selectable]
        signed = deviation * direction if direction else np.abs(deviation)
        rows, days = np.nonzero(signed > 0)
        order = np.argsort(-signed[rows, days], kind="stable")
        rows, days = rows[order], days[order]
        return cls(negated=-signed[rows, days], rows=selectable[rows], days=days, rises=deviation[rows, days] > 0)

    def above(self, threshold: float) -> Iterator[tuple[int, int, bool]]:
        """(panel row, day, rise) of the entries whose signed deviation is above the threshold."""
        count = int(np.searchsorted(self.negated, -threshold, side="left"))
        return zip(self.rows[:count].tolist(), self.days[:count].tolist(), self.rises[:count].tolist(), strict=True)


DEVIATION_INDEXES = {(score, direction): functools.partial(DeviationIndex.build, score=score, direction=direction)
                     for score in ("z", "delta") for direction in (-1, 0, 1)}


def _deviation_rows(episode: PublicEpisode, args: _MetricSelection, method: str, direction: int,
                    score: str, threshold: float) -> list[dict[str, Any]]:
    """Rows for every selected metric and date whose z (or |delta|) passes the threshold in the direction."""
    panel = episode.panel
    selected = {panel.index("event_count" if m in COUNT_COLUMNS else "conversion_rate", m) for m in args.selected()}
    rows = []
    for k, day, rise in derived(episode, DEVIATION_INDEXES[(score, direction)]).above(threshold):
        if k in selected:
            entity_type, metric = panel.keys[k]
            anomaly_type = DIRECTIONAL_FAMILIES[(entity_type, 1 if rise else -1)]
            rows.append(candidate_row(episode, entity_type, metric, day, anomaly_type, method))
    return rows


def _register_deviation_generator(name: str, description: str, model: type, direction: int, *,
                                  kept_for: str = "") -> None:
    def generator(episode: PublicEpisode, args: Any) -> list[dict[str, Any]]:
        return _deviation_rows(episode, args, name, direction, "z", args.threshold_multiplier)

    register_generator(name, description, model, {"threshold_multiplier": 3.0}, kept_for=kept_for)(generator)


_register_deviation_generator(
    "get_median_filter_rows", "Candidate count and rate rows beyond the robust-z threshold, either "
    "way.", AnyMetricThreshold, 0)
# The one-direction scans: each is a family's canonical detection method (its expected rows name it), so it stays
# valid in generator submissions and as a row's detection method; a model's get_median_filter_rows types each row
# by its direction.
DIRECTIONAL_SCAN = (f"{REFERENCE_API}, and the detection method of its family's expected rows (valid in generator "
                    "submissions); a model runs get_median_filter_rows, which types each row by its direction")
_register_deviation_generator(
    "get_rate_drop_from_median_rows", "Candidate rate-drop rows: conversion rates whose robust z-score is below "
    "-threshold_multiplier.", RateThreshold, -1, kept_for=DIRECTIONAL_SCAN)
_register_deviation_generator(
    "get_rate_spike_from_median_rows", "Candidate rate-spike rows: conversion rates whose robust z-score is above "
    "threshold_multiplier.", RateThreshold, 1, kept_for=DIRECTIONAL_SCAN)
_register_deviation_generator(
    "get_absolute_drop_in_event_count_rows", "Candidate count-drop rows: event counts whose robust z-score is "
    "below -threshold_multiplier.", CountThreshold, -1, kept_for=DIRECTIONAL_SCAN)
_register_deviation_generator(
    "get_absolute_spike_in_event_count_rows", "Candidate count-spike rows: event counts whose robust z-score is "
    "above threshold_multiplier.", CountThreshold, 1, kept_for=DIRECTIONAL_SCAN)


@register_generator("get_rows_with_abs_diff_from_median_gt", "Rows whose |delta| exceeds a threshold in the "
                    "metric's units (0: every date).", AbsDiffArgs,
                    {"metric_names": ["app_opens"], "threshold": 5000.0})
def get_rows_with_abs_diff_from_median_gt(episode: PublicEpisode, args: AbsDiffArgs) -> list[dict[str, Any]]:
    return _deviation_rows(episode, args, "get_rows_with_abs_diff_from_median_gt", 0, "delta", args.threshold)


def _flagged_rows(episode: PublicEpisode, entity_type: str, names: tuple[str, ...], passes: np.ndarray,
                  anomaly_type: str, method: str) -> list[dict[str, Any]]:
    """passes: (len(names), D) bool."""
    name_hits, day_hits = np.nonzero(passes)
    return [candidate_row(episode, entity_type, names[i], day, anomaly_type, method)
            for i, day in zip(name_hits.tolist(), day_hits.tolist(), strict=True)]


def _z(episode: PublicEpisode, entity_type: str, names: tuple[str, ...]) -> np.ndarray:
    """(len(names), D) robust z with NaN as 0."""
    panel = episode.panel
    return panel.filled_z[[panel.index(entity_type, n) for n in names]]


@register_generator("get_funnel_break_rows", "Candidate funnel breaks: steps under -threshold z in "
                    f"{MIN_FLAGGED_HOURS}+ hours (bot opens sink app_open_to_menu_open too).", FamilyThreshold,
                    {"threshold_multiplier": 3.0}, constant_columns=FAMILY_CONSTANTS)
def get_funnel_break_rows(episode: PublicEpisode, args: FamilyThreshold) -> list[dict[str, Any]]:
    broken = derived(episode, broken_hour_flags).counts  # (steps, D)
    passes = (broken >= MIN_FLAGGED_HOURS) & (_z(episode, "funnel_step", FUNNEL_STEPS) < -args.threshold_multiplier)
    return _flagged_rows(episode, "funnel_step", FUNNEL_STEPS, passes, "funnel_break", "get_funnel_break_rows")


@register_generator("get_hourly_traffic_mix_shift_rows", "Candidate hourly-mix shifts: events whose distance from "
                    "their usual hours rose beyond the z threshold.",
                    FamilyThreshold, {"threshold_multiplier": 3.0}, constant_columns=FAMILY_CONSTANTS)
def get_hourly_traffic_mix_shift_rows(episode: PublicEpisode, args: FamilyThreshold) -> list[dict[str, Any]]:
    passes = _z(episode, "hourly_mix", COUNT_COLUMNS) > args.threshold_multiplier
    return _flagged_rows(episode, "hourly_mix", COUNT_COLUMNS, passes, "hourly_traffic_mix_shift",
                         "get_hourly_traffic_mix_shift_rows")


@register_generator("get_instrumentation_data_quality_issue_rows", "Candidate data-quality issues: events over the "
                    f"previous one in {MIN_FLAGGED_HOURS}+ hours, count beyond the z threshold.", FamilyThreshold,
                    {"threshold_multiplier": 3.0}, constant_columns=FAMILY_CONSTANTS)
def get_instrumentation_data_quality_issue_rows(episode: PublicEpisode, args: FamilyThreshold) -> list[dict[str, Any]]:
    names = ENTITY_NAMES["data_quality"]
    flags = derived(episode, impossible_hour_flags).counts  # (steps, D), step i -> event i + 1
    impossible = flags[[COUNT_COLUMNS.index(name) - 1 for name in names]]
    passes = (impossible >= MIN_FLAGGED_HOURS) & (_z(episode, "data_quality", names) > args.threshold_multiplier)
    return _flagged_rows(episode, "data_quality", names, passes, "instrumentation_data_quality_issue",
                         "get_instrumentation_data_quality_issue_rows")


GENERATOR_NAMES = tuple(name for name, spec in TOOL_REGISTRY.items() if spec.kind == "generator")
# The generators a model is offered; the others answer the same question on a metric selection, and stay valid in a
# generator submission sent through the wire API.
OFFERED_GENERATOR_NAMES = tuple(name for name in GENERATOR_NAMES if TOOL_REGISTRY[name].offered)


def submission_arguments(name: str) -> list[str]:
    """The arguments generator `name` takes in a generator submission: those of its tool that a submission item
    offers (a submission grades every row, so it has no paging)."""
    offered = set(offered_fields(PayloadGeneratorMethod))
    return [field for field in offered_fields(TOOL_REGISTRY[name].args_model) if field in offered]


def generator_arguments(method: PayloadGeneratorMethod) -> Any:
    """A submitted generator call's validated tool arguments. Raises ToolError naming what that generator takes."""
    name = method.method_name
    if name not in GENERATOR_NAMES:
        raise ToolError(f"{name!r} is not a generator; valid: {', '.join(OFFERED_GENERATOR_NAMES)}")
    spec = TOOL_REGISTRY[name]
    try:
        return spec.args_model.model_validate(method.tool_arguments())
    except ValidationError as exc:
        takes = ", ".join(submission_arguments(name)) or "no argument"
        raise ToolError(f"{name}: {describe_validation_error(exc)}. In a submission it takes method_name and "
                        f"{takes}") from None


def generate_rows(episode: PublicEpisode, methods: list[PayloadGeneratorMethod]) -> tuple[list[dict], list[str]]:
    """Run generator calls and merge their rows (first row per key wins). Returns rows and error messages."""
    rows: dict[str, dict[str, Any]] = {}
    errors: list[str] = []
    for i, method in enumerate(methods):
        try:
            args = generator_arguments(method)
        except ToolError as exc:
            errors.append(f"generators[{i}]: {exc}")
            continue
        for row in strongest_first(GENERATOR_ROWS[method.method_name](episode, args)):
            rows.setdefault(row_key(row["date"], row["entity_type"], row["entity_name"]), row)
    return list(rows.values()), errors


@register_tool("payload_generator", "Run several generator calls and merge their rows into one candidate "
               "payload (a preview: nothing is graded).", PayloadArgs,
               kept_for=f"{REFERENCE_API} and the debugger; a model's submit_generators grades the merged rows "
                        "itself",
               example={"generator_methods": [{"method_name": "get_rate_drop_from_median_rows",
                                               "metric_name": "app_open_to_order_placed",
                                               "threshold_multiplier": 3.0}]})
def payload_generator(episode: PublicEpisode, args: PayloadArgs) -> dict[str, Any]:
    rows, errors = generate_rows(episode, args.generator_methods)
    return {**page(rows, args.offset, args.limit), "errors": errors}
