"""The names of the package's reference agents, and the tiers each plays, readable without importing them: importing
the agents imports every agent's code and the client, which a command line that only checks its arguments must not
wait for. The registry (`metric_tracker_rl.agents.AGENTS`) holds exactly these; a test keeps the two equal."""

from __future__ import annotations

from metric_tracker_rl.catalog.published import RAW_EVENT_DIFFICULTIES, RESET_DIFFICULTIES
from metric_tracker_rl.catalog.tiers import COUNTS, TIERS

REFERENCE_AGENTS: tuple[str, ...] = (
    "null",
    "scripted",
    "expert",
    "deep_expert",
    "warehouse_expert",
    "audit_expert",
    "readme_baseline",
)
LLM_AGENT = "llm"  # inference.py's model policy: it plays whatever a model can read

_COUNT_TIERS = tuple(name for name in RESET_DIFFICULTIES if TIERS[name].data == COUNTS)
# The tiers an agent plays, where it plays only some, with why: one that submits a generator's rows needs the
# generators (counts); a tier's own expert plays the tiers its procedure reads.
AGENT_TIERS: dict[str, tuple[tuple[str, ...], str]] = {
    "scripted": (_COUNT_TIERS, "it reports through the generators, which only tiers of counts have"),
    "readme_baseline": (_COUNT_TIERS, "it submits a generator, which only tiers of counts have"),
    "deep_expert": (("deep", "abyss"), "its cuboid search reads the daily-only dimensions of deep and abyss"),
    "warehouse_expert": (RAW_EVENT_DIFFICULTIES, "its procedure reads raw events"),
    "audit_expert": (RAW_EVENT_DIFFICULTIES, "its procedure reads raw events"),
}


def agent_plays(agent: str, difficulty: str) -> bool:
    """Whether the agent (a reference agent, or the llm policy) plays episodes of `difficulty`."""
    tiers = AGENT_TIERS.get(agent)
    return tiers is None or difficulty in tiers[0]


def agents_playing(difficulty: str) -> tuple[str, ...]:
    """Every agent that plays `difficulty`, the llm policy first."""
    return tuple(agent for agent in (LLM_AGENT, *REFERENCE_AGENTS) if agent_plays(agent, difficulty))


def cannot_play(agent: str, difficulty: str) -> str:
    """Why `agent` does not play `difficulty`, naming the agents that do."""
    why = AGENT_TIERS[agent][1]
    return f"agent {agent!r} cannot play {difficulty} ({why}); agents that play {difficulty}: " + ", ".join(
        agents_playing(difficulty)
    )
