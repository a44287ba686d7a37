"""The environment as a model sees it: tools, tool calls and tool results as text.

Every model-facing harness (inference.py's OpenAI loop, the TRL environment class, SFT trajectories, an Inspect
task) goes through this module, so they offer the same tools, read calls the same way and show the model the same
results:

- `model_tools()`: one tool per registry tool, plus `submit_report(rows)` and `submit_generators(generators)`;
  `openai_tools()` is their OpenAI function schemas.
- `tool_action(name, arguments)`: a model's tool call as a `MetricTrackerRlAction`, or, for a mistake the model can
  fix (bad JSON, an unknown tool, an invalid submission), a readable error string; it never raises for those.
- `action_tool_call(action)`: the inverse, the tool call that an action is (for agents that send actions).
- `render_observation(observation)`: a step's observation as compact text; `first_prompt(observation)` the episode
  brief after reset.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from metric_tracker_rl.analysis_tools import TOOL_REGISTRY, available_analysis_methods
from metric_tracker_rl.models import (
    MAX_GENERATOR_CALLS,
    MetricSubmissionRow,
    MetricTrackerRlAction,
    MetricTrackerRlObservation,
    PayloadGeneratorMethod,
)

SUBMIT_REPORT = "submit_report"
SUBMIT_GENERATORS = "submit_generators"
DEFAULT_MAX_RESULT_CHARS = 12000

SYSTEM_PROMPT = """\
You investigate a synthetic product-funnel dataset (four weeks of daily and hourly counts of app_open ->
menu_open -> product_added_to_cart -> order_placed -> payment_successful) with read-only analysis tools and
submit one anomaly report that a grader scores.

Work like an analyst:
- Start with task_overview (row format, baseline and severity rules) and get_annotations: days explained
  by a campaign, a holiday or late-arriving data are not incidents and must not be reported.
- Use the get_*_rows generators (family-specific ones for funnel breaks, hourly traffic mix shifts and
  instrumentation/data-quality issues; the rate/count median generators for the rest) and payload_generator
  previews to find candidates; confirm doubtful ones with compare_*_to_median, detect_funnel_break,
  check_impossible_counts or hourly_rows_for_date.
- One incident moves several metrics: report the incident once, on the entity and family that explain it,
  not its side effects. Every extra row lowers precision; a missed incident lowers recall.
- Finish with exactly one submission: submit_report(rows) with rows copied from tool output, or
  submit_generators(generators). An empty report is right when nothing is anomalous.
Your steps are limited; be efficient and keep any text short."""


class _SubmissionArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SubmitReportArgs(_SubmissionArgs):
    rows: list[MetricSubmissionRow] = Field(
        description="Report rows copied from tool output ([] reports no incident)")


class SubmitGeneratorsArgs(_SubmissionArgs):
    generators: list[PayloadGeneratorMethod] = Field(
        max_length=MAX_GENERATOR_CALLS,
        description="Generator calls: method_name is a get_*_rows tool, the other fields its arguments")


@dataclass(frozen=True)
class ModelTool:
    """One tool offered to a model: its arguments are the fields of `args_model`."""

    name: str
    description: str
    args_model: type[BaseModel]
    parameters: dict[str, Any]  # JSON schema of the arguments

    def openai_schema(self) -> dict[str, Any]:
        return {"type": "function",
                "function": {"name": self.name, "description": self.description, "parameters": self.parameters}}


def _inline_definitions(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with each `$ref` replaced by its definition: item schemas a model reads in place."""
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(dict(definitions[node["$ref"].rsplit("/", 1)[-1]]))
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    return inline(schema)


def _submission_tool(name: str, description: str, args_model: type[BaseModel]) -> ModelTool:
    parameters = _inline_definitions(args_model.model_json_schema())
    parameters.pop("title", None)
    for prop in parameters["properties"].values():
        prop.pop("title", None)
    parameters["additionalProperties"] = False
    return ModelTool(name, description, args_model, parameters)


SUBMISSION_TOOLS: dict[str, ModelTool] = {
    SUBMIT_REPORT: _submission_tool(
        SUBMIT_REPORT, "Submit the final anomaly report as rows; it is graded.", SubmitReportArgs),
    SUBMIT_GENERATORS: _submission_tool(
        SUBMIT_GENERATORS, "Submit generator calls as the final report: the server runs them, merges their rows "
                           "(first row per key wins) and grades the result.", SubmitGeneratorsArgs),
}


def model_tools() -> list[ModelTool]:
    """Every registry tool in registration order, then the two submission tools."""
    registry = [ModelTool(spec.name, spec.description, spec.args_model, spec.parameters_schema())
                for spec in available_analysis_methods()]
    return registry + list(SUBMISSION_TOOLS.values())


def openai_tools() -> list[dict[str, Any]]:
    return [tool.openai_schema() for tool in model_tools()]


# --- tool calls <-> actions ---------------------------------------------------------------------------


def _validation_summary(exc: ValidationError) -> str:
    parts = [f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in exc.errors()[:5]]
    more = f" (+{exc.error_count() - 5} more)" if exc.error_count() > 5 else ""
    return "; ".join(parts) + more


