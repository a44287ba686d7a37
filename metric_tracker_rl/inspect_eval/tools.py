"""The model's tools for one episode: one Inspect tool per model-facing tool of the environment, each a thin
call into the episode's WebSocket session. Names, descriptions and parameter schemas come from the tool
registry (through the shared tool-call adapter); nothing here is written per tool."""

from __future__ import annotations

from typing import Any

from inspect_ai.tool import ToolDef, ToolError, ToolParams

from metric_tracker_rl.inspect_eval import adapter
from metric_tracker_rl.inspect_eval.episode import Episode


def inline_refs(schema: Any, definitions: dict[str, Any] | None = None) -> Any:
    """The schema with every local `$ref` replaced by its definition: Inspect's tool parameters have no `$defs`."""
    if isinstance(schema, dict):
        definitions = {**(definitions or {}), **schema.get("$defs", {})}
        reference = schema.get("$ref")
        if isinstance(reference, str) and reference.startswith("#/$defs/"):
            return inline_refs(definitions[reference.removeprefix("#/$defs/")], definitions)
        return {key: inline_refs(value, definitions) for key, value in schema.items() if key != "$defs"}
    if isinstance(schema, list):
        return [inline_refs(item, definitions) for item in schema]
    return schema


def tool_params(parameters: dict[str, Any]) -> ToolParams:
    return ToolParams.model_validate(inline_refs(parameters))


def episode_tool(episode: Episode, name: str, description: str, parameters: dict[str, Any]) -> ToolDef:
    """One tool: the call becomes an action on the episode; a mistake (refused arguments, an error observation)
    is raised as a ToolError, which Inspect hands back to the model as the tool's error and logs as such."""

    async def call(**arguments: Any) -> str:
        action = adapter.action_for_call(name, arguments)
        if isinstance(action, str):
            raise ToolError(action)
        observation = await episode.step(action)
        text = adapter.observation_text(observation)
        if observation.status == "error":
            raise ToolError(text)
        return text

    return ToolDef(call, name=name, description=description, parameters=tool_params(parameters))


def episode_tools(episode: Episode) -> list[ToolDef]:
    return [episode_tool(episode, tool["name"], tool["description"], tool["parameters"])
            for tool in adapter.model_tools()]
