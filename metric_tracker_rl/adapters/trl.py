"""The environment as a class of tool methods, for TRL's `GRPOTrainer(environment_factory=MetricTrackerToolEnv)`.

TRL builds one instance per rollout with no arguments, calls `reset(**dataset_row)` and appends the returned text
to the prompt, offers every public method (except `reset` and `get_reward`) as a tool whose schema it reads from
the method's type hints and Google-style docstring, and scores the rollout with `get_reward()`.

Each tier offers its own tools (`view.tool_schemas.model_tools(difficulty)`): `MetricTrackerToolEnv.for_tier(d)` is
the class whose methods are exactly tier d's tools, with their descriptions and limits there (the warehouse's
`query` takes longer statements), and whose rows start d's episodes. `MetricTrackerToolEnv` itself has every tool
some listed tier offers, for a dataset of one tier of counts where a few of them answer errors; a dataset that
mixes tiers gives TRL one class per tier (`environment_factory={d: MetricTrackerToolEnv.for_tier(d), ...}`, each
row naming its `environment`).

The tool methods are generated from the tool registry and the two submission tools of `view.tool_schemas`: each one's
signature and docstring come from its pydantic argument model, so the schema the model sees cannot drift from
what the server validates. A tool mistake comes back as text the model can read; it never raises.

Settings (`ClientSettings`, read from the environment when an instance is built; see docs/settings.md):

- `METRIC_TRACKER_URL`: the server (default `http://127.0.0.1:8000`); each instance holds one WebSocket session.
- `METRIC_TRACKER_RESET`: a JSON object of reset settings applied under every dataset row (default `{}`).
- `OPENENV_CONNECT_TIMEOUT_S` (30) and `OPENENV_MESSAGE_TIMEOUT_S` (180): the client's timeouts.
- `METRIC_TRACKER_RETRY_DEADLINE_S` (300): how long `reset()` keeps retrying while the server is down or
  restarting (see `reconnect`); a tool call whose connection died answers with an error text instead.
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Callable
from functools import cache
from types import GenericAlias, UnionType
from typing import Any, ClassVar, Union, get_args, get_origin

from openenv.core.client_types import StepResult
from openenv.core.sync_client import SyncEnvClient
from pydantic import BaseModel
from websockets.exceptions import ConnectionClosed

from metric_tracker_rl.adapters.session import EpisodeSession
from metric_tracker_rl.catalog.published import RESET_DIFFICULTIES
from metric_tracker_rl.catalog.tasks import RESET_KEYS
from metric_tracker_rl.catalog.tier_episodes import train_episode
from metric_tracker_rl.catalog.validation import check_choice
from metric_tracker_rl.client import MetricTrackerRlEnv
from metric_tracker_rl.models import MetricTrackerRlAction
from metric_tracker_rl.reconnect import lost_connection_text, reset_until_served
from metric_tracker_rl.settings import DEFAULT_SERVER_URL, ClientSettings
from metric_tracker_rl.view.tool_schemas import ModelTool, model_tools

URL_VAR = "METRIC_TRACKER_URL"  # what a trainer sets: TRL builds instances with no arguments
RESET_VAR = "METRIC_TRACKER_RESET"
RETURNS = "The result as text: the tool's result (tables strongest first), or the grading, and the budgets left."


def _plain_annotation(annotation: Any) -> Any:
    """The annotation with nested pydantic models as plain JSON objects (a schema reader knows no custom class)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return dict[str, Any]
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is list:
        return GenericAlias(list, (_plain_annotation(args[0]),)) if args else list
    if origin in (Union, UnionType):
        plain = [_plain_annotation(arg) for arg in args]
        union = plain[0]
        for member in plain[1:]:
            union = union | member
        return union
    return annotation


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next((m for m in map(_nested_model, get_args(annotation)) if m is not None), None)


# Schema bounds as the docstring writes them: TRL builds the schema from type hints, which carry no bounds.
_BOUND_WORDS = (("exclusiveMinimum", ">"), ("minimum", ">="), ("exclusiveMaximum", "<"), ("maximum", "<="))


def bounds_text(schema: dict[str, Any]) -> str:
    """A property's numeric bounds as text (`> 0, <= 100`), empty when it has none."""
    return ", ".join(f"{word} {schema[key]}" for key, word in _BOUND_WORDS if key in schema)


