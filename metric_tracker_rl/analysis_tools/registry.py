"""One registry of read-only tools. Each tool is one module of `analysis_tools/tools/` that registers itself: its
pydantic argument model validates calls, produces the JSON schema of its OpenAI tool definition and drives the
debugger's forms, and its registration says what of an episode it reads (counts, segments, context tables, events:
tiers.Holding), from which follow the tiers it answers at and those that offer it to models."""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeVar, cast, get_args

from pydantic import BaseModel, ValidationError

from metric_tracker_rl.catalog.published import AGGREGATE_DIFFICULTIES, RESET_DIFFICULTIES, difficulties_holding
from metric_tracker_rl.catalog.registry import Registry
from metric_tracker_rl.catalog.tiers import COUNTS, DATA_OF, EVENTS, SEGMENTS, DataKind, Holding
from metric_tracker_rl.catalog.validation import check_choice, describe_validation_error
from metric_tracker_rl.world.funnel import window_calendar
from metric_tracker_rl.world.public_episode import PublicEpisode

MAX_RESULT_ROWS = 200
DEFAULT_PAGE_ROWS = 20
# A page's rows at most: every date of four funnel steps (112 rows) fits in one, and the longest page stays under
# 16 KiB of text (Inspect's default cut of a tool result).
MAX_PAGE_ROWS = 120
# The dates of the episode whose call is being validated (check_date reads it); the four-week window otherwise.
EPISODE_WINDOW: ContextVar[tuple[str, ...]] = ContextVar("episode_window", default=window_calendar().iso_dates)
STRENGTH = "_strength"  # a row's evidence, used to order a result and removed before it is returned
ToolFunction = Callable[[PublicEpisode, Any], dict[str, Any]]
RowsFunction = Callable[[PublicEpisode, Any], list[dict[str, Any]]]
Table = TypeVar("Table")

# Tier sets by what their episodes hold (a tool's `reads` names the holdings, not these): the tiers of counts, of
# segments' counts, of context tables and of raw events.
EVERY_TIER: tuple[str, ...] = RESET_DIFFICULTIES
COUNT_TIERS: tuple[str, ...] = difficulties_holding(COUNTS)
RAW_EVENT_TIERS: tuple[str, ...] = difficulties_holding(EVENTS)
AGGREGATE_TIERS: tuple[str, ...] = AGGREGATE_DIFFICULTIES
SEGMENTED_TIERS: tuple[str, ...] = difficulties_holding(SEGMENTS)
HOLDINGS: tuple[Holding, ...] = get_args(Holding)


@dataclass(frozen=True)
class ToolVariant:
    """How a tool reads to the models of some tiers (`tiers`): another description and argument model (the same
    fields, described for their data). The SQL tool's at the warehouse names the warehouse's tables."""

    tiers: tuple[str, ...]
    description: str
    args_model: type[BaseModel]


