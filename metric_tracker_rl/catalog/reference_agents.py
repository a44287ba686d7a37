"""The names of the package's reference agents, readable without importing them: importing the agents imports
every agent's code and the client, which a command line that only checks its arguments must not wait for. The
registry (`metric_tracker_rl.agents.AGENTS`) holds exactly these; a test keeps the two equal."""

from __future__ import annotations

REFERENCE_AGENTS: tuple[str, ...] = (
    "null",
    "scripted",
    "expert",
    "deep_expert",
    "warehouse_expert",
    "audit_expert",
    "readme_baseline",
)
