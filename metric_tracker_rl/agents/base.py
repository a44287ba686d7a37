"""What every reference agent is: a policy over what a model reads (the structured view of each step), a registry
of agents by name, and the loops that drive one episode."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from metric_tracker_rl.models import MetricTrackerRlAction
from metric_tracker_rl.session import EpisodeSession, Step
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
    _drive(agent, view, lambda action: None if (step := session.step(action)).done else step.seen, max_actions)
    return session


def run_episode(agent: Agent, reset: Callable[..., Any], step: Callable[[MetricTrackerRlAction], Any],
                max_actions: int = 200, **reset_kwargs: Any) -> list[Any]:
    """Drive one episode with synchronous reset/step callables that return objects with .observation,
    .reward and .done (a StepResult) or observations themselves. The agent reads each observation as its
    model-facing text shows it. Returns the step results."""
    results = []

    def step_once(action: MetricTrackerRlAction) -> SeenObservation | None:
        result = step(action)
        results.append(result)
        return None if getattr(result, "observation", result).done else _view(result)

    _drive(agent, _view(reset(**reset_kwargs)), step_once, max_actions)
    return results


def _view(result: Any) -> SeenObservation:
    """The view of a reset's or step's result: a session's step carries it, anything else is rendered here."""
    return result.seen if isinstance(result, Step) else seen(getattr(result, "observation", result))


def _drive(agent: Agent, view: SeenObservation, step: Callable[[MetricTrackerRlAction], SeenObservation | None],
           max_actions: int) -> None:
    """The loop of both drivers: `step` returns the next view, or None once the episode is done."""
    agent.begin(view)
    for _ in range(max_actions):
        action = agent.act(view)
        if action is None:
            return
        next_view = step(action)
        if next_view is None:
            return
        view = next_view
