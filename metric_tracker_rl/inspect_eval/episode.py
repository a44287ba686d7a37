"""One sample's episode: its WebSocket session and a record of every step, kept in the sample's store so that
the scorer sees the rewards even when a limit stops the solver mid-episode."""

from __future__ import annotations

from typing import Any

from inspect_ai.util import StoreModel
from pydantic import Field

from metric_tracker_rl import MetricTrackerRlAction, MetricTrackerRlEnv, MetricTrackerRlObservation


class EpisodeRecord(StoreModel):
    """What the scorer reads: the episode's rewards (their sum is its score) and its last graded feedback."""

    reset_kwargs: dict[str, Any] = Field(default_factory=dict)
    config: dict[str, Any] = Field(default_factory=dict)
    rewards: list[float] = Field(default_factory=list)
    done: bool = False
    graded_submissions: int = 0
    reward_breakdown: dict[str, Any] | None = None
    last_message: str = ""


class Episode:
    """Steps go through `step`, which records each reward and the done flag."""

    def __init__(self, env: MetricTrackerRlEnv, record: EpisodeRecord) -> None:
        self.env = env
        self.record = record

    async def reset(self, reset_kwargs: dict[str, Any]) -> MetricTrackerRlObservation:
        observation = (await self.env.reset(**reset_kwargs)).observation
        if observation.status == "error":
            raise RuntimeError(f"reset({reset_kwargs}) failed: {observation.message}")
        self.record.reset_kwargs = reset_kwargs
        self.record.config = observation.config
        return observation

    async def step(self, action: MetricTrackerRlAction) -> MetricTrackerRlObservation:
        result = await self.env.step(action)
        observation = result.observation
        self.record.rewards = [*self.record.rewards, float(result.reward or 0.0)]
        self.record.done = bool(result.done)
        self.record.last_message = observation.message
        if observation.status == "graded":
            self.record.graded_submissions += 1
            breakdown = observation.reward_breakdown
            self.record.reward_breakdown = breakdown.model_dump() if breakdown is not None else None
        return observation

    @property
    def done(self) -> bool:
        return self.record.done
