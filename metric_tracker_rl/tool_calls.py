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
- `seen(observation)`: the structured view of what that text shows (explicit status, numbers as shown, typed rows,
  the brief as data) with the text; `read_observation(text)` reads the same view off the text alone.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from metric_tracker_rl import view
from metric_tracker_rl.analysis_tools import TOOL_REGISTRY, available_analysis_methods
from metric_tracker_rl.analysis_tools.generators import generator_arguments
from metric_tracker_rl.analysis_tools.registry import ToolError
from metric_tracker_rl.catalog import (
    AGGREGATE_WINDOW_DAYS,
    ANNOTATION_MEANINGS,
    DIFFICULTIES,
    SEGMENTED_DIFFICULTIES,
    WINDOW_DAYS,
    fluctuation_bounds,
    incident_count_statement,
)
from metric_tracker_rl.funnel import window_dates
from metric_tracker_rl.models import (
    MAX_GENERATOR_CALLS,
    MetricSubmissionRow,
    MetricTrackerRlAction,
    MetricTrackerRlObservation,
    PayloadGeneratorMethod,
)
from metric_tracker_rl.segments import RELEASE_MEANING, SEGMENT_FIELDS, benign_brief, frontier_brief
from metric_tracker_rl.validation import describe_validation_error

SUBMIT_REPORT = "submit_report"
SUBMIT_GENERATORS = "submit_generators"

SYSTEM_PROMPT = """\
You investigate a synthetic product-funnel dataset (four weeks, or eight with segments, of daily and hourly
counts of app_open -> menu_open -> product_added_to_cart -> order_placed -> payment_successful) with read-only
analysis tools and submit one anomaly report that a grader scores.

Work like an analyst:
- Read the brief (each family's definition, root-cause entities and detection methods, the benign
  fluctuations), then get_annotations: a campaign, a holiday or late-arriving data explains its date. A release
  note only says that an app version shipped: the brief's calendar_note_kinds says what a release can do.
- list_suspicious_dates shows where to look; the get_*_rows tools list candidate rows, strongest first,
  a page at a time (limit, offset); confirm doubtful ones with compare_*, detect_funnel_break,
  check_impossible_counts or hourly_rows_for_date. All of these read the whole funnel. With segments
  (frontier) every incident is confined to a segment and may barely show there: find it with
  compare_segments or query, then read its row with the compare_*, detect_funnel_break,
  check_impossible_counts or hourly_rows_for_date arguments platform, country and app_version.
- One incident moves several metrics: report it on the entity and family that explain it, one row per date
  it lasts, never its side effects. Every extra row lowers precision; a missed incident lowers recall.
- Finish with one submission: submit_report(rows) with rows copied from tool results, or
  submit_generators(generators). An empty report is right when nothing is anomalous.
Your steps are limited; be efficient and keep any text short."""


class _SubmissionArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SubmitReportArgs(_SubmissionArgs):
    rows: list[MetricSubmissionRow] = Field(description="Rows copied from tool results; [] reports no incident")


class SubmitGeneratorsArgs(_SubmissionArgs):
    generators: list[PayloadGeneratorMethod] = Field(
        max_length=MAX_GENERATOR_CALLS,
        description="Generator calls: a get_*_rows tool and its arguments")


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


# Schema keywords a model does not need in order to call a tool well. Every numeric bound the validator enforces
# (minimum, maximum, exclusiveMinimum, ...) stays: a model reads what it may send from the schema, not from a
# refusal. The lengths of names and lists are only guards against junk, far above any sensible call.
_UNREAD_KEYWORDS = frozenset({"title", "additionalProperties", "maxLength", "minLength", "maxItems", "minItems"})