def reads_data_of(reads: frozenset[Holding], data: DataKind) -> bool:
    """Whether a tool that reads `reads` is a tool of `data` (counts or events): it reads nothing in particular
    (every episode's), or what it reads is of that kind (tiers.DATA_OF). Such a tool is callable on an episode of
    that data, and offered at its tier, even where it does not answer (a tier of counts offers one list whatever its
    segments: a segment tool at easy answers that there are none)."""
    return all(DATA_OF[holding] == data for holding in reads)


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    args_model: type[BaseModel]
    func: ToolFunction
    kind: Literal["analysis", "generator"]
    example: dict[str, Any]
    # What of an episode the tool reads (empty: nothing in particular, as the SQL tool reads whatever tables the
    # episode has). It answers where the episode holds all of it (`answers_at`); elsewhere it answers an error that
    # says what to use instead, or, where the data are of another kind, it is not a tool of that episode.
    reads: frozenset[Holding] = frozenset({COUNTS})
    # Why a tool no model is offered stays registered (who calls it) and which offered tool answers a model instead;
    # empty for a tool offered at the tiers of its data (`offered_at`). docs/tools.md lists these (a test keeps the
    # two in step).
    kept_for: str = ""
    # The only tiers of its data that offer it, where a tool would not fit every such tier's schema budget (None: all
    # of them; no built-in tool sets it).
    offered_only_at: tuple[str, ...] | None = None
    # Columns of its `rows` table that hold one value in every row of every call (a generator's detection_method):
    # the text states them once. No other column moves, so the table reads the same on every call.
    constant_columns: frozenset[str] = frozenset()
    # A generator's every candidate row, unpaged: a generator submission merges them whole.
    rows_of: RowsFunction | None = None
    variants: tuple[ToolVariant, ...] = ()

    def read_at(self, difficulty: str | None) -> tuple[str, type[BaseModel]]:
        """The description and argument model the models of `difficulty` read (None: every client's)."""
        for variant in self.variants:
            if difficulty in variant.tiers:
                return variant.description, variant.args_model
        return self.description, self.args_model

    @property
    def answers_at(self) -> tuple[str, ...]:
        """The tiers whose episodes it answers: those that hold all it reads."""
        return difficulties_holding(*self.reads)

    @property
    def offered_at(self) -> tuple[str, ...]:
        """The tiers whose models are offered the tool: those it answers at (a tool offered where it cannot answer
        only costs the model a wrong call), unless it is kept for another caller. Its schema is in their tool lists
        and counts against each one's schema budget (view.tool_schemas.model_tools)."""
        if self.kept_for:
            return ()
        return tuple(name for name in self.answers_at if self.offered_only_at is None or name in self.offered_only_at)

    @property
    def offered(self) -> bool:
        """Offered to models at some tier (MCP, the TRL class); every tool stays on the wire API."""
        return not self.kept_for

    def parameters_schema(self) -> dict[str, Any]:
        schema = self.args_model.model_json_schema()
        schema.pop("title", None)
        for prop in schema.get("properties", {}).values():
            prop.pop("title", None)
        schema["additionalProperties"] = False
        return schema

    def openai_schema(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters_schema()},
        }

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "kind": self.kind,
            "parameters": self.parameters_schema(),
            "example": self.example,
        }


# In registration order (the order a model's tool list shows); register_tool and unregister_tool are the only
# writers.
TOOL_REGISTRY: Registry[ToolSpec] = Registry("tool")
# What keeps most tools no model is offered: the reference design's tool names stay callable, since clients of the
# wire API (the reference inference script) call them by name as `analysis_method`.
REFERENCE_API = "the reference API (its clients call it by this name)"


def _tiers(argument: str, names: Collection[str]) -> tuple[str, ...]:
    """Tier names as a registration gives them, each checked (an unknown one is an error naming the valid ones)."""
    return tuple(check_choice(argument, name, EVERY_TIER) for name in names)


def register_tool(
    name: str,
    description: str,
    args_model: type[BaseModel],
    *,
    reads: Collection[Holding],
    kept_for: str = "",
    offered_at: Collection[str] | None = None,
    kind: Literal["analysis", "generator"] = "analysis",
    example: dict[str, Any] | None = None,
    constant_columns: frozenset[str] = frozenset(),
    rows_of: RowsFunction | None = None,
    variants: tuple[ToolVariant, ...] = (),
) -> Callable[[ToolFunction], ToolFunction]:
    """Register a tool that reads `reads` of an episode, offered to the models of every tier of that data (or of
    those `offered_at` names, where it would not fit every such tier's schema budget), or to none when `kept_for`
    says what else needs it (a tool nothing needs is removed, not hidden)."""
    holdings = frozenset(cast(Holding, check_choice("reads", holding, HOLDINGS)) for holding in reads)
    only = None if offered_at is None else _tiers("offered_at", offered_at)
    if kept_for.strip() and only is not None:
        raise ValueError(
            f"tool {name!r} is either offered (at the tiers offered_at names) or kept for another caller (kept_for)"
        )
    args_model.model_validate(example or {})  # an example that does not validate is a programming error

    def decorator(func: ToolFunction) -> ToolFunction:
        for variant in variants:
            _tiers("variants", variant.tiers)
            if set(variant.args_model.model_fields) != set(args_model.model_fields):
                raise ValueError(f"tool {name!r}: a variant takes the tool's own arguments")
        add_tool(
            ToolSpec(
                name,
                description,
                args_model,
                func,
                kind,
                example or {},
                holdings,
                kept_for.strip(),
                only,
                constant_columns,
                rows_of,
                variants,
            )
        )
        return func

    return decorator


