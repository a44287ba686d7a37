"""Reference agents. They read what a model reads, the structured view of each tool result (`tool_calls.seen`,
whose text is what the model reads), and send only public actions (no labels, no debug mode), so the same agent
runs in-process, over the WebSocket client, or inside inference.py, and its records show everything it decided from.

Importing the package registers every agent (each module registers its own)."""

from metric_tracker_rl.agents import baselines, deep_expert, expert, fixed_rule, gaming, scripted, seed_replay  # noqa: F401
from metric_tracker_rl.agents.base import AGENTS, Agent, NullAgent, make_agent, play, register_agent, run_episode

__all__ = ["AGENTS", "Agent", "NullAgent", "make_agent", "play", "register_agent", "run_episode"]
