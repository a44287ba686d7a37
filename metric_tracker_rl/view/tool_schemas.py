"""The tools a model is offered and its calls read as actions.

- `model_tools(difficulty)`: one tool per registry tool the tier offers, plus `submit_report(rows)` and, where the
  data are counts (which the generators read), `submit_generators(generators)`; `openai_tools(difficulty)` is their
  OpenAI function schemas (compacted: keywords a model does not read are dropped), and `schema_chars(difficulty)`
  their size, which the tier's `tool_schema_budget` bounds.
- `tool_action(name, arguments)`: a model's tool call as a `MetricTrackerRlAction`, or, for a mistake the model can
  fix (bad JSON, an unknown tool, an invalid submission), a readable error string; it never raises for those.
- `action_tool_call(action)`: the inverse, the tool call that an action is (for agents that send actions).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from metric_tracker_rl.analysis_tools import TOOL_REGISTRY, available_analysis_methods
from metric_tracker_rl.analysis_tools.generators import generator_arguments
from metric_tracker_rl.analysis_tools.registry import ToolError, reads_data_of
from metric_tracker_rl.catalog.published import (
    ANOMALY_TYPES,
    DIFFICULTIES,
    ENTITY_TYPES,
    FAMILY_ENTITY_TYPE,
    RESET_DIFFICULTIES,
)
from metric_tracker_rl.catalog.tiers import COUNTS, EVENTS, TIERS, Holding
from metric_tracker_rl.catalog.validation import check_choice, describe_validation_error
from metric_tracker_rl.models import (
    MAX_GENERATOR_CALLS,
    MetricSubmissionRow,
    MetricTrackerRlAction,
    PayloadGeneratorMethod,
)
from metric_tracker_rl.world.audit_brief import AUDIT_FAMILIES
from metric_tracker_rl.world.warehouse_brief import DEFECT_FAMILY, QUERY_CREDIT, WAREHOUSE_INCIDENT_FAMILIES

SUBMIT_REPORT = "submit_report"
SUBMIT_GENERATORS = "submit_generators"


class _SubmissionArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SubmitReportArgs(_SubmissionArgs):
    rows: list[MetricSubmissionRow] = Field(description="Rows copied from tool results; [] reports no incident")


class SubmitGeneratorsArgs(_SubmissionArgs):
    generators: list[PayloadGeneratorMethod] = Field(
        max_length=MAX_GENERATOR_CALLS, description="Generator calls: a `get_*_rows` tool and its arguments"
    )


@dataclass(frozen=True)
class ModelTool:
    """One tool offered to a model: its arguments are the fields of `args_model`."""

    name: str
    description: str
    args_model: type[BaseModel]
    parameters: dict[str, Any]  # JSON schema of the arguments
    reads: frozenset[Holding] = frozenset()  # what of an episode it reads (a submission tool: what its rows come from)

    def openai_schema(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


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
            return compact(
                {**definitions[node["$ref"].rsplit("/", 1)[-1]], **{k: v for k, v in node.items() if k != "$ref"}}
            )
        variants = node.get("anyOf")
        if variants is not None and {"type": "null"} in variants and node.get("default", ...) is None:
            others = [variant for variant in variants if variant != {"type": "null"}]
            if len(others) == 1:
                node = {**{k: v for k, v in node.items() if k not in ("anyOf", "default")}, **others[0]}
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in _UNREAD_KEYWORDS or key == "$defs":
                continue
            out[key] = (
                {name: compact(prop) for name, prop in value.items() if not prop.get("hidden_from_models")}
                if key == "properties"
                else compact(value)
            )
        return out

    return compact(schema)


# Item fields whose prose a model needs: the graded fields no result table names a rule for.
_DESCRIBED_ITEM_FIELDS = frozenset({"detection_method", "repaired_value"})
# An item field only a tier that asks it offers (the audit from its version 2: SegmentedMix.repaired_values); the
# shared tool, which a client that fixes its tools before a reset lists, holds it for that tier.
REPAIRED_VALUE = "repaired_value"


def _without_item_descriptions(node: Any) -> Any:
    """A submission's item schema without per-field prose: its fields are the columns of the result tables the
    model copies them from, so names and types say it all (but for _DESCRIBED_ITEM_FIELDS)."""
    if isinstance(node, dict):
        described = node.get("properties", {})
        return {
            key: {
                name: value if name in _DESCRIBED_ITEM_FIELDS else _without_item_descriptions(value)
                for name, value in described.items()
            }
            if key == "properties"
            else _without_item_descriptions(value)
            for key, value in node.items()
            if key != "description"
        }
    return node


def _submission_tool(
    name: str, description: str, args_model: type[BaseModel], reads: frozenset[Holding] = frozenset()
) -> ModelTool:
    schema = model_schema(args_model.model_json_schema())
    for prop in schema["properties"].values():
        prop["items"] = _without_item_descriptions(prop["items"])
    return ModelTool(name, description, args_model, schema, reads)


SUBMISSION_TOOLS: dict[str, ModelTool] = {
    SUBMIT_REPORT: _submission_tool(
        SUBMIT_REPORT,
        "Submit the anomaly report for grading: one row per incident and date, on its root-cause key.",
        SubmitReportArgs,
    ),
    SUBMIT_GENERATORS: _submission_tool(
        SUBMIT_GENERATORS,
        "Submit generator calls as the report: their merged rows (first per key) are graded.",
        SubmitGeneratorsArgs,
        frozenset({COUNTS}),
    ),  # the generators read counts
}


# How a tier of raw events reads the report tool: its rows are findings the brief's rules define (not rows a tool
# returns), its method credit is query's once a query ran, and its enums offer only the tier's families.
RAW_EVENTS_REPORT = "Submit the report for grading: one row per date of each finding, on its key, as the brief says."
RAW_EVENTS_ROWS = "One row per date of each finding, its values the metrics layer's; [] reports no finding"
RAW_EVENTS_METHOD = QUERY_CREDIT


# The families a tier of raw events reports, by what its data are (the audit states its own: AUDIT_FAMILIES).
_FAMILIES_BY_DATA: dict[str, tuple[str, ...]] = {EVENTS: (*WAREHOUSE_INCIDENT_FAMILIES, DEFECT_FAMILY)}


def reported_families(difficulty: str) -> tuple[str, ...]:
    """The families a report row may name at a tier, in publication order: at a tier of raw events those its
    brief lists and the data defects' (the audit's AUDIT_FAMILIES, the warehouse's incident families), elsewhere
    every published family."""
    tier = TIERS[difficulty]
    audit = tuple(family["family"] for family in AUDIT_FAMILIES)
    named = audit if tier.hides_mechanisms else _FAMILIES_BY_DATA.get(tier.data, ANOMALY_TYPES)
    return tuple(family for family in ANOMALY_TYPES if family in named)


def asks_repaired_values(difficulty: str) -> bool:
    """Whether a tier's report rows take a repaired value (its latest version's mix asks them)."""
    return TIERS[difficulty].repaired_values


@cache
def report_tool(difficulty: str) -> ModelTool:
    """submit_report as the tier reads it: without repaired_value where the tier asks none; where it offers only
    some families (a tier of raw events), its own texts and its families' enums."""
    tool = SUBMISSION_TOOLS[SUBMIT_REPORT]
    parameters = copy.deepcopy(tool.parameters)
    rows = parameters["properties"]["rows"]
    fields = rows["items"]["properties"]
    if not asks_repaired_values(difficulty):
        del fields[REPAIRED_VALUE]
    families = reported_families(difficulty)
    if families == ANOMALY_TYPES:
        return replace(tool, parameters=parameters)
    rows["description"] = RAW_EVENTS_ROWS
    fields["anomaly_type"]["enum"] = list(families)
    entity_types = {FAMILY_ENTITY_TYPE[family] for family in families}
    fields["entity_type"]["enum"] = [name for name in ENTITY_TYPES if name in entity_types]
    fields["detection_method"]["description"] = RAW_EVENTS_METHOD
    return replace(tool, description=RAW_EVENTS_REPORT, parameters=parameters)