def model_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema as a model reads it: definitions inlined where they are used, an optional field
    (`X | None = None`) shown as X, and no keywords that only guard against junk."""
    definitions = schema.get("$defs", {})

    def compact(node: Any) -> Any:
        if isinstance(node, list):
            return [compact(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            return compact({**definitions[node["$ref"].rsplit("/", 1)[-1]],
                            **{k: v for k, v in node.items() if k != "$ref"}})
        variants = node.get("anyOf")
        if variants is not None and {"type": "null"} in variants and node.get("default", ...) is None:
            others = [variant for variant in variants if variant != {"type": "null"}]
            if len(others) == 1:
                node = {**{k: v for k, v in node.items() if k not in ("anyOf", "default")}, **others[0]}
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in _UNREAD_KEYWORDS or key == "$defs":
                continue
            out[key] = ({name: compact(prop) for name, prop in value.items() if not prop.get("hidden_from_models")}
                        if key == "properties" else compact(value))
        return out

    return compact(schema)


# Item fields whose prose a model needs: the graded field no result table names a rule for.
_DESCRIBED_ITEM_FIELDS = frozenset({"detection_method"})


def _without_item_descriptions(node: Any) -> Any:
    """A submission's item schema without per-field prose: its fields are the columns of the result tables the
    model copies them from, so names and types say it all (but for _DESCRIBED_ITEM_FIELDS)."""
    if isinstance(node, dict):
        described = node.get("properties", {})
        return {key: {name: value if name in _DESCRIBED_ITEM_FIELDS else _without_item_descriptions(value)
                      for name, value in described.items()} if key == "properties"
                else _without_item_descriptions(value)
                for key, value in node.items() if key != "description"}
    return node


def _submission_tool(name: str, description: str, args_model: type[BaseModel]) -> ModelTool:
    schema = model_schema(args_model.model_json_schema())
    for prop in schema["properties"].values():
        prop["items"] = _without_item_descriptions(prop["items"])
    return ModelTool(name, description, args_model, schema)


SUBMISSION_TOOLS: dict[str, ModelTool] = {
    SUBMIT_REPORT: _submission_tool(
        SUBMIT_REPORT, "Submit the anomaly report for grading: one row per incident and date, on its root-cause "
        "key.",
        SubmitReportArgs),
    SUBMIT_GENERATORS: _submission_tool(
        SUBMIT_GENERATORS, "Submit generator calls as the report: their merged rows (first per key) are graded.",
        SubmitGeneratorsArgs),
}


def model_tools() -> list[ModelTool]:
    """Every registry tool offered to models, in registration order, then the two submission tools."""
    registry = [ModelTool(spec.name, spec.description, spec.args_model,
                          model_schema(spec.args_model.model_json_schema()))
                for spec in available_analysis_methods() if spec.offered]
    return registry + list(SUBMISSION_TOOLS.values())


def openai_tools() -> list[dict[str, Any]]:
    return [tool.openai_schema() for tool in model_tools()]


# --- tool calls <-> actions ---------------------------------------------------------------------------


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
    key = next(iter(tool.args_model.model_fields))
    try:
        submission = tool.args_model.model_validate(arguments)
    except ValidationError as exc:
        return (f"error: invalid {key} for {name}: {describe_validation_error(exc)}. {_item_fields(tool)}. "
                "Nothing was submitted.")
    if isinstance(submission, SubmitReportArgs):
        return MetricTrackerRlAction(classifications=submission.rows)
    for i, generator in enumerate(submission.generators):
        try:
            generator_arguments(generator)
        except ToolError as exc:
            return f"error: invalid {key} for {name}: generators[{i}]: {exc}. Nothing was submitted."
    return MetricTrackerRlAction(payload_generators=submission.generators)


def _item_fields(tool: ModelTool) -> str:
    """What each item of a submission takes, as its schema offers it."""
    [prop] = tool.parameters["properties"].values()
    return f"Each item takes {', '.join(prop['items']['properties'])}"


def action_tool_call(action: MetricTrackerRlAction) -> tuple[str, dict[str, Any]]:
    """The tool call (name, arguments) that sends `action`: `tool_action` of it gives the same action back."""
    if action.analysis_method is not None:
        return action.analysis_method, dict(action.analysis_args)
    if action.payload_generators is not None:
        return SUBMIT_GENERATORS, {"generators": [m.model_dump(exclude_none=True) for m in action.payload_generators]}
    # Unset segment fields are left out: the schema types them as strings, and a schema-checking harness (Inspect)
    # refuses a null where a string is declared.
    return SUBMIT_REPORT, {"rows": [row.model_dump(exclude_none=True) for row in action.classifications or []]}


# --- observations as text -----------------------------------------------------------------------------


def _result_view(result: dict[str, Any]) -> tuple[dict[str, Any], dict[str, int]]:
    """A tool result as the model reads it: without the echo of the call (the model wrote it) and with a paged
    table's count folded into its header (`rows: 20 of 112 rows`, then `next_offset` while rows remain)."""
    shown = {key: value for key, value in result.items() if key not in ("method", "arguments")}
    totals: dict[str, int] = {}
    if "row_count" in shown and isinstance(shown.get("rows"), list):
        totals["rows"] = shown.pop("row_count")
        if not shown.get("offset"):
            shown.pop("offset", None)
        if shown.get("next_offset") is None:
            shown.pop("next_offset", None)
        shown.pop("truncated", None)
    return shown, totals


