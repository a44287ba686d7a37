"""Baseline inference for metric_tracker_rl: runs the named tasks and prints the hackathon log format.

With an API key (API_KEY, then HF_TOKEN, then OPENAI_API_KEY), or with API_BASE_URL or MODEL_NAME set (a local
endpoint such as vLLM needs no key), an OpenAI tool-calling model investigates each task with the environment's
analysis tools; with none of them the deterministic `scripted` agent runs, so a fresh checkout completes offline.
A model that was asked for and could not be used (unreachable, an HTTP error) is an error: its tasks' fallback
report carries the error on stdout and the run exits 1. The environment is reached only over the WebSocket API:
METRIC_TRACKER_URL, else a Docker image (LOCAL_IMAGE_NAME / IMAGE_NAME), else a server this process runs itself
and stops at exit. Every variable: docs/settings.md.

Stdout carries only the [START] / [STEP] / [END] lines (`metric_tracker_rl.adapters.baseline_log`); diagnostics go
to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

# Only light modules here: the arguments are parsed and checked before the client, the agents, the model API and the
# server are imported (OpenEnv brings in gradio: most of a start-up), so --help and a usage error answer at once.
from metric_tracker_rl.adapters.inference_args import EpisodeSpec, parse_args, success_threshold
from metric_tracker_rl.settings import ClientSettings, SettingsError

if TYPE_CHECKING:
    from metric_tracker_rl.adapters.baseline_log import TaskResult
    from metric_tracker_rl.adapters.transcript import TaskRun

Policy = Callable[[Any, "TaskRun", dict[str, Any]], None]


def note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def agent_policy(name: str) -> Policy:
    """A registered Agent (scripted, expert, ...) driven through run_episode over the WebSocket client."""
    from metric_tracker_rl.agents import make_agent, run_episode

    def solve(env: Any, run: TaskRun, reset_kwargs: dict[str, Any]) -> None:
        run_episode(make_agent(name), partial(run.reset, env), partial(run.act, env), **reset_kwargs)

    return solve


def run_task(
    episode: EpisodeSpec,
    url: str | None,
    startup_error: str | None,
    policy: Policy,
    agent: str,
    model_label: str,
    trajectory: IO[str] | None,
    settings: ClientSettings,
    transcripts: Path | None = None,
) -> TaskResult:
    """One episode, start to finish. [START] and [END] are printed whatever happens in between; with a trajectory
    file, the episode's record is appended to it; with a transcripts folder, its replay record is written there."""
    from metric_tracker_rl import MetricTrackerRlEnv
    from metric_tracker_rl.adapters.baseline_log import (
        TaskResult,
        log_end,
        log_refused,
        log_start,
        one_line,
        open_interval,
    )
    from metric_tracker_rl.adapters.transcript import TaskRun, replay_record
    from metric_tracker_rl.reconnect import reset_until_served

    log_start(episode.label, model_label)
    started, error, fallback = time.monotonic(), None, None
    run = TaskRun(episode.label, on_refused=partial(log_refused, episode.label))
    run.on_step = partial(log_step_of, run)
    with contextlib.ExitStack() as stack:
        try:
            if url is None:
                raise RuntimeError(startup_error or "no environment server")
            env = MetricTrackerRlEnv(
                base_url=url,
                connect_timeout_s=settings.connect_timeout_s,
                message_timeout_s=settings.message_timeout_s,
                resume_sessions=settings.resume_sessions,
            ).sync()
            stack.callback(close_quietly, env)
            reset_until_served(env.connect, env.disconnect, url, deadline_s=settings.retry_deadline_s)
            policy(env, run, dict(episode.reset_kwargs))
            fallback = settle_without_report(run, env, policy)
        except Exception as exc:  # noqa: BLE001 - any failure ends this task, never the run
            error = f"{type(exc).__name__}: {one_line(str(exc))[:500]}"
            note(f"[ERROR] task={episode.label} {error}")
        finally:
            success = run.graded is not None and run.score >= success_threshold(episode, settings)
            log_end(success, run.steps, run.score, run.rewards)
            if trajectory is not None and run.observation is not None:
                trajectory.write(json.dumps(run.record(agent, model_label, episode.reset_kwargs, error)) + "\n")
                trajectory.flush()
            if transcripts is not None and run.observation is not None and run.session.started:
                record = replay_record(run, episode.reset_kwargs)
                (transcripts / f"{episode.label}.json").write_text(
                    json.dumps(record, indent=1) + "\n", encoding="utf-8"
                )
    breakdown = run.graded.reward_breakdown if run.graded is not None else None
    return TaskResult(
        episode.label,
        episode.reset_kwargs.get("seed"),
        run.score,
        round(open_interval(run.score), 2),
        success,
        run.steps,
        run.rewards,
        round(time.monotonic() - started, 2),
        error,
        getattr(policy, "last_error", None),
        breakdown.model_dump() if breakdown else None,
        fallback,
        refused_calls=list(run.refused),
        graded=run.graded is not None,
    )


