"""`check_tool`: what every tool must meet, checked on one tool of a registry (the package's, or a third party's
own), as Gymnasium's `check_env` checks an environment.

A tool meets its contract when its schema is its argument model's (what the model validates is what the schema
says), its text reads well in every tool list that offers it and fits each one's budget, a mistaken call is an
error observation that names what is valid (never an exception), it answers in plain JSON where it says it
answers, it writes nothing to the episode, and the same call on the same seed's episode gives the same answer.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from metric_tracker_rl.analysis_tools import TOOL_REGISTRY
from metric_tracker_rl.analysis_tools.registry import (
    EVERY_TIER,
    MAX_PAGE_ROWS,
    ToolOutcome,
    ToolSpec,
    offered_fields,
    run_tool,
)
from metric_tracker_rl.catalog.tiers import TIERS
from metric_tracker_rl.checks.episodes import digest, public_episode, refusing_episode
from metric_tracker_rl.checks.failure import CheckFailed, require
from metric_tracker_rl.view.tool_schemas import ModelTool, model_schema, schema_chars
from metric_tracker_rl.world.public_episode import PublicEpisode

# A tool's description: long enough to say when to use it, short enough for every tier's budget.
DESCRIPTION_CHARS = (20, 110)
# An argument no tool takes, and a value no tool accepts as a name: the mistakes the error checks make.
UNKNOWN_ARGUMENT = "not_an_argument"
UNKNOWN_VALUE = "no_such_value"


def check_tool(name: str, tools: Mapping[str, ToolSpec] = TOOL_REGISTRY, seed: int = 1) -> None:
    """Check the tool `name` of `tools` (a mapping of specs, e.g. a test's own Registry) on episodes of `seed`.
    Raises CheckFailed naming the first check the tool fails."""
    spec = tools.get(name)
    require(spec is not None, "registered", f"tool {name!r}", "a tool of the registry given", sorted(tools))
    assert spec is not None  # for the type checker: require raised otherwise
    subject = f"tool {name!r}"
    require(bool(spec.answers_at), "answers only where registered", subject, "a tier it answers at", spec.answers_at)
    check_schema(spec, subject)
    check_model_text(spec, subject)
    check_schema_budget(spec, subject)
    tier = answering_tier(spec)
    with public_episode(tier, seed) as episode, public_episode(tier, seed) as twin:
        before = digest(episode)
        answer = check_answers(spec, tools, episode, subject, tier)
        check_errors_are_observations(spec, tools, episode, subject)
        require(
            digest(episode) == before,
            "read-only",
            subject,
            "the episode's data unchanged by its calls",
            "the episode changed",
        )
        again = run_tool(name, twin, spec.example, tools)
        require(
            again == answer,
            "deterministic",
            subject,
            f"the same answer on another build of seed {seed} at {tier}",
            _difference(answer, again),
        )
    check_silent_tiers(spec, tools, seed, subject)


def answering_tier(spec: ToolSpec) -> str:
    """The tier a tool's answers are checked at: hard where it answers there, else the first it answers at."""
    return "hard" if "hard" in spec.answers_at else spec.answers_at[0]


def check_schema(spec: ToolSpec, subject: str) -> None:
    """The wire schema is the argument model's: the same fields, the same required ones, nothing else taken, an
    example that validates; and the model refuses an argument it does not have."""
    schema = spec.openai_schema()
    require(
        schema["function"]["name"] == spec.name,
        "schema",
        subject,
        "the schema named as the tool",
        schema["function"]["name"],
    )
    parameters = schema["function"]["parameters"]
    fields = spec.args_model.model_fields
    required = sorted(name for name, field in fields.items() if field.is_required())
    require(parameters.get("type") == "object", "schema", subject, "an object of arguments", parameters.get("type"))
    require(
        set(parameters.get("properties", {})) == set(fields),
        "schema",
        subject,
        f"one property per field of {spec.args_model.__name__}: {sorted(fields)}",
        sorted(parameters.get("properties", {})),
    )
    require(
        sorted(parameters.get("required", [])) == required,
        "schema",
        subject,
        f"required arguments {required}",
        sorted(parameters.get("required", [])),
    )
    require(
        parameters.get("additionalProperties") is False,
        "schema",
        subject,
        "additionalProperties false",
        parameters.get("additionalProperties"),
    )
    require(
        _validates(spec.args_model, spec.example),
        "schema",
        subject,
        "an example its argument model takes",
        spec.example,
    )
    require(
        not _validates(spec.args_model, {**spec.example, UNKNOWN_ARGUMENT: 1}),
        "schema",
        subject,
        "an argument model that refuses arguments it does not have (extra='forbid')",
        f"{spec.args_model.__name__} took {UNKNOWN_ARGUMENT!r}",
    )
    json.dumps(parameters)  # a schema is JSON: anything else raises here


def _validates(model: type[BaseModel], arguments: dict[str, Any]) -> bool:
    try:
        model.model_validate(arguments)
    except ValidationError:
        return False
    return True


def offered_tool(spec: ToolSpec, tier: str) -> ModelTool:
    """The tool as the models of `tier` read it (view.tool_schemas builds the package's lists the same way)."""
    description, args_model = spec.read_at(tier)
    return ModelTool(spec.name, description, args_model, model_schema(args_model.model_json_schema()))


def check_model_text(spec: ToolSpec, subject: str) -> None:
    """An offered tool reads well in every tool list that has it: a description that says when to use it, no
    optional-field unions or titles, and a generator's paging with its bounds."""
    low, high = DESCRIPTION_CHARS
    for tier in spec.offered_at:
        tool = offered_tool(spec, tier)
        require(
            low <= len(tool.description) <= high,
            "description",
            f"{subject} at {tier}",
            f"a description of {low} to {high} characters",
            f"{len(tool.description)}: {tool.description!r}",
        )
        properties = tool.parameters.get("properties", {})
        for field, prop in properties.items():
            require(
                "anyOf" not in prop and "title" not in prop,
                "model text",
                f"{subject} at {tier}",
                f"argument {field!r} as one plain type, untitled",
                prop,
            )
        if spec.kind == "generator":
            limit = properties.get("limit", {})
            require(
                "offset" in properties and limit.get("maximum") == MAX_PAGE_ROWS,
                "paging",
                f"{subject} at {tier}",
                f"a generator's limit (at most {MAX_PAGE_ROWS}) and offset",
                sorted(properties),
            )


def check_schema_budget(spec: ToolSpec, subject: str) -> None:
    """Every tier that offers the tool keeps its tool list within the tier's budget: the package's list with this
    tool (in place of the package's tool of that name, if any)."""
    for tier in spec.offered_at:
        listed = TOOL_REGISTRY.get(spec.name)
        replaced = _chars(offered_tool(listed, tier)) if listed is not None and tier in listed.offered_at else 0
        size = schema_chars(tier) - replaced + _chars(offered_tool(spec, tier))
        budget = TIERS[tier].tool_schema_budget
        require(
            size <= budget,
            "schema budget",
            f"{subject} at {tier}",
            f"the tier's tool list within {budget} characters",
            f"{size} with this tool",
        )


def _chars(tool: ModelTool) -> int:
    return len(json.dumps(tool.openai_schema()))


def check_answers(
    spec: ToolSpec, tools: Mapping[str, ToolSpec], episode: PublicEpisode, subject: str, tier: str
) -> ToolOutcome:
    """The example answers at a tier the tool answers at, in plain JSON; the same call twice, the same answer."""
    outcome = _call(spec.name, episode, spec.example, tools, subject)
    require(outcome.ok, "answers", f"{subject} at {tier}", f"its example {spec.example} to answer", outcome.error)
    assert outcome.result is not None
    require(
        outcome.result.get("method") == spec.name,
        "answers",
        subject,
        "a result that names its tool",
        outcome.result.get("method"),
    )
    check_plain_json(outcome.result, subject)
    again = _call(spec.name, episode, spec.example, tools, subject)
    require(again == outcome, "deterministic", subject, "the same answer to the same call", _difference(outcome, again))
    return outcome


def check_errors_are_observations(
    spec: ToolSpec, tools: Mapping[str, ToolSpec], episode: PublicEpisode, subject: str
) -> None:
    """Mistaken calls are error outcomes the agent reads, never exceptions: an argument the tool lacks gets the
    valid arguments named, and an unknown name in a text argument gets the valid values named."""
    wrong = _call(spec.name, episode, {**spec.example, UNKNOWN_ARGUMENT: 1}, tools, subject)
    fields = offered_fields(spec.args_model)
    require(
        not wrong.ok and bool(wrong.error) and all(field in (wrong.error or "") for field in fields),
        "errors as observations",
        subject,
        f"an error naming the valid arguments {fields}",
        wrong.error,
    )
    for field in _text_fields(spec):
        outcome = _call(spec.name, episode, {**spec.example, field: UNKNOWN_VALUE}, tools, subject)
        error = (outcome.error or "").lower()
        require(
            outcome.ok or "valid" in error or "allowed" in error,
            "errors as observations",
            f"{subject} given {field}={UNKNOWN_VALUE!r}",
            "an answer, or an error that lists the valid values",
            outcome.error,
        )


def _text_fields(spec: ToolSpec) -> list[str]:
    """The arguments whose values are names (a string in the example): where an unknown name is the mistake."""
    return [field for field, value in spec.example.items() if isinstance(value, str)]


def _call(
    name: str, episode: PublicEpisode, arguments: dict[str, Any], tools: Mapping[str, ToolSpec], subject: str
) -> ToolOutcome:
    """One call; an exception out of the tool fails the check that errors are observations."""
    try:
        return run_tool(name, episode, arguments, tools)
    except Exception as exc:  # the failure being checked for: a tool must not raise
        raise CheckFailed(
            "errors as observations",
            f"{subject} called with {arguments}",
            "an outcome (a ToolError becomes an error observation)",
            f"{type(exc).__name__}: {exc}",
        ) from exc


def check_silent_tiers(spec: ToolSpec, tools: Mapping[str, ToolSpec], seed: int, subject: str) -> None:
    """At a tier the tool does not answer at, a call is an error observation that says so."""
    silent = [tier for tier in EVERY_TIER if tier not in spec.answers_at]
    if not silent:
        return
    episode = refusing_episode(silent[0], seed)
    refused = _call(spec.name, episode, spec.example, tools, subject)
    episode.close()  # whatever the call opened
    require(
        not refused.ok and bool(refused.error),
        "answers only where registered",
        f"{subject} at {silent[0]}",
        "an error observation at a tier it does not answer at",
        refused,
    )


def check_plain_json(value: object, where: str) -> None:
    """Only the types JSON has, exactly (no numpy scalars, no NaN or infinities): tools build their results this
    way and nothing converts them afterwards."""
    kind = type(value)
    if isinstance(value, dict) and kind is dict:
        for key, item in value.items():
            require(type(key) is str, "plain JSON", where, "string keys", repr(key))
            check_plain_json(item, f"{where}.{key}")
    elif isinstance(value, list) and kind is list:
        for i, item in enumerate(value):
            check_plain_json(item, f"{where}[{i}]")
    elif isinstance(value, float) and kind is float:
        require(math.isfinite(value), "plain JSON", where, "a finite number", value)
    else:
        require(
            kind in (str, int, bool, type(None)),
            "plain JSON",
            where,
            "str, int, float, bool, None, list or dict",
            kind.__name__,
        )


def _difference(first: ToolOutcome, second: ToolOutcome) -> str:
    def shown(outcome: ToolOutcome) -> str:
        return json.dumps(outcome.result or outcome.error, default=repr)[:140]

    return f"{shown(first)} then {shown(second)}"