def _graded_view(observation: MetricTrackerRlObservation) -> dict[str, Any]:
    breakdown = observation.reward_breakdown
    graded: dict[str, Any] = {"message": observation.message, "reward": observation.reward}
    if breakdown is not None:
        graded.update({key: value for key, value in breakdown.model_dump().items() if value is not None})
    for key in ("expected_row_count", "correct_row_count"):
        if getattr(observation, key) is not None:
            graded[key] = getattr(observation, key)
    if observation.submission_issues:
        graded["submission_issues"] = [issue.model_dump() for issue in observation.submission_issues]
    if observation.comparison is not None:  # the episode is over: why the score is what it is, row by row
        graded["verdicts"] = [{"row": entry["row_index"], "key": entry["key"], "verdict": entry["verdict"],
                               "quality": entry.get("quality")} for entry in observation.comparison["rows"]]
        graded["missed"] = [_missed_key(row) for row in observation.comparison["missed"]]
    return graded


def _missed_key(row: dict[str, Any]) -> str:
    """An expected row's key, with its segment where it names one."""
    segment = ",".join(f"{name}={row[name]}" for name in SEGMENT_FIELDS if row.get(name))
    key = f"{row['date']}|{row['entity_type']}|{row['entity_name']}"
    return f"{key} ({segment})" if segment else key


Shown = tuple[dict[str, Any], dict[str, int], dict[str, frozenset[str]]]


def _shown(observation: MetricTrackerRlObservation) -> Shown:
    """What a step's text shows (see `view.render`): the shown value, the paged tables' totals and the columns
    each table states once."""
    totals: dict[str, int] = {}
    shared: dict[str, frozenset[str]] = {}
    if observation.status == "ok":
        shown, totals = _result_view(observation.analysis_result or {})
        method = (observation.analysis_result or {}).get("method")
        spec = TOOL_REGISTRY.get(method) if isinstance(method, str) else None
        if spec is not None and spec.constant_columns:
            shared["rows"] = spec.constant_columns
        if observation.message != f"{method} ran.":
            shown["note"] = observation.message
    elif observation.status == "graded":
        shown = {"graded": _graded_view(observation)}
    else:
        shown = {"error": observation.message}
        if observation.submission_issues:
            shown["submission_issues"] = [issue.model_dump() for issue in observation.submission_issues]
    shown.update(steps_remaining=observation.steps_remaining, submissions_remaining=observation.submissions_remaining)
    if observation.done:
        shown["episode_over"] = True
    return shown, totals, shared


def render_observation(observation: MetricTrackerRlObservation) -> str:
    """One step's observation as the model reads it (see `view`): the tool's result, an `error:` line, or a
    `graded:` block; then the budgets left. Catalogs and debug fields are left out."""
    return view.render(*_shown(observation))


def _config_view(config: dict[str, Any]) -> dict[str, Any]:
    """The settings that are set (no null or empty ones), without anomaly_density: the `incidents` line says
    what may be inferred about the count, and the density, read as a share of 28 dates, would mislead."""
    return {key: value for key, value in config.items()
            if value not in (None, [], {}) and key != "anomaly_density"}