def settle_without_report(run: TaskRun, env: Any, policy: Policy) -> str | None:
    """Why the agent's episode ended without a graded report, None when it has one. While the episode is open, an
    empty report is submitted so that the task is graded (its [STEP] says why); once its step budget is spent,
    nothing can be submitted and the task scores what the episode scored. Either way a warning says so."""
    from metric_tracker_rl import MetricTrackerRlAction
    from metric_tracker_rl.adapters.baseline_log import log_fallback

    if run.observation is None or run.graded is not None:
        return None
    if run.done:
        reason = budget_spent(run.steps)
        note(
            f"[WARN] task={run.label} {reason}; nothing can be submitted any more, so the task is scored "
            "without a report"
        )
        return reason
    reason = fallback_reason(policy)
    note(
        f"[WARN] task={run.label} {reason}: an empty report is submitted so that the task is graded, and its "
        "score is not the agent's work"
    )
    run.on_step = partial(log_fallback, reason)  # the fallback's [STEP] says why
    run.act(env, MetricTrackerRlAction(classifications=[]))
    return reason


def budget_spent(steps: int) -> str:
    return f"no report: the episode's step budget ran out after {steps} steps"


def log_step_of(run: TaskRun, step: int, action: Any, reward: float, done: bool, error: str | None) -> None:
    """A step's [STEP] line; the step that spends the budget before any report was graded says so in its error
    field, so that stdout shows the task ends without a report."""
    from metric_tracker_rl.adapters.baseline_log import log_action

    if done and error is None and run.graded is None:
        error = budget_spent(step)
    log_action(step, action, reward, done, error)


def fallback_reason(policy: Policy) -> str:
    """Why an agent ended a task without a graded report: the model's error, or its turns running out."""
    if model_error := getattr(policy, "last_error", None):
        return f"model error: {model_error}"
    taken, limit = getattr(policy, "turns", (0, 0))
    if limit and taken >= limit:
        return f"no report after {limit} model turns (MAX_TOOL_ROUNDS allows more)"
    return "the agent stopped without a report"


def close_quietly(env: Any) -> None:
    """Closing a client whose server is gone must not turn a finished task into a crash."""
    try:
        env.close()
    except Exception as exc:  # noqa: BLE001
        note(f"[WARN] closing the environment client failed: {exc}")


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@dataclass
class Run:
    """What every episode of the run shares: the agent, where the output goes, and the environment's URL (None
    while it is unavailable, `startup_error` saying why)."""

    args: argparse.Namespace
    settings: ClientSettings
    policy: Policy
    model_label: str
    trajectory: IO[str] | None = None
    url: str | None = None
    startup_error: str | None = None
    interrupted: bool = False