def model_tools(difficulty: str | None = None) -> list[ModelTool]:
    """The registry tools the tier `difficulty` offers its models, in registration order, then the two submission
    tools. With no difficulty, every tool some tier offers: the list of a client that fixes its tools before a
    reset picks the tier (the TRL class's methods, MCP's tools/list)."""
    if difficulty is None:
        return [
            *(
                _model_tool(spec.name, *spec.read_at(None))
                for spec in available_analysis_methods()
                if _offered_to_clients(spec.offered_at)
            ),
            *SUBMISSION_TOOLS.values(),
        ]
    data = TIERS[check_choice("difficulty", difficulty, RESET_DIFFICULTIES)].data
    registry = [
        _model_tool(spec.name, *spec.read_at(difficulty))
        for spec in available_analysis_methods()
        if difficulty in spec.offered_at
    ]
    submissions = [
        report_tool(difficulty) if tool.name == SUBMIT_REPORT else tool for tool in SUBMISSION_TOOLS.values()
    ]
    return [*registry, *(tool for tool in submissions if reads_data_of(tool.reads, data))]


def _model_tool(name: str, description: str, args_model: type[BaseModel]) -> ModelTool:
    return ModelTool(name, description, args_model, model_schema(args_model.model_json_schema()))


def _offered_to_clients(tiers: tuple[str, ...]) -> bool:
    """Whether a client that fixes its tools before a reset lists a tool: offered at a listed tier (a tier being
    built brings its own tools to those lists when it is listed)."""
    return any(tier in DIFFICULTIES for tier in tiers)


