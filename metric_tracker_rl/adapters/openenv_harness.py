"""Rollout sessions for OpenEnv's harness layer (`openenv.core.harness`), over the server's MCP tools.

TRL's async GRPO trainer (`trl.experimental.async_grpo`, its `openenv_harness`) and `openenv collect` run an
episode through a `ResourceSession`: `initial_messages()`, `list_tools()` (MCP tools, which TRL turns into
the model's tool schemas), `call_tool(name, arguments)` per model tool call, then `verify()` for the reward.
`McpSessionFactory(base_url).create(task, seed=...)` opens one WebSocket session on the server, resets it, and
answers all of those with the server's MCP surface (`{"type": "mcp"}` JSON-RPC messages on the same socket),
so the tools, their schemas and their result texts are the ones every other harness gets.

The harness layer takes a rollout's reward from the last tool result that carries one (and checks that
`verify()` agrees), not from a sum: every result here carries the episode's score so far as the server computed it
(`reward` in its metadata), so the last one is the episode's score even after several submissions.
"""

from __future__ import annotations

import itertools
import json
import random
from typing import Any

from openenv.core.env_server.mcp_types import Tool
from openenv.core.harness import (
    Message,
    ResourceSession,
    ResourceSessionFactory,
    ToolResult,
    VerifyResult,
)
from websockets.sync.client import ClientConnection, connect

from metric_tracker_rl.catalog.tasks import RESET_KEYS
from metric_tracker_rl.catalog.tier_episodes import train_episode
from metric_tracker_rl.models import MetricTrackerRlObservation
from metric_tracker_rl.view.prompt import SYSTEM_PROMPT, first_prompt

MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class McpSessionError(RuntimeError):
    """The server refused the session's reset or answered a message with an error (not an agent mistake)."""


class McpSession(ResourceSession):
    """One episode on a running server, driven through its MCP tools (see the module docstring)."""

    def __init__(self, base_url: str, reset_kwargs: dict[str, Any], timeout_s: float = 180.0) -> None:
        # Entered as a context manager (websockets' supported way to hold a connection); close() leaves it.
        self._socket: ClientConnection = connect(
            base_url.rstrip("/").replace("http", "ws", 1) + "/ws", max_size=MAX_MESSAGE_BYTES, open_timeout=timeout_s
        ).__enter__()
        self._timeout_s = timeout_s
        self._ids = itertools.count(1)
        self._score = 0.0
        self._done = False
        try:
            reply = self._send({"type": "reset", "data": reset_kwargs})
            observation = MetricTrackerRlObservation.model_validate(reply["data"]["observation"])
            if observation.status == "error":
                raise McpSessionError(f"reset {reset_kwargs} failed: {observation.message}")
            self._brief = first_prompt(observation)
            listed = self._rpc("tools/list", {})
            self._tools = [
                Tool(name=t["name"], description=t["description"], input_schema=t["inputSchema"])
                for t in listed["tools"]
            ]
        except BaseException:
            self.close()
            raise

    def _send(self, message: dict[str, Any]) -> dict[str, Any]:
        self._socket.send(json.dumps(message))
        reply = json.loads(self._socket.recv(timeout=self._timeout_s))
        if reply.get("type") == "error":
            raise McpSessionError(f"the server answered {message['type']} with {reply['data']}")
        return reply

    def _rpc(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        request_id = next(self._ids)
        data = self._send(
            {"type": "mcp", "data": {"jsonrpc": "2.0", "method": method, "params": params, "id": request_id}}
        )["data"]
        if "error" in data:
            raise McpSessionError(f"{method} failed: {data['error']}")
        return data["result"]

    def initial_messages(self) -> list[Message]:
        return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": self._brief}]

    def list_tools(self) -> list[Tool]:
        return list(self._tools)

    def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        """The tool's text as `data`; an agent mistake also as `error` (the harness counts it as a failed call)."""
        result = self._rpc("tools/call", {"name": name, "arguments": arguments})
        outcome = result["structured_content"]
        if outcome["episode_score"] is not None:
            self._score = float(outcome["episode_score"])
        self._done = bool(outcome["done"])
        text = result["data"]
        return ToolResult(
            data=text, done=self._done, metadata={"reward": self._score}, error=text if result["is_error"] else None
        )

    def verify(self, transcript: list[Message], final_state: Any | None = None) -> VerifyResult:
        return VerifyResult(
            env_reward=self._score,
            done=self._done,
            metrics={"tool_messages": sum(1 for message in transcript if message.get("role") == "tool")},
        )

    def close(self) -> None:
        self._socket.close()


class McpSessionFactory(ResourceSessionFactory[McpSession]):
    """Sessions on the server at `base_url`. A task is a dict of reset settings (a dataset row: `task_id`, or
    `seed` and `difficulty`, ...; other keys are ignored) laid over `reset_defaults`. A task that chooses no episode
    (no seed, task_id or split) plays a train task of its tier, drawn with `create`'s `seed` (the same seed, the
    same task; none: at random), never an eval one."""

    def __init__(self, base_url: str, reset_defaults: dict[str, Any] | None = None, timeout_s: float = 180.0) -> None:
        self._base_url = base_url
        self._defaults = dict(reset_defaults or {})
        self._timeout_s = timeout_s

    def create(self, task: Any, seed: int | None = None, episode_id: str | None = None) -> McpSession:
        settings = {**self._defaults, **{k: v for k, v in dict(task or {}).items() if k in RESET_KEYS}}
        settings = train_episode(settings, random.Random(seed))  # `seed` draws the train task; none: at random
        if episode_id is not None:
            settings["episode_id"] = episode_id
        return McpSession(self._base_url, settings, self._timeout_s)
