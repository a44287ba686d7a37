"""A server with several worker processes gives every session the episode its config determines.

Sessions are per WebSocket connection and an episode is a pure function of its config, so the server holds
no shared state: uvicorn workers (or replicas behind a load balancer) need no coordination.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from conftest import running_server

from metric_tracker_rl import MetricTrackerRlAction, MetricTrackerRlEnv
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment

pytestmark = pytest.mark.slow  # starts server processes or a browser

ACTIONS = [
    MetricTrackerRlAction(analysis_method="get_annotations"),
    MetricTrackerRlAction(analysis_method="list_suspicious_dates", analysis_args={"limit": 5}),
    MetricTrackerRlAction(
        analysis_method="compare_count_to_median", analysis_args={"date": "2026-03-17", "entity_name": "app_opens"}
    ),
    MetricTrackerRlAction(
        payload_generators=[
            {"method_name": "get_rate_drop_from_median_rows", "threshold_multiplier": 3.0},
            {"method_name": "get_funnel_break_rows", "threshold_multiplier": 3.0},
        ]
    ),
]
SESSIONS = [
    {"task_id": "medium_mixed_three", "seed": 11},
    {"task_id": "hard_mixed_multi", "seed": 12},
    {"task_id": "medium_mixed_three", "seed": 13},
    {"task_id": "easy_two_spikes", "seed": 14},
]


def comparable(observation: Any, reward: float | None) -> dict[str, Any]:
    return {
        "status": observation.status,
        "message": observation.message,
        "reward": reward,
        "analysis_result": observation.analysis_result,
        "submitted_rows": [row.model_dump() for row in observation.submitted_rows],
        "reward_breakdown": observation.reward_breakdown.model_dump() if observation.reward_breakdown else None,
        "steps_remaining": observation.steps_remaining,
    }


def in_process(reset: dict[str, Any]) -> list[dict[str, Any]]:
    env = MetricTrackerRlEnvironment()
    first = env.reset(**reset)
    return [comparable(first, None)] + [comparable(obs, obs.reward) for obs in map(env.step, ACTIONS)]


async def over_websocket(url: str, reset: dict[str, Any]) -> list[dict[str, Any]]:
    async with MetricTrackerRlEnv(base_url=url) as env:
        results = [await env.reset(**reset)]
        for action in ACTIONS:
            results.append(await env.step(action))
    return [comparable(r.observation, r.reward) for r in results]


async def concurrently(url: str) -> list[list[dict[str, Any]]]:
    return list(await asyncio.gather(*(over_websocket(url, reset) for reset in SESSIONS)))


def test_two_workers_serve_concurrent_sessions_like_the_in_process_environment() -> None:
    with running_server(workers=2) as url:
        remote = asyncio.run(concurrently(url))
    for reset, episode in zip(SESSIONS, remote, strict=True):
        assert episode == in_process(reset), reset
    # The sessions really are different episodes, not one cached answer.
    assert remote[0][2]["analysis_result"] != remote[1][2]["analysis_result"]
    assert all(step["status"] != "error" for episode in remote for step in episode)
