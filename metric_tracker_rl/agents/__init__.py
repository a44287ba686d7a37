"""Reference agents. They see only observations and send only public actions (no labels, no debug mode),
so the same agent runs in-process, over the WebSocket client, or inside inference.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from metric_tracker_rl.models import MetricTrackerRlAction, MetricTrackerRlObservation


class Agent:
    """A policy over one episode: `begin` sees the reset observation, then `act` is called with the latest
    observation until it returns None (the agent is finished) or the episode is done."""

    name: str = "agent"

    def begin(self, observation: MetricTrackerRlObservation) -> None:
        self.history: list[tuple[MetricTrackerRlAction, MetricTrackerRlObservation]] = []
        self.pending: MetricTrackerRlAction | None = None

    def act(self, observation: MetricTrackerRlObservation) -> MetricTrackerRlAction | None:
        raise NotImplementedError


class NullAgent(Agent):
    """Submits an empty report once."""

    name = "null"

    def act(self, observation: MetricTrackerRlObservation) -> MetricTrackerRlAction | None:
        if observation.status == "graded":
            return None
        return MetricTrackerRlAction(classifications=[])


AGENTS: dict[str, Callable[..., Agent]] = {}


def register_agent(name: str, factory: Callable[..., Agent]) -> None:
    if name in AGENTS:
        raise ValueError(f"agent {name!r} is already registered")
    AGENTS[name] = factory


def make_agent(name: str, **kwargs: Any) -> Agent:
    try:
        return AGENTS[name](**kwargs)
    except KeyError:
        raise ValueError(f"unknown agent {name!r}; valid: {', '.join(AGENTS)}") from None


register_agent("null", NullAgent)


def run_episode(agent: Agent, reset: Callable[..., Any], step: Callable[[MetricTrackerRlAction], Any],
                max_actions: int = 200, **reset_kwargs: Any) -> list[Any]:
    """Drive one episode with synchronous reset/step callables that return objects with .observation,
    .reward and .done (a StepResult) or observations themselves. Returns the step results."""
    result = reset(**reset_kwargs)
    observation = getattr(result, "observation", result)
    agent.begin(observation)
    results = []
    for _ in range(max_actions):
        action = agent.act(observation)
        if action is None:
            break
        result = step(action)
        observation = getattr(result, "observation", result)
        results.append(result)
        if observation.done:
            break
    return results


# Registered on import; they depend on the interface above.
from metric_tracker_rl.agents import baselines, expert, gaming, scripted, seed_replay  # noqa: E402,F401