def _argument_description(field: Any, name: str, schema: dict[str, Any]) -> str:
    """The field's description and bounds; for objects, the fields they take and their bounds (the schema shows
    only "object"), as the model schema offers them."""
    description = _one_line(schema.get("description") or field.description or name)  # the tier's, where it has one
    if bounds_text(schema):
        description += f" ({bounds_text(schema)})"
    items = schema.get("items", {}).get("properties")
    if _nested_model(field.annotation) is not None and items:
        described = [f"{item} ({bounds_text(prop)})" if bounds_text(prop) else item for item, prop in items.items()]
        description += f"; each an object with {', '.join(described)}"
    return description


def _tool_method(tool: ModelTool, owner: str = "MetricTrackerToolEnv") -> Callable[..., str]:
    """A method named after the tool, with the argument model's fields as keyword parameters and descriptions.

    The body takes any keyword arguments, so a wrong or missing argument reaches the validator, whose message
    names the valid ones, rather than raising a TypeError before it."""

    def method(self: MetricTrackerToolEnv, **arguments: Any) -> str:
        return self._call(tool.name, arguments)

    parameters = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    annotations: dict[str, Any] = {}
    lines = []
    offered = tool.parameters.get("properties", {})
    for name, field in tool.args_model.model_fields.items():
        if name not in offered:
            continue  # kept for the wire API, not offered to models (see tool_schemas.model_schema)
        annotation = _plain_annotation(field.annotation)
        default = inspect.Parameter.empty if field.is_required() else field.get_default(call_default_factory=True)
        parameters.append(
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
        )
        annotations[name] = annotation
        lines.append(f"    {name}: {_argument_description(field, name, offered[name])}")
    annotations["return"] = str
    arguments_block = "\n\nArgs:\n" + "\n".join(lines) if lines else ""
    method.__name__ = tool.name
    method.__qualname__ = f"{owner}.{tool.name}"
    method.__doc__ = f"{_one_line(tool.description)}{arguments_block}\n\nReturns:\n    {RETURNS}"
    method.__annotations__ = annotations
    method.__signature__ = inspect.Signature(parameters, return_annotation=str)  # type: ignore[attr-defined]
    return method


class _OneSession:
    """The sync client, refusing a step that lands on a new server session."""

    def __init__(self, client: SyncEnvClient[Any, Any, Any]) -> None:
        self.client = client
        connection = client.async_client
        if not isinstance(connection, MetricTrackerRlEnv):
            raise TypeError("a rollout's client is a MetricTrackerRlEnv (it counts the sessions it opens)")
        self.connection = connection

    def reset(self, **settings: Any) -> StepResult[Any]:
        return self.client.reset(**settings)

    def step(self, action: MetricTrackerRlAction) -> StepResult[Any]:
        sessions = self.connection.sessions_opened
        result = self.client.step(action)
        if self.connection.sessions_opened != sessions:
            # The connection had closed (a server restart, a replica gone) and the step went to a new session,
            # which holds no episode: this one is lost.
            raise ConnectionError("the session closed between two steps")
        return result


# The keys of a dataset row that choose its episode's tier themselves; a row with none of them starts a tier class's
# own difficulty.
_TIER_CHOOSING_KEYS = ("task_id", "difficulty", "split")


class _ToolEnvType(type):
    """The tool classes' type: a class lists (`dir`) only the tools it offers, as its instances do."""

    def __dir__(cls) -> list[str]:
        return [name for name in super().__dir__() if offers(cls, name)]


def offers(cls: type, name: str) -> bool:
    """Whether `name` is a member of the tool class `cls`: a tool the class's tier does not offer is not."""
    return not isinstance(inspect.getattr_static(cls, name, None), _NotOffered)


