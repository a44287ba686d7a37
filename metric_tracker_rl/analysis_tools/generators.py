"""What the generator tools share: a generator scans every date with one rule and returns candidate submission
rows, paged strongest first as a tool and merged whole in a generator submission.

They know nothing about the labels. Each stamps its own name as the detection method and derives the
anomaly type from the entity kind and the direction of the deviation, so a generic scan can mislabel an
incident that only a family-specific check recognises. Each generator is one module of `analysis_tools/tools/`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import ValidationError

from metric_tracker_rl.analysis_tools.arguments import MetricSelection
from metric_tracker_rl.analysis_tools.registry import (
    REFERENCE_API,
    STRENGTH,
    TOOL_REGISTRY,
    RowsFunction,
    ToolError,
    derived,
    offered_fields,
    page,
    register_tool,
    strongest_first,
)
from metric_tracker_rl.catalog.plain_types import PayloadGeneratorMethod
from metric_tracker_rl.catalog.published import COUNT_COLUMNS, DIRECTIONAL_FAMILIES, row_key
from metric_tracker_rl.catalog.tiers import COUNTS
from metric_tracker_rl.catalog.validation import describe_validation_error
from metric_tracker_rl.world.public_episode import PublicEpisode

MIN_FLAGGED_HOURS = 2  # a family generator's hour-level check flags a date on this many hours or more


def candidate_row(
    episode: PublicEpisode, entity_type: str, entity_name: str, day: int, anomaly_type: str, method: str
) -> dict[str, Any]:
    """A submission row, with its |robust z| as the evidence that orders a generator's result."""
    baseline, observed, delta, z, severity = episode.panel.numbers(episode.panel.index(entity_type, entity_name), day)
    return {
        "date": episode.data.dates[day],
        "entity_type": entity_type,
        "entity_name": entity_name,
        "anomaly_type": anomaly_type,
        "detection_method": method,
        "baseline_value": baseline,
        "observed_value": observed,
        "delta_value": delta,
        "severity": severity,
        STRENGTH: abs(z) if z is not None else 0.0,
    }


# A family generator's rows share their entity type and anomaly type; every generator stamps its own name.
FAMILY_CONSTANTS = frozenset({"entity_type", "anomaly_type", "detection_method"})
SCAN_CONSTANTS = frozenset({"detection_method"})


def page_of(args: Any) -> dict[str, Any]:
    """The arguments a page belongs to (all but limit and offset, defaults included): a next_offset means the
    next page of this result, and a call with other arguments is another result, ranked anew."""
    offered = set(offered_fields(type(args))) - {"limit", "offset"}
    return {key: value for key, value in args.model_dump().items() if key in offered and value is not None}


def register_generator(
    name: str,
    description: str,
    args_model: type,
    example: dict[str, Any],
    *,
    kept_for: str = "",
    constant_columns: frozenset[str] = SCAN_CONSTANTS,
) -> Callable[[RowsFunction], RowsFunction]:
    """Register a function that lists every candidate row as the generator tool `name`, paged strongest first (a
    generator reads the counts' daily numbers)."""

    def decorator(rows_of: RowsFunction) -> RowsFunction:
        def tool(episode: PublicEpisode, args: Any) -> dict[str, Any]:
            result = page(strongest_first(rows_of(episode, args)), args.offset, args.limit)
            if args.offset or result["next_offset"] is not None:
                result["page_of"] = page_of(args)
            return result

        register_tool(
            name,
            description,
            args_model,
            reads=(COUNTS,),
            kept_for=kept_for,
            kind="generator",
            example=example,
            constant_columns=constant_columns,
            rows_of=rows_of,
        )(tool)
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


DEVIATION_INDEXES = {
    (score, direction): functools.partial(DeviationIndex.build, score=score, direction=direction)
    for score in ("z", "delta")
    for direction in (-1, 0, 1)
}


def deviation_rows(
    episode: PublicEpisode, args: MetricSelection, method: str, direction: int, score: str, threshold: float
) -> list[dict[str, Any]]:
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


def register_deviation_generator(
    name: str, description: str, args_model: type, direction: int, *, kept_for: str = ""
) -> None:
    """Register a robust-z scan of the selected metrics as the generator `name`: values beyond the threshold below
    (direction -1), above (1) or either way (0) their baseline."""

    def generator(episode: PublicEpisode, args: Any) -> list[dict[str, Any]]:
        return deviation_rows(episode, args, name, direction, "z", args.threshold_multiplier)

    register_generator(name, description, args_model, {"threshold_multiplier": 3.0}, kept_for=kept_for)(generator)


# What keeps the one-direction scans: each is a family's canonical detection method (its expected rows name it),
# so it stays valid in generator submissions and as a row's detection method; a model's get_median_filter_rows types
# each row by its direction.
DIRECTIONAL_SCAN = (
    f"{REFERENCE_API}, and the detection method of its family's expected rows (valid in generator "
    "submissions); a model runs get_median_filter_rows, which types each row by its direction"
)


def flagged_rows(
    episode: PublicEpisode, entity_type: str, names: tuple[str, ...], passes: np.ndarray, anomaly_type: str, method: str
) -> list[dict[str, Any]]:
    """passes: (len(names), D) bool."""
    name_hits, day_hits = np.nonzero(passes)
    return [
        candidate_row(episode, entity_type, names[i], day, anomaly_type, method)
        for i, day in zip(name_hits.tolist(), day_hits.tolist(), strict=True)
    ]


def robust_z(episode: PublicEpisode, entity_type: str, names: tuple[str, ...]) -> np.ndarray:
    """(len(names), D) robust z with NaN as 0."""
    panel = episode.panel
    return panel.filled_z[[panel.index(entity_type, n) for n in names]]


def generator_names(*, offered: bool = False) -> tuple[str, ...]:
    """The generators, in registration order (only those a model is offered: the others answer the same question
    on a metric selection, and stay valid in a generator submission sent through the wire API)."""
    return tuple(
        name for name, spec in TOOL_REGISTRY.items() if spec.kind == "generator" and (spec.offered or not offered)
    )


def submission_arguments(name: str) -> list[str]:
    """The arguments generator `name` takes in a generator submission: those of its tool that a submission item
    offers (a submission grades every row, so it has no paging)."""
    offered = set(offered_fields(PayloadGeneratorMethod))
    return [field for field in offered_fields(TOOL_REGISTRY[name].args_model) if field in offered]


def generator_arguments(method: PayloadGeneratorMethod) -> Any:
    """A submitted generator call's validated tool arguments. Raises ToolError naming what that generator takes."""
    name = method.method_name
    if name not in generator_names():
        raise ToolError(f"{name!r} is not a generator; valid: {', '.join(generator_names(offered=True))}")
    spec = TOOL_REGISTRY[name]
    try:
        return spec.args_model.model_validate(method.tool_arguments())
    except ValidationError as exc:
        takes = ", ".join(submission_arguments(name)) or "no argument"
        raise ToolError(
            f"{name}: {describe_validation_error(exc)}. In a submission it takes method_name and {takes}"
        ) from None


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
        rows_of = TOOL_REGISTRY[method.method_name].rows_of
        assert rows_of is not None  # every generator registers its rows
        for row in strongest_first(rows_of(episode, args)):
            rows.setdefault(row_key(row["date"], row["entity_type"], row["entity_name"]), row)
    return list(rows.values()), errors
