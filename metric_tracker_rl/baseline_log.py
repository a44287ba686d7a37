"""The baseline's stdout log format: one [START] line per task, a [STEP] line per environment step, one [END] line.

Published scores and rewards are clamped so that, at two decimals, they lie strictly inside (0, 1); an action is
`name(json)` on one line without whitespace, clipped to ACTION_CHARS. Only these lines go to stdout."""

from __future__ import annotations

import json
from typing import Any

from metric_tracker_rl.models import MetricTrackerRlAction
from metric_tracker_rl.tool_calls import action_tool_call

BENCHMARK = "metric_tracker_rl"
ACTION_CHARS = 220


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def open_interval(value: float) -> float:
    """A score or reward as published: clamped into [0.01, 0.99]."""
    return min(0.99, max(0.01, value))


def format_action(name: str, arguments: dict[str, Any]) -> str:
    """The `action=` field of a [STEP] line."""
    text = f"{name}({json.dumps(arguments, sort_keys=True, separators=(',', ':'))})" if arguments else f"{name}()"
    return "_".join(text.split())[:ACTION_CHARS]


def log_start(task: str, model: str) -> None:
    print(f"[START] task={task} env={BENCHMARK} model={model}", flush=True)


def log_step(step: int, action: str, reward: float, done: bool, error: str | None) -> None:
    print(f"[STEP] step={step} action={action} reward={open_interval(reward):.2f} done={str(done).lower()} "
          f"error={one_line(error) if error else 'null'}", flush=True)


def log_end(success: bool, steps: int, score: float, rewards: list[float]) -> None:
    rewards_text = ",".join(f"{open_interval(r):.2f}" for r in rewards)
    print(f"[END] success={str(success).lower()} steps={steps} score={open_interval(score):.2f} "
          f"rewards={rewards_text}", flush=True)


def log_action(step: int, action: MetricTrackerRlAction, reward: float, done: bool, error: str | None) -> None:
    """A [STEP] line for an environment action (the `on_step` hook of `transcript.TaskRun`)."""
    log_step(step, format_action(*action_tool_call(action)), reward, done, error)


def log_fallback(model_error: str, step: int, action: MetricTrackerRlAction, reward: float, done: bool,
                 error: str | None) -> None:
    """The empty report submitted for a model that failed, logged with the model's error."""
    log_action(step, action, reward, done, error or f"model error: {model_error}")