def brief_data(observation: MetricTrackerRlObservation) -> dict[str, Any]:
    """What an episode publishes at its start, as data: the task, its visible config and budgets, the metrics,
    the families (each with its definition, its `root_cause_entities` and `detection_methods` as lists and, per
    difficulty, its magnitude range as a (low, high) pair), and the bounds of the benign fluctuations.
    `first_prompt` renders it."""
    families = []
    for spec in observation.available_synthetic_generator_methods:
        magnitude = spec["magnitude"]
        families.append({"family": spec["family"], "entity_type": spec["entity_type"],
                         "root_cause_entities": list(spec["entity_names"]),
                         "definition": spec["description"],
                         "detection_methods": list(spec["detection_methods"]),
                         "magnitude": magnitude["meaning"],
                         **{difficulty: (low, high) for difficulty, (low, high) in
                            magnitude["by_difficulty"].items()}})
    shown: dict[str, Any] = {"objective": observation.message.removeprefix("Episode ready: ")}
    if observation.task_id is not None:
        shown["task_id"] = observation.task_id
    difficulty = observation.config.get("difficulty")
    dates = window_dates(WINDOW_DAYS.get(difficulty, AGGREGATE_WINDOW_DAYS))
    shown.update({
        "config": _config_view(observation.config),
        "incidents": incident_count_statement(observation.config),
        "window": {"first_date": dates[0].isoformat(), "last_date": dates[-1].isoformat(), "days": len(dates)},
        "steps_remaining": observation.steps_remaining,
        "submissions_remaining": observation.submissions_remaining,
        "conversion_metrics": [{"metric": d.name, "formula": d.formula}
                               for d in observation.conversion_metric_definitions],
        # Where each family's incident is reported (every other key it moves is a side effect), and how large
        # its incidents are at each difficulty.
        "families": families,
        "benign_fluctuations": published_fluctuation_bounds(str(observation.config.get("difficulty", ""))),
        "calendar_note_kinds": dict(ANNOTATION_MEANINGS) if difficulty not in SEGMENTED_DIFFICULTIES
        else {**ANNOTATION_MEANINGS, "release": RELEASE_MEANING},
    })
    if difficulty in SEGMENTED_DIFFICULTIES:
        # No magnitude is published at frontier: the other tiers' ranges would be a threshold to read off.
        shown["families"] = [{k: v for k, v in family.items() if k not in WINDOW_DAYS} for family in families]
        shown["benign_fluctuations"] = benign_brief(difficulty)
        shown["segments"] = frontier_brief(difficulty)
    return shown


# A brief's family columns that hold a list (the text joins it with commas).
_FAMILY_LIST_COLUMNS = ("root_cause_entities", "detection_methods")


def _family_text(family: dict[str, Any]) -> dict[str, Any]:
    """A brief's family row as its text shows it: lists joined by commas, ranges as `low-high`."""
    return {key: ",".join(value) if key in _FAMILY_LIST_COLUMNS
            else f"{value[0]}-{value[1]}" if key in DIFFICULTIES else value
            for key, value in family.items()}


def _brief_text(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "families": [_family_text(family) for family in data["families"]]}


def published_fluctuation_bounds(difficulty: str) -> dict[str, Any]:
    """The bounds the objective calls published for the episode's difficulty: benign swings and shifts stay
    inside them (and on easy and medium, count incidents stay above a published share of the day's volume)."""
    return fluctuation_bounds(difficulty)


FIRST_PROMPT_NEXT = "investigate with the tools, then submit one report"


def first_prompt(observation: MetricTrackerRlObservation) -> str:
    """The user message that opens an episode: its brief, then what to do."""
    return _first_prompt_text(brief_data(observation))


def _first_prompt_text(data: dict[str, Any]) -> str:
    return view.render({**_brief_text(data), "next": FIRST_PROMPT_NEXT})


# --- the structured view (reference agents decide from it) -------------------------------------------


@dataclass(frozen=True)
class Feedback:
    """A graded submission's numbers as its text shows them."""

    score: float
    matched_row_count: int | None = None
    submitted_row_count: int | None = None
    false_positive_count: int | None = None


