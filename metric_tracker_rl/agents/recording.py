"""One agent's episode recorded as inference.py records a model's: the chat a model would have read and written, the
steps and the score. Tests and measurements read what an agent was shown from it."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from metric_tracker_rl.adapters.transcript import TaskRun
from metric_tracker_rl.agents.base import Agent, run_episode


def record_episode(agent: Agent, env: Any, reset_kwargs: dict[str, Any]) -> TaskRun:
    """One episode of `agent` on `env` (the in-process environment or a sync client), recorded."""
    run = TaskRun(agent.name)
    run_episode(agent, partial(run.reset, env), partial(run.act, env), **reset_kwargs)
    return run


def message_texts(messages: list[dict[str, Any]]) -> list[str]:
    """What a model reads and writes in an episode: every message's text and its tool calls."""
    return [m["content"] + (json.dumps(m["tool_calls"]) if m.get("tool_calls") else "") for m in messages]
