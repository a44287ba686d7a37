"""Reference agents. They read what a model reads, the structured view of each tool result
(`metric_tracker_rl.view.observation.seen`, whose text is what the model reads), and send only public actions (no
labels, no debug mode), so the same agent runs in-process, over the WebSocket client, or inside inference.py, and its
records show everything it decided from.

Importing the package registers every agent here (each module registers its own). The experts of the segmented
tiers are procedures over one shared core (expert_core/)."""

from metric_tracker_rl.agents import (  # noqa: F401
    audit_expert,
    deep_expert,
    expert,
    readme_baseline,
    scripted,
    warehouse_expert,
)
from metric_tracker_rl.agents.base import AGENTS, Agent, NullAgent, make_agent, play, register_agent, run_episode

__all__ = ["AGENTS", "Agent", "NullAgent", "make_agent", "play", "register_agent", "run_episode"]
