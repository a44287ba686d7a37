"""An OpenEnv environment that does nothing, served by the same `create_app` stack as the real one.

The benchmark runs it side by side with metric_tracker_rl: whatever throughput it reaches is the ceiling
that the framework, uvicorn and the loopback network allow on this machine, so the ratio of the two
isolates the cost of the environment's own work.

    python -m lab.speed.null_env --port 8001 --no-web
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from openenv.core.env_server.http_server import create_app
from openenv.core.env_server.interfaces import Environment
from openenv.core.env_server.types import Action, ConcurrencyConfig, Observation, State
from pydantic import Field

from lab.speed.reference_server import serve_reference
from metric_tracker_rl.settings import ServerSettings


class NullAction(Action):
    """Any action; `note` is echoed back so the message has a body to parse."""

    note: str = Field(default="", description="Echoed in the observation")


class NullObservation(Observation):
    echo: str = Field(default="", description="The note of the last action")


class NullEnvironment(Environment[NullAction, NullObservation, State]):
    SUPPORTS_CONCURRENT_SESSIONS = True

    def __init__(self) -> None:
        super().__init__()
        self._steps = 0

    def reset(self, seed: int | None = None, episode_id: str | None = None, **kwargs: Any) -> NullObservation:
        self._steps = 0
        return NullObservation(reward=None, done=False)

    def step(self, action: NullAction, timeout_s: float | None = None, **kwargs: Any) -> NullObservation:
        self._steps += 1
        return NullObservation(echo=action.note, reward=0.0, done=False)

    async def step_async(self, action: NullAction, timeout_s: float | None = None, **kwargs: Any) -> NullObservation:
        """Steps run on the event loop, as metric_tracker_rl's analysis calls do, so the two are compared
        through the same dispatch path."""
        return self.step(action, timeout_s=timeout_s, **kwargs)

    @property
    def state(self) -> State:
        return State(step_count=self._steps)


def build_app() -> FastAPI:
    """Same settings as the real server: MAX_CONCURRENT_ENVS, SESSION_TIMEOUT_S, ENABLE_WEB_INTERFACE (and its
    uvicorn WebSocket options: see serve_reference)."""
    settings = ServerSettings.load()
    concurrency = ConcurrencyConfig(
        max_concurrent_envs=settings.max_concurrent_envs, session_timeout=settings.session_timeout_s
    )
    return create_app(NullEnvironment, NullAction, NullObservation, env_name="null_env", concurrency_config=concurrency)


def main() -> None:
    serve_reference("lab.speed.null_env:build_app", "Serve the null environment (a benchmark reference).", 8001)


if __name__ == "__main__":
    main()