def openai_tools(difficulty: str | None = None) -> list[dict[str, Any]]:
    """The OpenAI function schemas of `model_tools(difficulty)`."""
    return [tool.openai_schema() for tool in model_tools(difficulty)]


def schema_chars(difficulty: str | None = None) -> int:
    """The characters the tool list of `difficulty` takes, as JSON in a request (its tier's `tool_schema_budget`
    bounds it): what a tool offered there adds to every prompt."""
    return sum(len(json.dumps(tool)) for tool in openai_tools(difficulty))


# --- tool calls <-> actions ---------------------------------------------------------------------------


def tool_action(
    name: str, arguments: str | dict[str, Any] | None, difficulty: str | None = None
) -> MetricTrackerRlAction | str:
    """The action of one tool call, or an error string that says what is valid (nothing is sent then).

    `arguments` is the call's JSON text (as OpenAI returns it) or the parsed object (as TRL passes it). Analysis
    tools' arguments are checked by the server, which answers a mistake with an error observation; submissions are
    checked here so that an invalid one uses no submission. An unknown tool's error lists the tools of the episode's
    tier `difficulty` (None: before a reset, every tool some listed tier offers)."""
    tool = SUBMISSION_TOOLS.get(name)
    if tool is None and name not in TOOL_REGISTRY:
        valid = ", ".join(t.name for t in model_tools(difficulty))
        return f"error: unknown tool {name!r}; valid tools: {valid}"
    if isinstance(arguments, str) or arguments is None:
        try:
            arguments = json.loads(arguments or "{}")
        except json.JSONDecodeError as exc:
            return (
                f"error: the arguments of {name} are not valid JSON ({exc.msg} at position {exc.pos}); "
                "call the tool again with one JSON object that matches its schema"
            )
    if not isinstance(arguments, dict):
        return f"error: the arguments of {name} must be a JSON object"
    if tool is None:
        return MetricTrackerRlAction(analysis_method=name, analysis_args=arguments)
    key = next(iter(tool.args_model.model_fields))
    try:
        submission = tool.args_model.model_validate(arguments)
    except ValidationError as exc:
        return (
            f"error: invalid {key} for {name}: {describe_validation_error(exc)}. {_item_fields(tool)}. "
            "Nothing was submitted."
        )
    if isinstance(submission, SubmitReportArgs):
        return MetricTrackerRlAction(classifications=submission.rows)
    if not isinstance(submission, SubmitGeneratorsArgs):
        raise TypeError(f"{name} is neither submission tool")
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