def add_tool(spec: ToolSpec) -> ToolSpec:
    """Register a built spec (register_tool builds one around a function, unregister_tool hands one back)."""
    return TOOL_REGISTRY.register(spec)


def unregister_tool(name: str) -> ToolSpec:
    """Take a tool out again: a scratch tool (a test's, a notebook's) leaves the registry as it found it."""
    return TOOL_REGISTRY.unregister(name)


class ToolError(Exception):
    """An agent mistake inside a tool; its message is shown to the agent."""


def finite_or_none(value: Any) -> float | None:
    """A plain float, or None for NaN and infinities (JSON has neither)."""
    value = float(value)
    return value if math.isfinite(value) else None


def derived(episode: PublicEpisode, build: Callable[[PublicEpisode], Table]) -> Table:
    """A table derived from the episode's public data, built on its first use and kept for the episode.

    Tools compute such tables for every date at once (it costs about as much as one date) and then answer each
    call by lookup. Building is deterministic, so a concurrent second build would only repeat the work."""
    try:
        return episode.memo[build]
    except KeyError:
        table = episode.memo[build] = build(episode)
        return table


def cap_rows(rows: list[dict[str, Any]], limit: int = MAX_RESULT_ROWS) -> dict[str, Any]:
    return {"rows": rows[:limit], "row_count": len(rows), "truncated": len(rows) > limit}


