"""The baseline's output formats. On stdout, only: one [START] line per task, a [STEP] line per environment step,
one [END] line. Published scores and rewards are clamped so that, at two decimals, they lie strictly inside (0, 1);
an action is `name(json)` on one line (JSON escapes line breaks and tabs; a statement keeps its spaces), clipped
to ACTION_CHARS. On stderr, a [REFUSED] line per tool call answered without a step, the progress bar and the summary
table; in the `--output` file, a TaskResult per task."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Any

from metric_tracker_rl.models import MetricTrackerRlAction
from metric_tracker_rl.view.tool_schemas import action_tool_call

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
    return text[:ACTION_CHARS]  # one line (JSON escapes every other whitespace); a statement keeps its spaces


def log_start(task: str, model: str) -> None:
    print(f"[START] task={task} env={BENCHMARK} model={model}", flush=True)


def log_step(step: int, action: str, reward: float, done: bool, error: str | None) -> None:
    print(
        f"[STEP] step={step} action={action} reward={open_interval(reward):.2f} done={str(done).lower()} "
        f"error={one_line(error) if error else 'null'}",
        flush=True,
    )


def log_end(success: bool, steps: int, score: float, rewards: list[float]) -> None:
    rewards_text = ",".join(f"{open_interval(r):.2f}" for r in rewards)
    print(
        f"[END] success={str(success).lower()} steps={steps} score={open_interval(score):.2f} rewards={rewards_text}",
        flush=True,
    )


def log_action(step: int, action: MetricTrackerRlAction, reward: float, done: bool, error: str | None) -> None:
    """A [STEP] line for an environment action (the `on_step` hook of `transcript.TaskRun`)."""
    log_step(step, format_action(*action_tool_call(action)), reward, done, error)


def log_refused(task: str, call: dict[str, Any]) -> None:
    """A [REFUSED] line on stderr for a tool call answered without an environment step (unknown tool, malformed
    arguments, an invalid submission): stdout's format has one line per step, so the call is shown beside it."""
    action = one_line(f"{call['tool']}({call['arguments'] or ''})")[:ACTION_CHARS]
    print(
        f"[REFUSED] task={task} after_step={call['after_step']} action={action} error={one_line(call['error'])[:300]}",
        file=sys.stderr,
        flush=True,
    )


def log_fallback(
    reason: str, step: int, action: MetricTrackerRlAction, reward: float, done: bool, error: str | None
) -> None:
    """The empty report submitted for an agent that submitted none, logged with the reason in its error field."""
    log_action(step, action, reward, done, error or reason)


@dataclass
class TaskResult:
    task_id: str
    seed: int | None
    score: float  # the environment's score, in [0, 1]
    published_score: float  # the [END] score, clamped into (0, 1)
    success: bool
    steps: int
    rewards: list[float]
    seconds: float
    error: str | None = None  # the environment could not be reached or failed
    model_error: str | None = None
    reward_breakdown: dict[str, Any] | None = None
    fallback: str | None = None  # why the task has no graded report of the agent's, when it has none
    refused_calls: list[dict[str, Any]] = field(default_factory=list)  # tool calls answered without a step
    graded: bool = False  # a report of the agent's (or the fallback's) was graded

    def report(self) -> str:
        """The summary table's report cell: `submitted` only for a task whose report was graded; a task that
        never started an episode, or failed before a report was graded, reads FAILED and why."""
        if self.fallback:
            return f"FALLBACK: {self.fallback}"
        if self.graded:
            return "submitted"
        return f"FAILED: {one_line(self.error or 'no report was graded')[:100]}"


def summary_table(results: list[TaskResult]) -> str:
    """The run's scores; a task without a graded report of the agent's is marked in its row and counted below, as
    are the tool calls refused without a step."""
    lines = [f"{'task':<24} {'score':>6} {'steps':>6} {'refused':>7} {'seconds':>8}  report"]
    lines += [
        f"{r.task_id:<24} {r.score:>6.3f} {r.steps:>6} {len(r.refused_calls):>7} {r.seconds:>8.2f}  " + r.report()
        for r in results
    ]
    refused = sum(len(r.refused_calls) for r in results)
    if results:
        lines.append(
            f"{'mean':<24} {sum(r.score for r in results) / len(results):>6.3f} "
            f"{sum(r.steps for r in results):>6} {refused:>7} {sum(r.seconds for r in results):>8.2f}"
        )
    if fallbacks := sum(r.fallback is not None for r in results):
        lines.append(
            f"[WARN] {fallbacks} of {len(results)} task(s) ended without a report of the agent's (graded "
            "on an empty fallback report, or none when the step budget ran out): their scores are not the "
            "agent's work"
        )
    if failed := sum(r.report().startswith("FAILED") for r in results):
        lines.append(
            f"[WARN] {failed} of {len(results)} task(s) failed before a report was graded (the [ERROR] "
            "lines above): they score 0"
        )
    if refused:
        lines.append(f"[WARN] {refused} tool call(s) were refused without a step (the [REFUSED] lines above)")
    return "\n".join(lines)


def show_progress(done: int, total: int, mean_score: float) -> None:
    """A progress bar on stderr (stdout carries only the log lines)."""
    filled = 30 * done // total
    print(
        f"\r[{'#' * filled}{'.' * (30 - filled)}] {done}/{total} episodes, mean score {mean_score:.3f}",
        end="\n" if done == total else "",
        file=sys.stderr,
        flush=True,
    )
