"""WebSocket client: one connection is one episode session on the server."""

from __future__ import annotations

from typing import Any

from openenv.core.client_types import StepResult
from openenv.core.env_client import EnvClient

from metric_tracker_rl.models import MetricTrackerRlAction, MetricTrackerRlObservation, MetricTrackerRlState


class MetricTrackerRlEnv(EnvClient[MetricTrackerRlAction, MetricTrackerRlObservation, MetricTrackerRlState]):
    """`await env.reset(task_id=..., seed=...)`, `await env.step(action)`; `.sync()` for blocking use.

    A closed connection is reopened by the next call, which then lands on a new session: `sessions_opened`
    counts them, so a caller can tell that a step went to a session without its episode."""

    sessions_opened = 0

    async def _connect_async(self) -> MetricTrackerRlEnv:
        before = self._ws
        await super()._connect_async()
        if self._ws is not before:
            self.sessions_opened += 1
        return self

    def _step_payload(self, action: MetricTrackerRlAction) -> dict[str, Any]:
        return action.model_dump(mode="json", exclude_none=True)

    def _parse_result(self, payload: dict[str, Any]) -> StepResult[MetricTrackerRlObservation]:
        observation = MetricTrackerRlObservation.model_validate(
            {**payload.get("observation", {}), "reward": payload.get("reward"), "done": payload.get("done", False)}
        )
        return StepResult(observation=observation, reward=payload.get("reward"), done=bool(payload.get("done")))

    def _parse_state(self, payload: dict[str, Any]) -> MetricTrackerRlState:
        return MetricTrackerRlState.model_validate(payload)