def strongest_first(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows ordered by their evidence (largest first; ties by date and key), without the evidence field."""
    ordered = sorted(rows, key=lambda r: (-r[STRENGTH], r["date"], r["entity_type"], r["entity_name"]))
    return [{key: value for key, value in row.items() if key != STRENGTH} for row in ordered]


def page(rows: list[dict[str, Any]], offset: int, limit: int) -> dict[str, Any]:
    """One page of a long result: the rows from `offset`, how many there are in all, and where the next page
    starts (None on the last page), so that nothing is left out without saying so."""
    shown = rows[offset : offset + limit]
    following = offset + len(shown)
    return {
        "row_count": len(rows),
        "offset": offset,
        "rows": shown,
        "next_offset": following if following < len(rows) else None,
    }


def offered_fields(model: type[BaseModel]) -> list[str]:
    """The fields of an argument model that a model's schema offers (not those kept only for the wire API)."""
    return [
        name
        for name, field in model.model_fields.items()
        if not (isinstance(field.json_schema_extra, dict) and field.json_schema_extra.get("hidden_from_models"))
    ]


def format_validation_error(spec: ToolSpec, exc: ValidationError) -> str:
    """The error a caller reads: what is wrong, then exactly the arguments the tool's model schema offers."""
    valid = ", ".join(offered_fields(spec.args_model)) or "none"
    return f"invalid arguments for {spec.name}: {describe_validation_error(exc)}. Valid arguments: {valid}."


@dataclass(frozen=True)
class ToolOutcome:
    ok: bool
    result: dict[str, Any] | None = None
    error: str | None = None
    refused: bool = False  # the call never ran: no tool of the tier by its name, or arguments its checks refuse


def validated_arguments(name: str, arguments: Any, tools: Mapping[str, ToolSpec]) -> BaseModel:
    """A tool's arguments checked against its model. Raises ToolError with a message that names what is valid."""
    spec = tools.get(name)
    if spec is None:
        raise ToolError(f"unknown analysis method {name!r}; valid methods: {', '.join(tools)}")
    if not isinstance(arguments, dict):
        raise ToolError(f"arguments for {name} must be a JSON object")
    try:
        return spec.args_model.model_validate(arguments)
    except ValidationError as exc:
        raise ToolError(format_validation_error(spec, exc)) from None


def episode_tools(episode: PublicEpisode, tools: Mapping[str, ToolSpec] = TOOL_REGISTRY) -> dict[str, ToolSpec]:
    """The tools of `episode`: those of its data's kind (reads_data_of); a call of any other is an unknown method
    there. Each checks its arguments as the models of the episode's tier read them (`ToolSpec.read_at`: the SQL
    tool's longer statements over raw events)."""
    data, difficulty = episode.source.kind, episode.task.get("config", {}).get("difficulty")
    return {name: _as_read_at(spec, difficulty) for name, spec in tools.items() if reads_data_of(spec.reads, data)}


def _as_read_at(spec: ToolSpec, difficulty: str | None) -> ToolSpec:
    args_model = spec.read_at(difficulty)[1]
    return spec if args_model is spec.args_model else replace(spec, args_model=args_model)


def not_offered_error(name: str, tier: str | None, tools: Mapping[str, ToolSpec] = TOOL_REGISTRY) -> str | None:
    """The error of a call of a registered tool that `tier` does not answer (None where it does, or where the name
    is no tool's: that is an unknown method): it says so, where the tool is, and names the tools the tier offers."""
    spec = tools.get(name)
    if spec is None or tier is None or tier in spec.answers_at:
        return None
    offered = [other.name for other in tools.values() if tier in other.offered_at]
    return (
        f"{name} is not offered at difficulty {tier!r} (only at {', '.join(spec.offered_at or spec.answers_at)}); "
        f"the tools offered there: {', '.join(offered)} (and the report's submission)"
    )


def episode_arguments(
    name: str, episode: PublicEpisode, arguments: Any, tools: Mapping[str, ToolSpec] = TOOL_REGISTRY
) -> BaseModel:
    """A tool's arguments as `run_tool` checks them for `episode` (`tools` already those of its tier); ToolError."""
    token = EPISODE_WINDOW.set(episode.dates)  # a date argument must be one of this episode's
    try:
        return validated_arguments(name, arguments, tools)
    finally:
        EPISODE_WINDOW.reset(token)


def run_tool(
    name: str, episode: PublicEpisode, arguments: Any, tools: Mapping[str, ToolSpec] = TOOL_REGISTRY
) -> ToolOutcome:
    """Validate and run one tool of `tools` (a scratch registry can add a new family's generator). Agent mistakes
    become error outcomes that name the valid options."""
    refusal = not_offered_error(name, episode.task.get("config", {}).get("difficulty"), tools)
    if refusal is not None:
        return ToolOutcome(False, error=refusal, refused=True)
    tools = episode_tools(episode, tools)
    try:
        args = episode_arguments(name, episode, arguments, tools)
    except ToolError as exc:
        return ToolOutcome(False, error=str(exc), refused=True)
    # The scoped date-level tools' arguments (arguments.ScopedDateArgs), looked up on the class: a model's missing
    # attribute costs an exception.
    scoped = getattr(type(args), "segment", None)
    segment = scoped(args) if callable(scoped) else None
    scope = {} if segment is None else segment.named()
    # A scoped call of a tool that reads hours: the segment's funnel stands in. A tool that reads days only looks
    # its segment up itself (PublicEpisode.segment_panel), as a channel or user type has days and no hours.
    if segment is not None and scope and getattr(args, "reads_hours", True):
        try:
            episode = episode.segment_view(segment)
        except ValueError as exc:
            return ToolOutcome(False, error=f"{name}: {exc}")
    try:
        result = tools[name].func(episode, args)
    except ToolError as exc:
        return ToolOutcome(False, error=f"{name}: {exc}")
    if scope:  # the segment a row from this result must name
        result = {**scope, **result}
    # Tools build plain JSON values themselves (finite floats, ints, str, bool, None, lists, dicts): the tests
    # check every tool's output, so no conversion pass over each result is needed here.
    return ToolOutcome(True, result={"method": name, "arguments": args.model_dump(), **result})
