"""metric_tracker_rl episodes as a verifiers taskset: `vf-eval metric-tracker-verifiers --env.taskset.base-url URL`.

The model calls the server's MCP tools natively (listed with tools/list, called with tools/call on one episode
session per rollout); the rollout's reward is the episode's score as the server computed it."""

from metric_tracker_verifiers.taskset import MetricTrackerTaskset

__all__ = ["MetricTrackerTaskset"]
