"""The plain types of the wire: report rows, generator calls, grading feedback and the catalogs an observation
carries. They are pydantic models with no OpenEnv base, so the grader, the generator and the tools use them
without importing the framework (and, through it, gradio); `models` re-exports them next to the wire types."""

from __future__ import annotations

import functools
from typing import Any, Literal, TypedDict

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    create_model,
    model_serializer,
    model_validator,
)
from pydantic.config import JsonDict
from pydantic_core import PydanticCustomError

from metric_tracker_rl.catalog.families import EntityType
from metric_tracker_rl.catalog.published import (
    ANOMALY_TYPES,
    DETECTION_METHOD_RULE,
    ENTITY_NAMES,
    ENTITY_NAMES_AT_SOME_TIER,
    AnomalyType,
    Severity,
)

MAX_GENERATOR_CALLS = 20  # generator calls in one payload: bounds the work of a single step


# The bounds of a robust-z threshold (threshold_multiplier), shared by the tools and generator submissions.
class FieldBounds(TypedDict):
    """A numeric field's bounds, as pydantic's Field takes them."""

    gt: float
    le: float


THRESHOLD_MULTIPLIER_BOUNDS: FieldBounds = {"gt": 0, "le": 100}
# Marks an argument kept for callers of the wire API that a model is not offered (another argument does the same:
# `metric_names` holds one metric as well as several). Model schemas and the errors a model reads leave it out.
HIDDEN_FROM_MODELS: JsonDict = {"hidden_from_models": True}


# A row's fields that a dumped row leaves out when unset, so a row of a tier that has none of them reads as it did
# before they were added.
OMITTED_WHEN_UNSET = ("channel", "user_type", "repaired_value")
REPAIRED_VALUE_DESCRIPTION = (
    "audit: a data defect's row, the metric's value without the defect (the brief's repaired_value rule); "
    "null on every other row"
)


