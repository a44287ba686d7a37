"""One episode session: the episode's bookkeeping, written once for every integration.

`EpisodeSession(env)` runs an episode on the environment in this process
(`metric_tracker_rl.serving.environment.MetricTrackerRlEnvironment`) or on a server through the blocking client
(`MetricTrackerRlEnv(...).sync()`); `AsyncEpisodeSession(env)` does the same with `await` (the asyncio client,
or the in-process environment). Each `reset` and `step` returns the step as a model reads it, a
`observation.SeenObservation`: an explicit status, the numbers as shown, typed rows and the brief as data, and
`.text`, the model's text. The server sends structure only; the text is rendered here, from the observation as it
arrived, the same way in process and over the wire. The session keeps the rest: the steps taken, their rewards
(their sum is the episode's score), whether the episode is done, and its graded submissions.

The TRL tool class, the Inspect episode, inference.py's transcripts and the lab's measurements are adapters over it.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from metric_tracker_rl.models import MetricTrackerRlAction, MetricTrackerRlObservation
from metric_tracker_rl.view.observation import SeenObservation, render_observation, seen
from metric_tracker_rl.view.tool_schemas import tool_action

EPISODE_OVER_TEXT = "error: the episode is over (the report was graded or the budget is spent); stop calling tools"


class EpisodeNotStarted(RuntimeError):
    """A step before the episode's reset (a programming error of the caller, not a model's mistake)."""


@dataclass(frozen=True)
class Step:
    """One step's outcome: the observation as the environment sent it, its reward, and the model's view of it,
    built when first read (a tool call that only needs the text, such as a trainer's, skips the view's copy)."""

    observation: MetricTrackerRlObservation
    reward: float
    done: bool
    used: bool = True  # the environment counted it as a step (a call it refused before running is not one)

    @cached_property
    def seen(self) -> SeenObservation:
        return seen(self.observation)

    @cached_property
    def text(self) -> str:
        """The model's text: the view's, when the view was built already."""
        view = self.__dict__.get("seen")
        return view.text if view is not None else render_observation(self.observation)


def _answer(result: Any) -> tuple[MetricTrackerRlObservation, float, bool]:
    """An environment's answer as (observation, reward, done): a client answers with a StepResult, the
    in-process environment with the observation itself."""
    observation = getattr(result, "observation", result)
    return observation, float(result.reward or 0.0), bool(result.done)


@dataclass
class _Bookkeeping:
    """What an episode has done so far; the sync and async sessions differ only in how they call the env."""

    env: Any
    observation: MetricTrackerRlObservation | None = None  # the latest, as the environment sent it
    brief: SeenObservation | None = None  # the reset's view
    brief_observation: MetricTrackerRlObservation | None = None  # the reset's observation
    steps: int = 0
    rewards: list[float] = field(default_factory=list)
    done: bool = False
    graded: MetricTrackerRlObservation | None = None  # the latest graded submission's observation
    submissions: int = 0  # graded submissions

    @property
    def started(self) -> bool:
        return self.brief is not None

    @property
    def score(self) -> float:
        """The episode's score as the server computed it (the sum of its rewards: each graded submission earns its
        improvement over the best earlier score, so the sum is the best graded score; 0 before any)."""
        if self.observation is not None and self.observation.episode_score is not None and self.started:
            return float(self.observation.episode_score)
        return float(sum(self.rewards))

    @property
    def message(self) -> str:
        """The latest observation's message ('' before the first)."""
        return self.observation.message if self.observation is not None else ""

    @property
    def config(self) -> dict[str, Any]:
        """The episode's visible config, as its reset sent it."""
        return {} if self.brief_observation is None else self.brief_observation.config

    def _started(self, result: Any) -> SeenObservation:
        observation, _, _ = _answer(result)
        view = seen(observation)
        self.observation = observation
        if observation.status == "error":
            return view  # no episode: the caller decides how to report it
        self.brief, self.brief_observation = view, observation
        self.steps, self.rewards, self.done, self.graded, self.submissions = 0, [], False, None, 0
        return view

    def abandon(self) -> None:
        """End the episode without the environment's word (its connection died): later tool calls are refused."""
        self.done = True

    def _check_started(self) -> None:
        if not self.started:
            raise EpisodeNotStarted("reset the session before any step")

    def _stepped(self, result: Any) -> Step:
        observation, reward, done = _answer(result)
        before, self.observation = self.observation, observation
        if (
            observation.status == "error"
            and before is not None
            and observation.steps_remaining == before.steps_remaining
        ):
            return Step(observation, reward, done, used=False)  # refused before it ran: no step used
        self.steps += 1
        self.rewards.append(reward)
        self.done = done
        if observation.status == "graded":
            self.graded = observation
            self.submissions += 1
        return Step(observation, reward, done)

    def _action_of_call(self, name: str, arguments: str | dict[str, Any] | None) -> MetricTrackerRlAction | str:
        """The action of a model's tool call, or the text that refuses it (nothing is sent then)."""
        self._check_started()
        if self.done:
            return EPISODE_OVER_TEXT
        return tool_action(name, arguments, self.config.get("difficulty"))


class EpisodeSession(_Bookkeeping):
    """An episode on a blocking environment (in process, or the sync client)."""

    def reset(self, **reset_kwargs: Any) -> SeenObservation:
        """Start an episode; the view's status is `error` (and nothing starts) when the settings are refused."""
        return self._started(self.env.reset(**reset_kwargs))

    def step(self, action: MetricTrackerRlAction) -> Step:
        self._check_started()
        return self._stepped(self.env.step(action))

    def call(self, name: str, arguments: str | dict[str, Any] | None) -> str:
        """A model's tool call answered with the text it reads: the result, or what was wrong with the call."""
        action = self._action_of_call(name, arguments)
        return action if isinstance(action, str) else self.step(action).text


class AsyncEpisodeSession(_Bookkeeping):
    """An episode on an asyncio environment (the client), or on a blocking one called from a coroutine."""

    async def reset(self, **reset_kwargs: Any) -> SeenObservation:
        return self._started(await _awaited(self.env.reset(**reset_kwargs)))

    async def step(self, action: MetricTrackerRlAction) -> Step:
        self._check_started()
        return self._stepped(await _awaited(self.env.step(action)))

    async def call(self, name: str, arguments: str | dict[str, Any] | None) -> str:
        action = self._action_of_call(name, arguments)
        return action if isinstance(action, str) else (await self.step(action)).text


async def _awaited(result: Any) -> Any:
    return await result if inspect.isawaitable(result) else result
