"""metric_tracker_rl with the work of an analysis step taken out: the benchmark's step-free reference.

Each session stores the first observation of every analysis method it is asked for and sends that same
observation again for every later call of the method. Everything else is the real server: the app built by
`metric_tracker_rl.serving.app.build_app`, the action and observation types, resets, the frame guard and the
uvicorn settings. Its throughput is therefore the most the real server could reach if tools and observation
building cost nothing, which shows how much of the gap to the null environment is the environment's own work
and how much the framework spends on its larger messages.

    python -m lab.speed.replay_env --port 8002 --no-web
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from lab.speed.reference_server import serve_reference
from metric_tracker_rl.models import MetricTrackerRlAction, MetricTrackerRlObservation
from metric_tracker_rl.serving.app import build_app as build_real_app
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment


class ReplayEnvironment(MetricTrackerRlEnvironment):
    def __init__(self) -> None:
        super().__init__()
        self._replies: dict[str | None, MetricTrackerRlObservation] = {}

    def reset(
        self, seed: int | None = None, episode_id: str | None = None, **kwargs: Any
    ) -> MetricTrackerRlObservation:
        self._replies.clear()
        return super().reset(seed=seed, episode_id=episode_id, **kwargs)

    def step(
        self, action: MetricTrackerRlAction, timeout_s: float | None = None, **kwargs: Any
    ) -> MetricTrackerRlObservation:
        reply = self._replies.get(action.analysis_method)
        if reply is None:
            reply = self._replies[action.analysis_method] = super().step(action, timeout_s=timeout_s, **kwargs)
        return reply


def build_app() -> FastAPI:
    return build_real_app(ReplayEnvironment)


def main() -> None:
    serve_reference(
        "lab.speed.replay_env:build_app", "Serve the step-free replay of the real server (a benchmark reference).", 8002
    )


if __name__ == "__main__":
    main()