class _Strict(BaseModel):
    """A model writes these values: a boolean is not a number and a string is not a number (strict mode)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


class MetricSubmissionRow(_Strict):
    """One reported anomaly. Rows are keyed by `date|entity_type|entity_name`."""

    date: str = Field(description="ISO date (YYYY-MM-DD) inside the episode window", max_length=32)
    entity_type: EntityType = Field(description="Kind of entity the anomaly is on")
    entity_name: str = Field(description="A name valid for the entity type", max_length=128)
    anomaly_type: AnomalyType = Field(description="Anomaly family")
    detection_method: str = Field(description=DETECTION_METHOD_RULE, max_length=128)  # the tool that showed it
    baseline_value: float = Field(description="Same-weekday median")
    observed_value: float = Field(description="Value on the date")
    delta_value: float = Field(description="observed - baseline")
    severity: Severity = Field(description="By the published rule")
    # The segment the incident is confined to (frontier only); None means every value of that dimension, so a row
    # without them is about the whole funnel, as on every other difficulty.
    platform: str | None = Field(default=None, description="frontier: segment's platform", max_length=32)
    country: str | None = Field(default=None, description="frontier: segment's country", max_length=32)
    app_version: str | None = Field(default=None, description="frontier: segment's app version", max_length=32)
    # Dimensions of the deep tier only: left out of a dumped row when unset, so a row of any other tier reads as
    # it always did.
    channel: str | None = Field(default=None, description="deep: segment's channel", max_length=32)
    user_type: str | None = Field(default=None, description="deep: segment's user type", max_length=32)
    # The audit's (from its version 2): left out of a dumped row when unset, as the deep tier's fields are.
    repaired_value: float | None = Field(default=None, description=REPAIRED_VALUE_DESCRIPTION)

    @model_serializer(mode="wrap")
    def _omit_unset_fields(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for name in OMITTED_WHEN_UNSET:
            if data.get(name, 0) is None:
                del data[name]
        return data

    @model_validator(mode="after")
    def _entity_fits_its_type(self) -> MetricSubmissionRow:
        # A row is a key the grader can match only if its entity exists for its type; refusing it here keeps every
        # row that validates on its own submittable (the date window is the episode's, checked at submission).
        # A name valid at some tier (the warehouse's data_quality rows name more): the episode's own names are
        # checked at submission (validation.validate_rows), where the tier is known.
        valid = ENTITY_NAMES[self.entity_type]
        if self.entity_name not in ENTITY_NAMES_AT_SOME_TIER[self.entity_type]:
            # A PydanticCustomError, not a ValueError: its error details hold no exception object, so a server that
            # sends validation errors as JSON (OpenEnv's step handlers) can serialise them.
            more = [name for name in ENTITY_NAMES_AT_SOME_TIER[self.entity_type] if name not in valid]
            elsewhere = f" (where the data are raw events, also: {', '.join(more)})" if more else ""
            raise PydanticCustomError(
                "entity_not_of_type",
                "entity_name '{entity_name}' is not valid for entity_type '{entity_type}'; valid: {valid}{elsewhere}",
                {
                    "entity_name": self.entity_name,
                    "entity_type": self.entity_type,
                    "valid": ", ".join(valid),
                    "elsewhere": elsewhere,
                },
            )
        return self


@functools.cache
def submission_row_type(anomaly_types: tuple[str, ...]) -> type[MetricSubmissionRow]:
    """The row type whose anomaly_type is one of `anomaly_types`: MetricSubmissionRow for the published families,
    a subclass for another family catalog's (a scratch registry's ground truth)."""
    if anomaly_types == ANOMALY_TYPES:
        return MetricSubmissionRow
    names: Any = Literal[anomaly_types]  # a type built at run time from the catalog's names
    return create_model(
        "MetricSubmissionRow", __base__=MetricSubmissionRow, anomaly_type=(names, Field(description="Anomaly family"))
    )


class PayloadGeneratorMethod(_Strict):
    """A generator call that the server runs to build submission rows (see the get_*_rows tools)."""

    method_name: str = Field(description="A `get_*_rows` tool", max_length=128)
    metric_name: str | None = Field(
        default=None, description="One metric to scan", max_length=128, json_schema_extra=HIDDEN_FROM_MODELS
    )
    metric_names: list[str] | None = Field(default=None, description="Several metrics to scan", max_length=64)
    threshold_multiplier: float | None = Field(
        default=None,
        description="Robust-z threshold",
        gt=THRESHOLD_MULTIPLIER_BOUNDS["gt"],
        le=THRESHOLD_MULTIPLIER_BOUNDS["le"],
    )
    threshold: float | None = Field(
        default=None, ge=0, description="get_rows_with_abs_diff_from_median_gt's threshold, in the metric's own units"
    )

    def tool_arguments(self) -> dict[str, Any]:
        return self.model_dump(exclude={"method_name"}, exclude_none=True)


class SubmissionIssue(BaseModel):
    row_index: int | None = Field(description="Index of the submitted row concerned, if any")
    code: Literal["invalid_row", "duplicate_row", "generator_error"] = Field(description="Issue kind")
    message: str = Field(description="What is wrong with the row")


class RewardBreakdown(BaseModel):
    """How a graded submission scored. Per-component accuracies are averaged over the expected rows.

    With more than one graded submission allowed (a curriculum setting), feedback before the last submission
    carries only the score and the submitted/matched/false-positive counts: the per-component fields are None,
    because exact per-component sums over two submissions would decode the answer."""

    score: float = Field(description="This submission's absolute score: recall_quality * precision, in [0, 1]")
    recall_quality: float | None = Field(
        default=None, description="Sum of per-row quality over expected rows / expected row count"
    )
    precision: float | None = Field(default=None, description="(matched + 1) / (matched + false positives + 1)")
    recall: float | None = Field(default=None, description="Share of expected rows whose key was reported")
    anomaly_type_accuracy: float | None = Field(
        default=None, description="Share of expected rows reported with the right type"
    )
    detection_method_accuracy: float | None = Field(
        default=None, description="Share of expected rows with an accepted method"
    )
    value_accuracy: float | None = Field(
        default=None, description="Share of expected baseline/observed/delta values in tolerance"
    )
    severity_accuracy: float | None = Field(default=None, description="Share of expected rows with the right severity")
    segment_accuracy: float | None = Field(
        default=None,
        description="Segment credit averaged over expected rows "
        "(frontier only: 1 exact, partial for a parent, 0 for the aggregate)",
    )
    submitted_row_count: int = Field(description="Rows submitted")
    matched_row_count: int = Field(description="Distinct expected keys reported")
    false_positive_count: int = Field(
        description="Rows not on an expected key: side-effect rows included, and duplicates and invalid rows"
    )
    neutral_row_count: int | None = Field(
        default=None, description="Of the false positives, rows on side-effect keys of an injected incident"
    )
    duplicate_row_count: int | None = Field(default=None, description="Rows repeating an earlier key")
    invalid_row_count: int | None = Field(default=None, description="Rows with an unknown date or entity")

    def coarse(self) -> RewardBreakdown:
        """The feedback of a submission that is not the episode's last: the score and the row counts only."""
        return RewardBreakdown(
            score=self.score,
            submitted_row_count=self.submitted_row_count,
            matched_row_count=self.matched_row_count,
            false_positive_count=self.false_positive_count,
        )


class TaskInfo(BaseModel):
    task_id: str
    difficulty: str
    objective: str
    grader_name: str
    config: dict[str, Any]


class EpisodeWindow(BaseModel):
    """The dates an episode covers, as the server built them (a client never rebuilds them from a tier's length)."""

    first_date: str = Field(description="First date of the window (ISO)")
    last_date: str = Field(description="Last date of the window (ISO)")
    days: int = Field(description="Dates in the window")


class ConversionMetricDefinition(BaseModel):
    name: str
    numerator: str
    denominator: str
    formula: str


class AnalysisMethodInfo(BaseModel):
    name: str = Field(description="Tool name")
    description: str = Field(description="What the tool does")
    kind: Literal["analysis", "generator"] = Field(description="generators return candidate submission rows")
    parameters: dict[str, Any] = Field(description="JSON schema of the arguments")
    example: dict[str, Any] = Field(description="A valid example call's arguments")
    offered: bool = Field(
        True,
        description="Offered to models at the episode's tier (its tool list); else kept "
        "for clients of the wire API, which call it by name",
    )


class AnomalyRequest(_Strict):
    """An anomaly to inject at reset, for custom scenarios."""

    family: str = Field(description="Anomaly family (see available_synthetic_generator_methods)")
    date: str = Field(description="ISO date inside the window")
    entity_name: str | None = Field(default=None, description="Target entity; drawn from the seed if omitted")
    magnitude: float | None = Field(default=None, description="Family-specific size; drawn if omitted")
