"""The model's tools for one episode: one Inspect tool per model-facing tool of the environment, each a thin
call into the episode's WebSocket session. Names, descriptions and parameter schemas come from the tool
registry through metric_tracker_rl.view, the layer every model-facing harness shares; nothing here is
written per tool."""

from __future__ import annotations

from typing import Any

from inspect_ai.tool import ToolDef, ToolError, ToolParams

from metric_tracker_rl.adapters.inspect_eval.episode import Episode
from metric_tracker_rl.view.tool_schemas import ModelTool, model_tools, tool_action


def tool_params(parameters: dict[str, Any]) -> ToolParams:
    """The model-facing schema (definitions already inlined by view.tool_schemas) as Inspect's tool parameters. Inspect
    requires a description of every parameter: one the schema leaves without (a segment field, whose name says
    what it is) is described by its name, as the TRL class describes it."""
    properties = {
        name: {"description": name, **prop} if not prop.get("description") else prop
        for name, prop in parameters.get("properties", {}).items()
    }
    return ToolParams.model_validate({**parameters, "properties": properties})


def episode_tool(episode: Episode, tool: ModelTool) -> ToolDef:
    """One tool: the call becomes an action on the episode; a mistake (refused arguments, an error observation)
    is raised as a ToolError, which Inspect hands back to the model as the tool's error and logs as such."""

    async def call(**arguments: Any) -> str:
        action = tool_action(tool.name, arguments, episode.session.config.get("difficulty"))
        if isinstance(action, str):
            raise ToolError(action)
        seen = (await episode.step(action)).seen
        if seen.status == "error":
            raise ToolError(seen.text)
        return seen.text

    return ToolDef(call, name=tool.name, description=tool.description, parameters=tool_params(tool.parameters))


def episode_tools(episode: Episode) -> list[ToolDef]:
    """The tools the episode's tier offers (the episode has been reset)."""
    return [episode_tool(episode, tool) for tool in model_tools(episode.session.config.get("difficulty"))]
