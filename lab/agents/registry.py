"""The lab's own registry of agents. The shortcuts, lower bounds, analysts and warehouse baselines calibrate the
tiers; they register here, so the package's `AGENTS` lists only its reference agents. The lab plays both: `make_agent`
finds a name in either registry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from metric_tracker_rl.agents.base import AGENTS, Agent
from metric_tracker_rl.catalog.registry import Registry, UnknownName

LAB_AGENTS: Registry[Callable[..., Agent]] = Registry("lab agent")


def register_lab_agent(name: str, factory: Callable[..., Agent]) -> None:
    """Register a lab agent; a name the package's registry holds is refused, so a name means one agent everywhere."""
    if name in AGENTS:
        raise ValueError(f"agent {name!r} is already registered in the package")
    LAB_AGENTS.register(factory, name)


def known_agents() -> tuple[str, ...]:
    """Every agent the lab can play: the package's reference agents, then the lab's own."""
    return (*AGENTS, *LAB_AGENTS)


def make_agent(name: str, **kwargs: Any) -> Agent:
    """A new agent of a name registered in the lab or in the package; an unknown name lists both."""
    factory = LAB_AGENTS.get(name) or AGENTS.get(name)
    if factory is None:
        raise UnknownName(f"unknown agent {name!r}; valid: {', '.join(known_agents())}")
    return factory(**kwargs)