def tool_action(name: str, arguments: str | dict[str, Any] | None) -> MetricTrackerRlAction | str:
    """The action of one tool call, or an error string that says what is valid (nothing is sent then).

    `arguments` is the call's JSON text (as OpenAI returns it) or the parsed object (as TRL passes it). Analysis
    tools' arguments are checked by the server, which answers a mistake with an error observation; submissions are
    checked here so that an invalid one uses no submission."""
    tool = SUBMISSION_TOOLS.get(name)
    if tool is None and name not in TOOL_REGISTRY:
        valid = ", ".join(t.name for t in model_tools())
        return f"error: unknown tool {name!r}; valid tools: {valid}"
    if isinstance(arguments, str) or arguments is None:
        try:
            arguments = json.loads(arguments or "{}")
        except json.JSONDecodeError as exc:
            return (f"error: the arguments of {name} are not valid JSON ({exc.msg} at position {exc.pos}); "
                    "call the tool again with one JSON object that matches its schema")
    if not isinstance(arguments, dict):
        return f"error: the arguments of {name} must be a JSON object"
    if tool is None:
        return MetricTrackerRlAction(analysis_method=name, analysis_args=arguments)
    try:
        submission = tool.args_model.model_validate(arguments)
    except ValidationError as exc:
        key = next(iter(tool.args_model.model_fields))
        return f"error: invalid {key} for {name}: {_validation_summary(exc)}. Nothing was submitted."
    if isinstance(submission, SubmitReportArgs):
        return MetricTrackerRlAction(classifications=submission.rows)
    return MetricTrackerRlAction(payload_generators=submission.generators)


def action_tool_call(action: MetricTrackerRlAction) -> tuple[str, dict[str, Any]]:
    """The tool call (name, arguments) that sends `action`: `tool_action` of it gives the same action back."""
    if action.analysis_method is not None:
        return action.analysis_method, dict(action.analysis_args)
    if action.payload_generators is not None:
        return SUBMIT_GENERATORS, {"generators": [m.model_dump(exclude_none=True) for m in action.payload_generators]}
    return SUBMIT_REPORT, {"rows": [row.model_dump() for row in action.classifications or []]}


# --- observations as text -----------------------------------------------------------------------------


def _clip(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    return text[:max_chars] + f" ... [truncated {len(text) - max_chars} characters; narrow the call]"


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _fit_rows(shown: dict[str, Any], max_chars: int) -> str:
    """The text of `shown` within `max_chars`: a result too long loses its last rows first (so the text stays
    JSON and says how many rows it shows); only what is still too long is cut."""
    text = _dumps(shown)
    result = shown.get("result")
    if len(text) <= max_chars or not isinstance(result, dict) or not isinstance(result.get("rows"), list):
        return _clip(text, max_chars)
    rows = result["rows"]
    keep = len(rows)
    while keep > 0 and len(text) > max_chars:
        keep = min(keep - 1, int(keep * max_chars / len(text)))
        note = f"Showing {keep} of {len(rows)} rows: narrow the call to see the rest."
        trimmed = {**shown, "result": {**result, "rows": rows[:keep], "rows_shown": keep},
                   "message": f"{shown['message']} {note}"}
        text = _dumps(trimmed)
    return _clip(text, max_chars)


def render_observation(observation: MetricTrackerRlObservation, max_chars: int = DEFAULT_MAX_RESULT_CHARS) -> str:
    """One step's observation as compact JSON text: status and message, the tool's result or the grading (score,
    counts, issues), and the budgets left. Catalogs and debug fields are left out."""
    shown: dict[str, Any] = {"status": observation.status, "message": observation.message}
    if observation.status == "ok":
        shown["result"] = observation.analysis_result
    elif observation.status == "graded":
        breakdown = observation.reward_breakdown
        shown.update(
            reward=observation.reward,
            reward_breakdown=breakdown.model_dump() if breakdown is not None else None,
            expected_row_count=observation.expected_row_count,
            correct_row_count=observation.correct_row_count,
            submission_issues=[issue.model_dump() for issue in observation.submission_issues],
        )
    shown.update(steps_remaining=observation.steps_remaining, submissions_remaining=observation.submissions_remaining,
                 done=observation.done)
    return _fit_rows(shown, max_chars)


def first_prompt(observation: MetricTrackerRlObservation) -> str:
    """The user message that opens an episode: the task, its visible config and the budgets."""
    brief = {
        "task_id": observation.task_id,
        "objective": observation.message,
        "instruction": observation.instruction,
        "config": observation.config,
        "steps_remaining": observation.steps_remaining,
        "submissions_remaining": observation.submissions_remaining,
        "conversion_metrics": {d.name: d.formula for d in observation.conversion_metric_definitions},
        # Where each family's incident is reported: every other key it moves is a side effect (a false positive).
        "root_cause_keys": {spec["family"]: {"entity_type": spec["entity_type"], "entity_names": spec["entity_names"]}
                            for spec in observation.available_synthetic_generator_methods},
    }
    return f"New episode:\n{json.dumps(brief, indent=1)}\nInvestigate with the tools, then submit one report."
