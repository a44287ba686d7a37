"""Wire types: the action, observation and state the client and the server exchange, on OpenEnv's bases.

The plain types they hold live in `plain_types`, which does not import OpenEnv; they are re-exported here, so
`from metric_tracker_rl.models import MetricSubmissionRow` keeps working."""

from __future__ import annotations

from typing import Any, Literal

from openenv.core.env_server.types import Action, Observation, State
from pydantic import Field

from metric_tracker_rl.catalog.plain_types import (
    HIDDEN_FROM_MODELS,
    MAX_GENERATOR_CALLS,
    THRESHOLD_MULTIPLIER_BOUNDS,
    AnalysisMethodInfo,
    AnomalyRequest,
    ConversionMetricDefinition,
    EpisodeWindow,
    MetricSubmissionRow,
    PayloadGeneratorMethod,
    RewardBreakdown,
    SubmissionIssue,
    TaskInfo,
    submission_row_type,
)

__all__ = [
    "HIDDEN_FROM_MODELS",
    "MAX_GENERATOR_CALLS",
    "THRESHOLD_MULTIPLIER_BOUNDS",
    "AnalysisMethodInfo",
    "AnomalyRequest",
    "ConversionMetricDefinition",
    "EpisodeWindow",
    "MetricSubmissionRow",
    "MetricTrackerRlAction",
    "MetricTrackerRlObservation",
    "MetricTrackerRlState",
    "PayloadGeneratorMethod",
    "RewardBreakdown",
    "SubmissionIssue",
    "TaskInfo",
    "submission_row_type",
]


class MetricTrackerRlAction(Action):
    """Exactly one of: an analysis call, a direct submission, or a payload-generator submission.

    `classifications=[]` submits an empty report (the right answer when nothing is anomalous).
    """

    classifications: list[MetricSubmissionRow] | None = Field(
        default=None, description="Rows to grade (a direct submission); [] submits an empty report"
    )
    analysis_method: str | None = Field(default=None, description="Analysis tool to run", max_length=128)
    analysis_args: dict[str, Any] = Field(default_factory=dict, description="Arguments of the analysis tool")
    payload_generators: list[PayloadGeneratorMethod] | None = Field(
        default=None,
        max_length=MAX_GENERATOR_CALLS,
        description="Generator methods whose merged rows are graded (a declarative submission)",
    )
    step_id: int | None = Field(
        default=None,
        ge=0,
        le=2**53,
        description="The client's number for this step (optional). A step sent again with the number of the session's "
        "last answered step is answered with that step's observation and not run again: a client that lost "
        "its connection mid-step resends it safely",
    )


class MetricTrackerRlObservation(Observation):
    """What a step or a reset produced, as structure only. The text a model reads is rendered from it where it is
    read (`view.observation.render_observation`, `view.prompt.first_prompt`), so each fact crosses the wire once."""

    status: Literal["ready", "ok", "graded", "error"] = Field(
        default="ready", description="ready after reset, ok after an analysis call, graded after a submission"
    )
    message: str = Field(default="", description="Human-readable summary of what happened")
    task_id: str | None = Field(default=None, description="Named task of the episode, if any")
    instruction: str = Field(default="", description="What the agent is asked to do")
    config: dict[str, Any] = Field(default_factory=dict, description="Visible episode configuration")
    steps_remaining: int = Field(default=0, description="Steps left in the episode")
    submissions_remaining: int = Field(default=0, description="Graded submissions left in the episode")
    truncated: bool = Field(
        default=False,
        description="The episode was cut off by the step budget (done without "
        "its report graded), rather than ended by its submission",
    )
    # The episode's published facts: sent on reset only, so a client shows what this server built.
    objective: str | None = Field(default=None, description="What the episode asks for")
    window: EpisodeWindow | None = Field(default=None, description="The dates the episode covers")
    benign_fluctuations: dict[str, Any] | str | None = Field(
        default=None,
        description="What is published of the benign changes at the episode's difficulty (their bounds; "
        "with segments, a sentence)",
    )
    segments: dict[str, Any] | None = Field(
        default=None, description="A segmented episode's dimensions, tables and rules (None: one aggregate funnel)"
    )
    # Catalogs: sent on reset only.
    available_methods: list[AnalysisMethodInfo] = Field(default_factory=list, description="Analysis tools")
    available_synthetic_generator_methods: list[dict[str, Any]] = Field(
        default_factory=list, description="Anomaly injectors and their parameters (for custom scenarios)"
    )
    available_tasks: list[TaskInfo] = Field(default_factory=list, description="Named tasks")
    conversion_metric_definitions: list[ConversionMetricDefinition] = Field(default_factory=list)
    # Latest tool output.
    analysis_result: dict[str, Any] | None = Field(default=None, description="Result of the analysis call")
    # Latest submission.
    generated_rows: list[MetricSubmissionRow] = Field(
        default_factory=list, description="Rows built by payload generators"
    )
    submitted_rows: list[MetricSubmissionRow] = Field(default_factory=list, description="Rows that were graded")
    submission_preview: dict[str, Any] | None = Field(default=None, description="Counts of the graded rows")
    submission_issues: list[SubmissionIssue] = Field(default_factory=list)
    reward_breakdown: RewardBreakdown | None = Field(default=None)
    episode_score: float | None = Field(
        default=None,
        description="The episode's score so far: the best graded score, which is also the sum of the episode's rewards",
    )
    expected_row_count: int | None = Field(default=None, description="Expected rows (after the last submission)")
    correct_row_count: int | None = Field(default=None, description="Expected keys reported (after a submission)")
    comparison: dict[str, Any] | None = Field(
        default=None,
        description="Once the episode is over, in open mode only (never held-out): each graded row's "
        "verdict against the expected keys (`rows`) and the expected rows no row reported (`missed`)",
    )
    debug: dict[str, Any] | None = Field(default=None, description="Ground truth; only in server debug mode")


class MetricTrackerRlState(State):
    """The session's progress, as `state()` and `/schema` report it (OpenEnv's State holds only the id and steps)."""

    task_id: str | None = Field(default=None, description="Named task of the episode, if any")
    submissions_used: int = Field(default=0, ge=0, description="Graded submissions used so far")
    done: bool = Field(default=False, description="Whether the episode is over")
    last_score: float | None = Field(default=None, description="Score of the latest graded submission, if any")
    episode_score: float | None = Field(
        default=None,
        description="The episode's score so far: the best graded score, which is also the sum of its rewards",
    )