class MetricTrackerToolEnv(metaclass=_ToolEnvType):
    """One rollout's episode on a running server, with one method per model tool (see the module docstring)."""

    difficulty: ClassVar[str | None] = None  # the tier whose tools the methods are (None: every listed tier's)

    @classmethod
    def for_tier(cls, difficulty: str) -> type[MetricTrackerToolEnv]:
        """The class whose tool methods are exactly `difficulty`'s (one class per tier, made once): give it to
        TRL's `environment_factory` to train at that tier. Its rows start episodes at that tier."""
        return _tier_class(check_choice("difficulty", difficulty, RESET_DIFFICULTIES))

    def __init__(self, settings: ClientSettings | None = None) -> None:
        settings = settings or ClientSettings.load()  # TRL builds instances with no arguments
        self._url = (settings.server_url or DEFAULT_SERVER_URL).rstrip("/")
        self._reset_defaults = settings.reset_defaults
        self._retry_deadline_s = settings.retry_deadline_s
        self._client = MetricTrackerRlEnv(
            base_url=self._url,
            connect_timeout_s=settings.connect_timeout_s,
            message_timeout_s=settings.message_timeout_s,
            resume_sessions=settings.resume_sessions,
        ).sync()
        self._session = EpisodeSession(_OneSession(self._client))
        self._draw = random.Random()  # the train task of a row that names no episode, drawn anew each rollout

    def reset(self, **row: Any) -> str:
        """Start the episode a dataset row describes (`task_id`, or `seed` and `difficulty`, or any reset setting);
        other columns (TRL passes `prompt` too) are ignored. A row that chooses no episode (no seed, task_id or
        split) plays a train task of its tier drawn at random (the class's tier, else the first named task's),
        never an eval one. Returns the episode brief for the prompt."""
        settings = {**self._reset_defaults, **{key: value for key, value in row.items() if key in RESET_KEYS}}
        if self.difficulty is not None and not any(key in settings for key in _TIER_CHOOSING_KEYS):
            settings["difficulty"] = self.difficulty
        settings = train_episode(settings, self._draw)  # a row without a seed plays a train task, never an eval one
        # TRL keeps instances between batches: the server may have reaped an idle session meanwhile, or be
        # restarting. A reset that raised would end the training step, so it waits for the server instead.
        brief = reset_until_served(
            lambda: self._session.reset(**settings),
            self._client.disconnect,
            self._url,
            deadline_s=self._retry_deadline_s,
        )
        if brief.status == "error":
            raise ValueError(f"the dataset row {settings} cannot start an episode: {self._session.message}")
        started = brief.config.get("difficulty")
        if self.difficulty is not None and started != self.difficulty:
            raise ValueError(
                f"the dataset row {settings} starts a {started} episode, but this class offers the "
                f"{self.difficulty} tier's tools: use MetricTrackerToolEnv.for_tier({started!r})"
            )
        return brief.text

    def get_reward(self) -> float:
        """The episode's score: the sum of the rewards it received (0 before any graded submission)."""
        return self._session.score

    def _call(self, name: str, arguments: dict[str, Any]) -> str:
        if not self._session.started:
            raise RuntimeError("call reset() before any tool: the trainer resets every rollout first")
        try:
            return self._session.call(name, arguments)
        except (ConnectionClosed, ConnectionError, OSError, TimeoutError) as error:
            self._session.abandon()
            return lost_connection_text(error)

    def __call__(self, tool: str, **arguments: Any) -> str:
        """A tool called by its name, for a harness that maps a model's call to a method and finds none: answered
        as every entry point answers it (once the episode is over, that it is; else an unknown tool's error that
        names the tier's tools)."""
        return self._call(tool, arguments)

    def __dir__(self) -> list[str]:
        return [name for name in super().__dir__() if offers(type(self), name)]

    def _close(self) -> None:
        """Close the WebSocket session (private: every public method would be offered to the model as a tool)."""
        self._client.close()

    def __enter__(self) -> MetricTrackerToolEnv:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._close()


class _NotOffered:
    """A tool method of the default class that a tier class does not offer: reading it raises AttributeError, so
    the tier class has no such method (TRL lists functions only, and `hasattr` is False)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        tier = getattr(owner, "difficulty", None)
        raise AttributeError(f"{self.name} is not offered at difficulty {tier!r}")


def _add_tool_methods() -> None:
    for tool in model_tools():
        if hasattr(MetricTrackerToolEnv, tool.name):
            raise RuntimeError(f"tool {tool.name!r} would shadow a member of MetricTrackerToolEnv")
        setattr(MetricTrackerToolEnv, tool.name, _tool_method(tool))


@cache
def _tier_class(difficulty: str) -> type[MetricTrackerToolEnv]:
    """MetricTrackerToolEnv with `difficulty`'s tool methods in place of the default ones."""
    name = f"MetricTrackerToolEnv_{difficulty}"
    tools = model_tools(difficulty)
    members: dict[str, Any] = {
        "difficulty": difficulty,
        "__qualname__": name,
        "__module__": __name__,
        "__doc__": f"{MetricTrackerToolEnv.__doc__} Tools: the {difficulty} tier's.",
    }
    for tool in model_tools():
        members[tool.name] = _NotOffered()
    for tool in tools:
        if tool.name not in members and hasattr(MetricTrackerToolEnv, tool.name):
            raise RuntimeError(f"tool {tool.name!r} would shadow a member of MetricTrackerToolEnv")
        members[tool.name] = _tool_method(tool, name)
    return type(name, (MetricTrackerToolEnv,), members)


_add_tool_methods()
