"""WebSocket client: one connection is one episode session on the server."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from openenv.core.client_types import StepResult
from openenv.core.env_client import EnvClient
from websockets.protocol import State

from metric_tracker_rl.compat.openenv import client_socket
from metric_tracker_rl.models import MetricTrackerRlAction, MetricTrackerRlObservation, MetricTrackerRlState
from metric_tracker_rl.reconnect import GOING_AWAY, SessionLost


class MetricTrackerRlEnv(EnvClient[MetricTrackerRlAction, MetricTrackerRlObservation, MetricTrackerRlState]):
    """`await env.reset(task_id=..., seed=...)`, `await env.step(action)`; `.sync()` for blocking use.

    A closed connection is reopened by the next call, which then lands on a new session: `sessions_opened`
    counts them. An episode lives in the session its reset reached, so a step after that session's connection
    closed (a server restart, a replica gone, an idle session closed, a reply that timed out) is not sent to a
    new session, which has no episode: it raises `SessionLost`, saying what ended the session, until the next
    reset starts a new episode."""

    sessions_opened = 0
    _episode_socket: Any = None  # the connection whose session holds the episode (set by a successful reset)
    _loss: SessionLost | None = None  # why that session is gone, once a step found out (read only once)

    async def _connect_async(self) -> MetricTrackerRlEnv:
        before = client_socket(self)
        await super()._connect_async()
        if client_socket(self) is not before:
            self.sessions_opened += 1
        return self

    async def _reset_async(self, **kwargs: Any) -> StepResult[MetricTrackerRlObservation]:
        result = await super()._reset_async(**kwargs)
        if result.observation.status != "error":
            self._episode_socket, self._loss = client_socket(self), None
        elif client_socket(self) is not self._episode_socket:
            self._episode_socket, self._loss = None, None  # refused on a new session: there is no episode to lose
        return result

    async def _step_async(self, action: MetricTrackerRlAction, **kwargs: Any) -> StepResult[MetricTrackerRlObservation]:
        self._loss = self._loss or await self._lost_session()
        if self._loss is not None:
            raise self._loss
        return await super()._step_async(action, **kwargs)

    async def _lost_session(self) -> SessionLost | None:
        """Why the episode's session is gone, or None while its connection is open (or no reset started one)."""
        held = self._episode_socket
        if held is None or (held is client_socket(self) and held.state not in (State.CLOSING, State.CLOSED)):
            return None
        code, reason = held.close_code, held.close_reason
        if code == GOING_AWAY:
            how = f"the server closed it because it is stopping ({reason or 'code 1001'})"
        elif code is not None:
            how = f"its connection was closed (code {code}{': ' + reason if reason else ''})"
        else:
            how = "its connection was dropped (a reply timed out, or the connection broke)"
        said = await self._last_words(held)
        return SessionLost(f"the session that held this episode is gone: {how}.{said} The episode and its steps are "
                           "lost; call reset() to start a new episode (this client connects again by itself).", code)

    @staticmethod
    async def _last_words(held: Any) -> str:
        """An error the server sent just before it closed the session (why it closed it), if it is still unread."""
        if held.state is not State.CLOSED:
            return ""
        with contextlib.suppress(Exception):  # nothing queued: the connection ends with ConnectionClosed
            reply = json.loads(await asyncio.wait_for(held.recv(), timeout=0.1))
            if reply.get("type") == "error":
                return f" The server said: {reply['data']['message']}"
        return ""

    def _step_payload(self, action: MetricTrackerRlAction) -> dict[str, Any]:
        return action.model_dump(mode="json", exclude_none=True)

    def _parse_result(self, payload: dict[str, Any]) -> StepResult[MetricTrackerRlObservation]:
        observation = MetricTrackerRlObservation.model_validate(
            {**payload.get("observation", {}), "reward": payload.get("reward"), "done": payload.get("done", False)}
        )
        return StepResult(observation=observation, reward=payload.get("reward"), done=bool(payload.get("done")))

    def _parse_state(self, payload: dict[str, Any]) -> MetricTrackerRlState:
        return MetricTrackerRlState.model_validate(payload)
