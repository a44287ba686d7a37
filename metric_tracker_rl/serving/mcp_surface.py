"""The environment's tools over MCP, beside the typed step API, the way OpenEnv 0.10 serves MCP environments.

OpenEnv routes MCP two ways, and this module answers both from the same code:

- `step(ListToolsAction())` / `step(CallToolAction(...))` (`MCPEnvironment`'s contract): in-process users such as
  NeMo Gym's OpenEnv resources server get a `ListToolsObservation`, or a `CallToolObservation` whose `reward` and
  `done` are those of the typed step the call made.
- JSON-RPC `tools/list` and `tools/call` on `POST /mcp`, the WebSocket `/mcp`, and `{"type": "mcp"}` messages on
  `/ws`: OpenEnv's app hands them to the environment's `mcp_client` inside the session (`session_id` in the
  params over HTTP, created by `openenv/session/create`).

The tools are exactly those a model is offered (`tool_schemas.model_tools(difficulty)`: the registry tools the
session's episode's tier offers, then its submission tools; before a reset, every tool some listed tier offers), with
the same schemas and descriptions; a call goes through `tool_schemas.tool_action`, the
typed step, and `observation.render_observation`, so its text is what every other harness shows the model. An MCP
answer is that text alone (MCP carries a tool's result as text), rendered here because an MCP client holds no
observation to render it from. A tool added to the registry appears here with no code of its own.

No FastMCP server sits in between: OpenEnv's `MCPEnvironment` builds one per session and calls each tool through
an in-memory MCP client, which costs more per call than the analysis it runs. The answers keep the shape OpenEnv
gives a FastMCP tool result (`content`, `structured_content`, `meta`, `data`, `is_error`), so OpenEnv's
`MCPToolClient.call_tool` returns the text (`data`). `structured_content` holds the call's `reward` and `done`:
over JSON-RPC there is no observation to carry them, and the rewards of an episode still sum to its score.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from openenv.core.env_server.mcp_types import (
    RESERVED_TOOL_NAMES,
    CallToolAction,
    CallToolObservation,
    ListToolsAction,
    ListToolsObservation,
    Tool,
)

from metric_tracker_rl.analysis_tools import TOOL_REGISTRY
from metric_tracker_rl.models import MetricTrackerRlAction, MetricTrackerRlObservation
from metric_tracker_rl.view.observation import render_observation
from metric_tracker_rl.view.tool_schemas import SUBMISSION_TOOLS, model_tools, tool_action

if TYPE_CHECKING:
    from openenv.core.env_server.types import Observation

MCP_ACTIONS = (ListToolsAction, CallToolAction)
NO_EPISODE = (
    "error: no active episode; reset first. Over WebSocket, send reset on /ws, then tools/call as "
    '{"type": "mcp", "data": <JSON-RPC request>} on the same socket. Over HTTP, create a session with the '
    "JSON-RPC method openenv/session/create on POST /mcp, reset it on /ws?session_id=<id>, and pass "
    "session_id in the params of every tools/call."
)


def mcp_tools(difficulty: str | None = None) -> list[Tool]:
    """The tools a model is offered at `difficulty` (None: before a reset, every tool some listed tier offers), as MCP
    tools (read from the registry at every call, so none is missed)."""
    tools = [
        Tool(name=tool.name, description=tool.description, input_schema=tool.parameters)
        for tool in model_tools(difficulty)
    ]
    reserved = RESERVED_TOOL_NAMES & {tool.name for tool in tools}
    if reserved:
        raise RuntimeError(f"tools {sorted(reserved)} use names OpenEnv reserves for the step API")
    return tools


def tool_result(text: str, *, is_error: bool, reward: float, done: bool, episode_score: float | None) -> dict[str, Any]:
    """A tools/call result in the shape OpenEnv serialises a FastMCP tool result to; `episode_score` is the
    server's score of the episode so far (None without an episode), which a harness reports as it is."""
    return {
        "content": [{"type": "text", "text": text}],
        "structured_content": {"reward": reward, "done": done, "episode_score": episode_score},
        "meta": None,
        "data": text,
        "is_error": is_error,
    }


def without_null_options(name: str, arguments: Any) -> Any:
    """The arguments without optional parameters sent as null: a tool's schema shows an optional parameter as its
    type alone, and MCP clients that build a request model from it (NeMo Gym's OpenEnv adapter) send every
    parameter the model leaves out as null. A null required parameter, or one the tool does not take, stays and
    gets the validator's answer."""
    spec = TOOL_REGISTRY.get(name) or SUBMISSION_TOOLS.get(name)
    if spec is None or not isinstance(arguments, dict):
        return arguments
    fields = spec.args_model.model_fields
    return {
        key: value
        for key, value in arguments.items()
        if value is not None or key not in fields or fields[key].is_required()
    }


