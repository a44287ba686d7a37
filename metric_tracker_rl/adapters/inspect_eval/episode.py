"""One sample's episode: its WebSocket session and a record of every step, kept in the sample's store so that
the scorer sees the rewards even when a limit stops the solver mid-episode."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from inspect_ai.util import StoreModel
from pydantic import Field

from metric_tracker_rl import MetricTrackerRlAction, MetricTrackerRlEnv, MetricTrackerRlObservation
from metric_tracker_rl.adapters.session import AsyncEpisodeSession, Step
from metric_tracker_rl.view.observation import SeenObservation


class EpisodeRecord(StoreModel):
    """What the scorer reads: the episode's score as the server computed it, its rewards and its last graded
    feedback (a copy of the session's, in the sample's store, because a limit may stop the solver mid-episode)."""

    reset_kwargs: dict[str, Any] = Field(default_factory=dict)
    config: dict[str, Any] = Field(default_factory=dict)
    score: float = 0.0
    rewards: list[float] = Field(default_factory=list)
    done: bool = False
    graded_submissions: int = 0
    reward_breakdown: dict[str, Any] | None = None
    last_message: str = ""


class Episode:
    """An `AsyncEpisodeSession` whose bookkeeping is copied into the sample's store after every step. `latest` is
    the view of its latest observation, whose text the model read last (a reference agent playing through
    Inspect's model API reads it: see metric_tracker_rl.agents.inspect_model)."""

    def __init__(self, env: MetricTrackerRlEnv, record: EpisodeRecord) -> None:
        self.session = AsyncEpisodeSession(env)
        self.record = record
        self.latest: SeenObservation | None = None

    async def reset(self, reset_kwargs: dict[str, Any]) -> MetricTrackerRlObservation:
        brief = await self.session.reset(**reset_kwargs)
        if brief.status == "error" or self.session.brief_observation is None:
            raise RuntimeError(f"reset({reset_kwargs}) failed: {self.session.message}")
        self.record.reset_kwargs = reset_kwargs
        self.record.config = self.session.config
        self.latest = brief
        return self.session.brief_observation

    async def step(self, action: MetricTrackerRlAction) -> Step:
        step = await self.session.step(action)
        self.latest = step.seen
        self.record.score = self.session.score
        self.record.rewards = list(self.session.rewards)
        self.record.done = self.session.done
        self.record.last_message = step.observation.message
        self.record.graded_submissions = self.session.submissions
        if step.observation.status == "graded":
            breakdown = step.observation.reward_breakdown
            self.record.reward_breakdown = breakdown.model_dump() if breakdown is not None else None
        return step

    @property
    def done(self) -> bool:
        return self.record.done


# The episode the current sample plays (the solver sets it in the sample's task, where its model calls run).
PLAYING: ContextVar[Episode | None] = ContextVar("metric_tracker_playing", default=None)