def main(argv: list[str] | None = None) -> int:
    try:
        settings = ClientSettings.load()
    except SettingsError as exc:
        note(f"error: {exc}")
        return 2
    args = parse_args(argv, settings)
    from metric_tracker_rl.adapters.baseline_log import summary_table

    signal.signal(signal.SIGTERM, _terminate)  # so a SIGTERM also stops the local server cleanly
    run = Run(args, settings, *chosen_policy(args.agent, settings))
    note(f"[INFO] agent={args.agent} model={run.model_label} episodes={len(args.episode_specs)}")
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        open_outputs(run, stack)
        start_environment(run, stack)
        results = play_episodes(run)
    note(summary_table(results))
    if args.output is not None:
        write_results(run, results, time.monotonic() - started)
    if run.interrupted:
        return 130
    return 1 if any(r.error or r.model_error for r in results) else 0


def chosen_policy(agent: str, settings: ClientSettings) -> tuple[Policy, str]:
    """The agent's policy and the name the log gives it (the model's, for llm)."""
    if agent != "llm":
        return agent_policy(agent), agent
    from metric_tracker_rl.agents.llm import LlmPolicy, openai_client

    return LlmPolicy(openai_client(settings), settings), settings.model_name


def open_outputs(run: Run, stack: contextlib.ExitStack) -> None:
    """The trajectory file and the transcripts folder, when asked for."""
    args = run.args
    if args.trajectories is not None:
        args.trajectories.mkdir(parents=True, exist_ok=True)
        path = args.trajectories / f"{args.agent}.jsonl"
        run.trajectory = stack.enter_context(open(path, "w", encoding="utf-8"))  # noqa: SIM115 - the stack closes it
        note(f"[INFO] writing trajectories to {path}")
    if args.transcripts is not None:
        args.transcripts.mkdir(parents=True, exist_ok=True)
        note(f"[INFO] writing transcripts to {args.transcripts}")


def start_environment(run: Run, stack: contextlib.ExitStack) -> None:
    """The environment's URL (a server this process starts, stopped when `stack` closes), or why there is none."""
    from metric_tracker_rl.adapters.baseline_log import one_line
    from metric_tracker_rl.serving.local_server import environment_server

    try:
        run.url = stack.enter_context(environment_server(run.settings, port=run.args.port))
    except KeyboardInterrupt:
        note("[WARN] interrupted while starting the environment; every task is skipped")
        run.interrupted = True
    except Exception as exc:  # noqa: BLE001 - reported per task
        run.startup_error = f"environment unavailable: {one_line(str(exc))[:500]}"
        note(f"[ERROR] {run.startup_error}")


def play_episodes(run: Run) -> list[TaskResult]:
    """Every episode in turn; after an interruption the rest print [START] and [END] only."""
    from metric_tracker_rl.adapters.baseline_log import log_end, log_start, show_progress
    from metric_tracker_rl.reconnect import ServerUnavailable

    args, results = run.args, []
    for episode in args.episode_specs:
        if run.interrupted:
            log_start(episode.label, run.model_label)
            log_end(False, 0, 0.0, [])
            continue
        try:
            result = run_task(
                episode,
                run.url,
                run.startup_error,
                run.policy,
                args.agent,
                run.model_label,
                run.trajectory,
                run.settings,
                args.transcripts,
            )
            results.append(result)
            if result.error and result.error.startswith(ServerUnavailable.__name__):  # no second wait per task
                run.url, run.startup_error = None, f"environment unavailable: {result.error}"
        except KeyboardInterrupt:
            note(f"[WARN] interrupted during {episode.label}; the remaining tasks are skipped")
            run.interrupted = True
        if args.episodes is not None and results:
            show_progress(len(results), len(args.episode_specs), sum(r.score for r in results) / len(results))
    return results


def write_results(run: Run, results: list[TaskResult], seconds: float) -> None:
    from metric_tracker_rl.adapters.baseline_log import BENCHMARK

    args = run.args
    payload = {
        "env": BENCHMARK,
        "agent": args.agent,
        "model": run.model_label,
        "seed": args.seed,
        "interrupted": run.interrupted,
        "seconds": round(seconds, 2),
        "mean_score": sum(r.score for r in results) / len(results) if results else 0.0,
        "tasks": [asdict(r) for r in results],
    }
    args.output.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    note(f"[INFO] wrote {args.output}")


if __name__ == "__main__":
    sys.exit(main())
