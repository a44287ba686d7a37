"""The model's tools for one episode: one Inspect tool per model-facing tool of the environment, each a thin
call into the episode's WebSocket session. Names, descriptions and parameter schemas come from the tool
registry through metric_tracker_rl.tool_calls, the layer every model-facing harness shares; nothing here is
written per tool."""

from __future__ import annotations

import sys
from typing import Any

from inspect_ai.tool import ToolDef, ToolError, ToolParams

from metric_tracker_rl.inspect_eval.episode import Episode
from metric_tracker_rl.tool_calls import ModelTool, model_tools, render_observation, tool_action

# Inspect truncates long tool output itself (GenerateConfig.max_tool_output, `--max-tool-output`, 16 KiB by
# default) and tells the model so; the text is handed over whole.
UNCLIPPED = sys.maxsize


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


def episode_tool(episode: Episode, tool: ModelTool) -> ToolDef:
    """One tool: the call becomes an action on the episode; a mistake (refused arguments, an error observation)
    is raised as a ToolError, which Inspect hands back to the model as the tool's error and logs as such."""

    async def call(**arguments: Any) -> str:
        action = tool_action(tool.name, arguments)
        if isinstance(action, str):
            raise ToolError(action)
        observation = await episode.step(action)
        text = render_observation(observation, max_chars=UNCLIPPED)
        if observation.status == "error":
            raise ToolError(text)
        return text

    return ToolDef(call, name=tool.name, description=tool.description, parameters=tool_params(tool.parameters))


def episode_tools(episode: Episode) -> list[ToolDef]:
    return [episode_tool(episode, tool) for tool in model_tools()]