@dataclass(frozen=True)
class SeenObservation:
    """One step (or the brief) as a model reads it: `text` is what the model reads, and every other field is a
    fact that text shows (numbers at the precision shown), so an agent that decides from them decides from what
    a model could read. `brief` is `brief_data`'s value: families' entities as lists, magnitude ranges as pairs."""

    text: str
    status: Literal["ready", "ok", "error", "graded"]  # ready: the brief
    analysis_result: dict[str, Any] | None = None
    reward_breakdown: Feedback | None = None
    expected_row_count: int | None = None
    steps_remaining: int = 0
    submissions_remaining: int = 0
    done: bool = False
    config: dict[str, Any] = field(default_factory=dict)
    brief: dict[str, Any] = field(default_factory=dict)


_BUDGET_KEYS = ("steps_remaining", "submissions_remaining")


def _feedback(graded: dict[str, Any]) -> Feedback:
    return Feedback(**{key: graded[key] for key in Feedback.__dataclass_fields__ if key in graded})


def _rounded_brief(data: dict[str, Any]) -> dict[str, Any]:
    """The brief's data at the precision its text shows (a magnitude range is shown whole, as `low-high`)."""
    return {key: [dict(view.rounded({k: v for k, v in family.items() if k not in DIFFICULTIES}),
                       **{k: v for k, v in family.items() if k in DIFFICULTIES}) for family in value]
            if key == "families" else view.rounded(value) for key, value in data.items()}


def seen(observation: MetricTrackerRlObservation) -> SeenObservation:
    """An observation as the structured view of what its model-facing text shows, with that text."""
    if observation.status == "ready":
        published = brief_data(observation)
        data = _rounded_brief({**published, "next": FIRST_PROMPT_NEXT})
        budgets = {key: data.pop(key) for key in _BUDGET_KEYS}
        return SeenObservation(_first_prompt_text(published), "ready", config=data["config"], brief=data, **budgets)
    shown, totals, shared = _shown(observation)
    text = view.render(shown, totals, shared)
    value = view.rounded(shown)
    budgets = {**{key: value.pop(key) for key in _BUDGET_KEYS}, "done": bool(value.pop("episode_over", False))}
    return _step_view(text, observation.status, value, budgets)


def _step_view(text: str, status: str, value: dict[str, Any], budgets: dict[str, Any]) -> SeenObservation:
    """A tool result's, an error's or a grading's view from its shown value (budgets taken out)."""
    if status == "error":
        return SeenObservation(text, "error", **budgets)
    if status == "graded":
        graded = value["graded"]
        return SeenObservation(text, "graded", reward_breakdown=_feedback(graded),
                               expected_row_count=graded.get("expected_row_count"), **budgets)
    return SeenObservation(text, "ok", analysis_result=value, **budgets)


# --- reading the text back (for harnesses that hold only the text: a test, an Inspect transcript) -----

_RANGE = re.compile(r"^(-?\d+(?:\.\d+)?(?:e[-+]?\d+)?)-(-?\d+(?:\.\d+)?(?:e[-+]?\d+)?)$")


def _family_from_text(family: dict[str, Any]) -> dict[str, Any]:
    """`_family_text` undone."""
    def value_of(key: str, value: Any) -> Any:
        if key in _FAMILY_LIST_COLUMNS:
            return str(value).split(",")
        if key in DIFFICULTIES:
            match = _RANGE.match(str(value))
            if match is None:
                raise view.ViewParseError(f"{key} of family {family.get('family')!r} is no range: {value!r}")
            return float(match.group(1)), float(match.group(2))
        return value

    return {key: value_of(key, value) for key, value in family.items()}


def read_observation(text: str) -> SeenObservation:
    """The view of the observation that `render_observation` (or `first_prompt`) wrote as `text`: `seen`'s
    value, read off the text alone."""
    value = view.parse(text)
    budgets = {"steps_remaining": value.pop("steps_remaining", 0),
               "submissions_remaining": value.pop("submissions_remaining", 0),
               "done": bool(value.pop("episode_over", False))}
    if "benign_fluctuations" in value:  # only the brief publishes them
        value["families"] = [_family_from_text(family) for family in value.get("families", [])]
        return SeenObservation(text, "ready", config=value.get("config", {}), brief=value, **budgets)
    status = "error" if "error" in value else "graded" if "graded" in value else "ok"
    return _step_view(text, status, value, budgets)
