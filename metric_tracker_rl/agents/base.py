"""What every reference agent is: a policy over what a model reads (the structured view of each step), a registry
of agents by name, and the loop that drives one episode."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from metric_tracker_rl.adapters.session import EpisodeSession
from metric_tracker_rl.catalog.registry import Registry
from metric_tracker_rl.models import MetricTrackerRlAction
from metric_tracker_rl.view.observation import SeenObservation


class Agent:
    """A policy over one episode: `begin` reads the episode brief, then `act` is called with the latest tool
    result until it returns None (the agent is finished) or the episode is done. Both receive the structured view
    of what the model-facing text shows (`view.observation.SeenObservation`), never the observation itself."""

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


AGENTS: Registry[Callable[..., Agent]] = Registry("agent")


def register_agent(name: str, factory: Callable[..., Agent]) -> None:
    AGENTS.register(factory, name)


def make_agent(name: str, **kwargs: Any) -> Agent:
    """A new agent of a registered name; an unknown name is a ValueError that lists the registered ones."""
    return AGENTS[name](**kwargs)


register_agent("null", NullAgent)


def play(agent: Agent, session: EpisodeSession, max_actions: int = 200, **reset_kwargs: Any) -> EpisodeSession:
    """Drive one episode of `session` with `agent`, which decides from the session's structured views. Returns
    the session, which holds the steps, rewards and score."""
    view = session.reset(**reset_kwargs)
    if view.status == "error":
        raise ValueError(f"reset({reset_kwargs}) cannot start an episode: {view.text}")
    _drive(agent, view, lambda action: None if (step := session.step(action)).done else step.seen, max_actions)
    return session


def run_episode(
    agent: Agent,
    reset: Callable[..., Any],
    step: Callable[[MetricTrackerRlAction], Any],
    max_actions: int = 200,
    **reset_kwargs: Any,
) -> list[Any]:
    """`play` over synchronous reset/step callables (a client's, or ones that record a transcript), which return
    a StepResult or an observation. Returns the step results, in order."""
    results: list[Any] = []

    def recorded(action: MetricTrackerRlAction) -> Any:
        results.append(result := step(action))
        return result

    play(agent, EpisodeSession(SimpleNamespace(reset=reset, step=recorded)), max_actions, **reset_kwargs)
    return results


def _drive(
    agent: Agent,
    view: SeenObservation,
    step: Callable[[MetricTrackerRlAction], SeenObservation | None],
    max_actions: int,
) -> None:
    """The driver's loop: `step` returns the next view, or None once the episode is done."""
    agent.begin(view)
    for _ in range(max_actions):
        action = agent.act(view)
        if action is None:
            return
        next_view = step(action)
        if next_view is None:
            return
        view = next_view
