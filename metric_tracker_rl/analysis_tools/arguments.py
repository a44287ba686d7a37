"""Argument models that several tools share (a model only one tool takes lives in that tool's module).
Validators name the valid choices in their errors.

Every model is strict: a model writes these values, and a boolean is not a number nor a string an integer, so
`limit=True` or `limit="20"` is refused with a message rather than read as 1 or 20."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from metric_tracker_rl.analysis_tools.registry import DEFAULT_PAGE_ROWS, EPISODE_WINDOW, MAX_PAGE_ROWS
from metric_tracker_rl.catalog.plain_types import HIDDEN_FROM_MODELS, THRESHOLD_MULTIPLIER_BOUNDS
from metric_tracker_rl.catalog.published import CONVERSION_METRIC_NAMES, COUNT_COLUMNS
from metric_tracker_rl.catalog.validation import check_choice, date_problem
from metric_tracker_rl.world.funnel import window_dates
from metric_tracker_rl.world.segments import Segment

# The four-week window of the aggregate tiers; frontier's is longer (every window starts on the same date, and
# LONGEST_WINDOW_DAYS is the longest tier's). registry.run_tool sets EPISODE_WINDOW to the episode's own dates while
# it validates a call's arguments.
WINDOW = tuple(d.isoformat() for d in window_dates())


class ToolArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


def check_date(value: str) -> str:
    problem = date_problem(value, EPISODE_WINDOW.get())
    if problem is not None:
        raise ValueError(problem)
    return value


class NoArgs(ToolArgs):
    pass


class DateArgs(ToolArgs):
    date: str = Field(description="YYYY-MM-DD")

    @field_validator("date")
    @classmethod
    def _date(cls, value: str) -> str:
        return check_date(value)


# A date-level tool that reads the whole funnel, or at a segmented tier one segment's. Hourly counts exist per
# (platform, country, app_version) cell only, daily counts also per channel and user type (deep): registry.run_tool
# hands a tool that reads hours the funnel of the cells named (PublicEpisode.segment_view), and a tool that reads
# days only looks its segment up itself (PublicEpisode.segment_panel); the result names the segment. (A comment, not
# a docstring: pydantic would send a docstring to the model as the schema's description.)
class ScopedDateArgs(DateArgs):
    reads_hours: ClassVar[bool] = True

    # No description: each name says what it is, and the brief lists the values (the schemas' budget is tight).
    platform: str | None = None
    country: str | None = None
    app_version: str | None = None
    # Accepted, not offered: no hour of a channel or user type exists, so no call could use them, and a call that
    # names one is told so (and what to read instead) rather than only that the argument is unknown.
    channel: str | None = Field(default=None, json_schema_extra=HIDDEN_FROM_MODELS)
    user_type: str | None = Field(default=None, json_schema_extra=HIDDEN_FROM_MODELS)

    def segment(self) -> Segment:
        return Segment(self.platform, self.country, self.app_version, self.channel, self.user_type)


# A tool that reads days only: every dimension of the episode scopes it.
class DailyScopedDateArgs(ScopedDateArgs):
    reads_hours = False
    channel: str | None = None
    user_type: str | None = None


class _EntityChoice(ToolArgs):
    entities: ClassVar[tuple[str, ...]]
    entity_name: str = Field(description="Metric name")

    @field_validator("entity_name")
    @classmethod
    def _entity(cls, value: str) -> str:
        return check_choice("entity_name", value, cls.entities)


class DateRateArgs(_EntityChoice, DailyScopedDateArgs):
    entities = CONVERSION_METRIC_NAMES
    entity_name: str = Field(description="A conversion metric")


class DateCountArgs(_EntityChoice, DailyScopedDateArgs):
    entities = COUNT_COLUMNS
    entity_name: str = Field(description="An event count")


class DateMixArgs(_EntityChoice, ScopedDateArgs):
    entities = COUNT_COLUMNS
    entity_name: str = Field(default="app_opens", description="An event count")


class PageArgs(ToolArgs):
    """A long result comes strongest first, one page at a time."""

    limit: int = Field(default=DEFAULT_PAGE_ROWS, ge=1, le=MAX_PAGE_ROWS, description="Rows per page")
    # Every key of every date is under 1000 rows: no result has a page beyond it.
    offset: int = Field(default=0, ge=0, le=1000, description="A next_offset")


class MetricSelection(ToolArgs):
    """metric_name or metric_names; neither means every metric the tool covers."""

    metrics: ClassVar[tuple[str, ...]]
    metric_name: str | None = Field(default=None, description="One metric", json_schema_extra=HIDDEN_FROM_MODELS)
    metric_names: list[str] | None = Field(default=None, description="Metrics (default: all)", max_length=32)

    @model_validator(mode="after")
    def _known(self) -> MetricSelection:
        for name in ([self.metric_name] if self.metric_name else []) + list(self.metric_names or []):
            check_choice("metric", name, self.metrics)
        return self

    def selected(self) -> list[str]:
        chosen = ([self.metric_name] if self.metric_name else []) + list(self.metric_names or [])
        return list(dict.fromkeys(chosen)) or list(self.metrics)


def _threshold(default: float) -> Any:
    return Field(default=default, description="Robust-z threshold", **THRESHOLD_MULTIPLIER_BOUNDS)


class AnyMetricArgs(MetricSelection):
    metrics = COUNT_COLUMNS + CONVERSION_METRIC_NAMES
    metric_name: str | None = Field(
        default=None, description="One count or conversion metric", json_schema_extra=HIDDEN_FROM_MODELS
    )


class RateSelection(MetricSelection):
    metrics = CONVERSION_METRIC_NAMES
    metric_name: str | None = Field(
        default=None, description="One conversion metric", json_schema_extra=HIDDEN_FROM_MODELS
    )


class CountSelection(MetricSelection):
    metrics = COUNT_COLUMNS
    metric_name: str | None = Field(
        default=None, description="One event count column", json_schema_extra=HIDDEN_FROM_MODELS
    )


class AnyMetricThreshold(AnyMetricArgs, PageArgs):
    threshold_multiplier: float = _threshold(3.0)


class RateThreshold(RateSelection, PageArgs):
    threshold_multiplier: float = _threshold(3.0)


class CountThreshold(CountSelection, PageArgs):
    threshold_multiplier: float = _threshold(3.0)


class AbsDiffArgs(AnyMetricArgs, PageArgs):
    threshold: float = Field(ge=0, description="In the metric's own units")


class FamilyThreshold(PageArgs):
    threshold_multiplier: float = _threshold(3.0)
