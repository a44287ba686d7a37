"""What every reference agent is: a policy over what a model reads (the structured view of each step), a registry
of agents by name, and the loops that drive one episode."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from metric_tracker_rl.models import MetricTrackerRlAction
from metric_tracker_rl.session import EpisodeSession
from metric_tracker_rl.tool_calls import SeenObservation, seen


class Agent:
    """A policy over one episode: `begin` reads the episode brief, then `act` is called with the latest tool
    result until it returns None (the agent is finished) or the episode is done. Both receive the structured view
    of what the model-facing text shows (`tool_calls.SeenObservation`), never the observation itself."""

    name: str = "agent"

    def begin(self, observation: SeenObservation) -> None:
        """Read the brief (the first user message of the episode)."""

    def act(self, observation: SeenObservation) -> MetricTrackerRlAction | None:
        raise NotImplementedError


class ResultKeeper:
    """The results of a plan of named calls: `expect(name)` before a call, `keep(observation)` when its result
    arrives; `results[name]` holds it (an empty dict for an error)."""

    def __init__(self) -> None:
        self.results: dict[str, dict[str, Any]] = {}
        self.waiting: str | None = None

    def expect(self, name: str) -> None:
        self.waiting = name

    def keep(self, observation: SeenObservation) -> None:
        if self.waiting is not None:
            self.results[self.waiting] = observation.analysis_result or {}
            self.waiting = None


class NullAgent(Agent):
    """Submits an empty report once."""

    name = "null"

    def act(self, observation: SeenObservation) -> MetricTrackerRlAction | None:
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


def play(agent: Agent, session: EpisodeSession, max_actions: int = 200, **reset_kwargs: Any) -> EpisodeSession:
    """Drive one episode of `session` with `agent`, which decides from the session's structured views. Returns
    the session, which holds the steps, rewards and score."""
    view = session.reset(**reset_kwargs)
    if view.status == "error":
        raise ValueError(f"reset({reset_kwargs}) cannot start an episode: {view.text}")
    agent.begin(view)
    for _ in range(max_actions):
        action = agent.act(view)
        if action is None:
            break
        view = session.step(action).seen
        if session.done:
            break
    return session


def run_episode(agent: Agent, reset: Callable[..., Any], step: Callable[[MetricTrackerRlAction], Any],
                max_actions: int = 200, **reset_kwargs: Any) -> list[Any]:
    """Drive one episode with synchronous reset/step callables that return objects with .observation,
    .reward and .done (a StepResult) or observations themselves. The agent reads each observation as its
    model-facing text shows it. Returns the step results."""
    result = reset(**reset_kwargs)
    agent.begin(seen(getattr(result, "observation", result)))
    results = []
    for _ in range(max_actions):
        observation = getattr(result, "observation", result)
        action = agent.act(seen(observation))
        if action is None:
            break
        result = step(action)
        results.append(result)
        if getattr(result, "observation", result).done:
            break
    return results
