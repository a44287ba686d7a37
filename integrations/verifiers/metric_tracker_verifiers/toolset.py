"""The server's MCP tools as a verifiers Toolset: listed with tools/list, called with tools/call on the rollout's
episode session. Run by verifiers as `python -m metric_tracker_verifiers.toolset`."""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, cast

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, TextContent, Tool
from verifiers.v1.mcp import SharedToolsetConfig, Toolset

from metric_tracker_verifiers.episode import mcp_request
from metric_tracker_verifiers.state import EpisodeState


class MetricTrackerToolset(Toolset[SharedToolsetConfig, EpisodeState]):
    """Forwards the model's native tool calls to the episode session and keeps each call's reward."""

    TOOL_PREFIX = None  # the model sees the server's own tool names

    def __init__(self, config: SharedToolsetConfig) -> None:
        super().__init__(config)
        self._rollout_locks: weakref.WeakValueDictionary[Any, asyncio.Lock] = weakref.WeakValueDictionary()

    def register(self, mcp: MCPServer) -> None:
        # The catalog is the server's, not a static set of Python functions: answer MCPServer's own handlers.
        server = cast(Any, mcp)
        server.list_tools = self._with_state(self.list_tools)
        server.call_tool = self._one_call_per_rollout(self._with_state(self.call_tool))

    def _one_call_per_rollout(self, call: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        """verifiers syncs state by pulling it before a call and pushing it after (last write wins), so two tool
        calls of one turn running at once would lose a reward: a rollout's calls take turns; rollouts don't wait
        for each other. The state channel (URL and route) names the rollout."""

        @functools.wraps(call)
        async def one_at_a_time(*args: Any, **kwargs: Any) -> Any:
            url, _, route = self._state_channel()
            lock = self._rollout_locks.get((url, route))
            if lock is None:
                lock = self._rollout_locks[(url, route)] = asyncio.Lock()
            async with lock:
                return await call(*args, **kwargs)

        return one_at_a_time

    async def list_tools(self) -> list[Tool]:
        # In the rollout's session: its episode's tier's tools, with their descriptions and limits there.
        session = {"session_id": self.state.session_id} if self.state.session_id else {}
        result = await mcp_request(self.state.base_url, "tools/list", session, self.state.request_timeout_s)
        return [
            Tool(name=tool["name"], description=tool.get("description"), input_schema=tool["inputSchema"])
            for tool in result["tools"]
        ]

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Context | None = None) -> CallToolResult:
        params = {"name": name, "arguments": arguments or {}, "session_id": self.state.session_id}
        result = await mcp_request(self.state.base_url, "tools/call", params, self.state.request_timeout_s)
        outcome = result.get("structured_content") or {}
        self.state.rewards.append(float(outcome.get("reward") or 0.0))
        if outcome.get("episode_score") is not None:
            self.state.score = float(outcome["episode_score"])
        self.state.done = self.state.done or bool(outcome.get("done"))
        text = "".join(part.get("text", "") for part in result.get("content", []))
        return CallToolResult(content=[TextContent(type="text", text=text)], is_error=bool(result.get("is_error")))


if __name__ == "__main__":
    MetricTrackerToolset.run()