class _SessionToolClient:
    """What OpenEnv's MCP handler calls as `env.mcp_client`: the session's own tools, in this process."""

    def __init__(self, environment: McpToolSurface) -> None:
        self._environment = environment

    def is_connected(self) -> bool:
        return True  # nothing to connect: the tools run in the session's environment

    async def list_tools(self) -> list[dict[str, Any]]:
        return [
            {"name": tool.name, "description": tool.description, "inputSchema": tool.input_schema}
            for tool in mcp_tools(self._environment.episode_difficulty)
        ]

    async def call_tool(self, name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self._environment.call_tool_async(name, arguments or {})


class McpToolSurface:
    """Mixin for the environment: MCP tool discovery and calls on top of its typed `step`/`step_async`.

    The environment's `step` and `step_async` hand `MCP_ACTIONS` to `mcp_step` / `mcp_step_async`."""

    if TYPE_CHECKING:

        def step(self, action: Any, timeout_s: float | None = None, **kwargs: Any) -> MetricTrackerRlObservation: ...
        async def step_async(
            self, action: Any, timeout_s: float | None = None, **kwargs: Any
        ) -> MetricTrackerRlObservation: ...
        @property
        def state(self) -> Any: ...
        @property
        def has_episode(self) -> bool: ...
        @property
        def episode_difficulty(self) -> str | None: ...

    @property
    def mcp_client(self) -> _SessionToolClient:
        return _SessionToolClient(self)

    @asynccontextmanager
    async def mcp_session(self) -> AsyncIterator[_SessionToolClient]:
        """OpenEnv holds this open for a session's life; there is no transport to open or close."""
        yield self.mcp_client

    def mcp_step(self, action: ListToolsAction | CallToolAction) -> Observation:
        """`MCPEnvironment`'s step contract, for in-process users (NeMo Gym's adapter calls `step` directly)."""
        if isinstance(action, ListToolsAction):
            return ListToolsObservation(tools=mcp_tools(self.episode_difficulty))
        typed = self._typed_action(action.tool_name, action.arguments)
        result = self._refusal(typed) if isinstance(typed, str) else _answer(self.step(typed))
        return _call_observation(action.tool_name, result)

    async def mcp_step_async(self, action: ListToolsAction | CallToolAction) -> Observation:
        """The same on the event loop: submissions still take a worker thread (see `step_async`)."""
        if isinstance(action, ListToolsAction):
            return ListToolsObservation(tools=mcp_tools(self.episode_difficulty))
        return _call_observation(action.tool_name, await self.call_tool_async(action.tool_name, action.arguments))

    async def call_tool_async(self, name: str, arguments: Any) -> dict[str, Any]:
        """A tools/call's result. JSON-RPC answers it as it is: no observation model is built around it."""
        typed = self._typed_action(name, arguments)
        if isinstance(typed, str):
            return self._refusal(typed)
        return _answer(await self.step_async(typed))

    def _typed_action(self, name: Any, arguments: Any) -> MetricTrackerRlAction | str:
        """The typed action of a call, or the error text of a call that sends nothing (no episode, or a mistake
        that `tool_action` reports: an unknown tool, arguments that are not an object, an invalid submission)."""
        if not isinstance(name, str):  # JSON-RPC params arrive unchecked
            return f"error: a tool name is a string, got {type(name).__name__}"
        if not self.has_episode:
            return NO_EPISODE
        return tool_action(name, without_null_options(name, arguments), self.episode_difficulty)

    def _refusal(self, text: str) -> dict[str, Any]:
        state = self.state
        return tool_result(text, is_error=True, reward=0.0, done=bool(state.done), episode_score=state.episode_score)


def _answer(observation: MetricTrackerRlObservation) -> dict[str, Any]:
    """The result of a call the typed step ran: the text every harness shows, the step's reward and done."""
    return tool_result(
        render_observation(observation),
        is_error=observation.status == "error",
        reward=float(observation.reward or 0.0),
        done=observation.done,
        episode_score=observation.episode_score,
    )


def _call_observation(name: Any, result: dict[str, Any]) -> CallToolObservation:
    outcome = result["structured_content"]
    return CallToolObservation(tool_name=str(name), result=result, reward=outcome["reward"], done=outcome["done"])
