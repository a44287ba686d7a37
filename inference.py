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
from metric_tracker_rl import DEFAULT_TASK_ORDER, get_task_spec
from metric_tracker_rl.catalog.published import DIFFICULTIES
from metric_tracker_rl.catalog.task_splits import TRAIN_SEED_BASE, get_split
from metric_tracker_rl.catalog.tasks import (
    DIAL_KNOBS,
    MAGNITUDE_SCALE_RANGE,
    MAX_CONCURRENCY,
    MAX_CUBOID_DEPTH,
    MAX_DECOY_RATIO,
    knob_value,
    resolve_episode_config,
)
from metric_tracker_rl.catalog.validation import check_name_in_any_case
from metric_tracker_rl.settings import DEFAULT_API_BASE_URL, ClientSettings, SettingsError

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


@dataclass(frozen=True)
class EpisodeSpec:
    """One episode to run: its label in the log and its reset settings."""

    label: str
    reset_kwargs: dict[str, Any]


def named_episodes(task_ids: list[str], seed: int | None) -> list[EpisodeSpec]:
    return [EpisodeSpec(t, {"task_id": t} if seed is None else {"task_id": t, "seed": seed}) for t in task_ids]


def training_episodes(count: int, first_task: int, difficulties: tuple[str, ...] | None = None) -> list[EpisodeSpec]:
    """`count` tasks of the Task API's train split (an SFT data set) from task `first_task` on: every one, or only
    those at `difficulties`. A ValueError says when the split holds fewer."""
    split = get_split("train")
    tasks = []
    for index in range(first_task, split.size()):
        if len(tasks) == count:
            break
        task = split.task(index)
        if difficulties is None or task["difficulty"] in difficulties:
            tasks.append(task)
    if len(tasks) < count:
        where = f" at {', '.join(difficulties)}" if difficulties else ""
        raise ValueError(f"the train split holds {len(tasks)} task(s){where} from task {first_task} on, not "
                         f"{count}: lower --episodes or --first-task")
    return [EpisodeSpec(f"seed{task['seed']}_{task['difficulty']}", task) for task in tasks]


def with_knobs(episodes: list[EpisodeSpec], knobs: dict[str, Any]) -> list[EpisodeSpec]:
    """Each episode with the dial knobs set (its episodes are then not standard), checked as reset checks them: a
    ValueError names the episode, the knob and what it takes."""
    episodes = [EpisodeSpec(e.label, {**e.reset_kwargs, **knobs}) for e in episodes]
    for episode in episodes:
        try:
            resolve_episode_config(**episode.reset_kwargs)
        except ValueError as exc:
            raise ValueError(f"{episode.label}: {exc}") from None
    return episodes


def run_task(episode: EpisodeSpec, url: str | None, startup_error: str | None, policy: Policy, agent: str,
             model_label: str, trajectory: IO[str] | None, settings: ClientSettings,
             transcripts: Path | None = None) -> TaskResult:
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
            env = MetricTrackerRlEnv(base_url=url, connect_timeout_s=settings.connect_timeout_s,
                                     message_timeout_s=settings.message_timeout_s,
                                     resume_sessions=settings.resume_sessions).sync()
            stack.callback(close_quietly, env)
            reset_until_served(env.connect, env.disconnect, url, deadline_s=settings.retry_deadline_s)
            policy(env, run, dict(episode.reset_kwargs))
            fallback = settle_without_report(run, env, policy)
        except Exception as exc:  # noqa: BLE001 - any failure ends this task, never the run
            error = f"{type(exc).__name__}: {one_line(str(exc))[:500]}"
            note(f"[ERROR] task={episode.label} {error}")
        finally:
            success = run.graded is not None and run.score >= settings.success_threshold
            log_end(success, run.steps, run.score, run.rewards)
            if trajectory is not None and run.observation is not None:
                trajectory.write(json.dumps(run.record(agent, model_label, episode.reset_kwargs, error)) + "\n")
                trajectory.flush()
            if transcripts is not None and run.observation is not None and run.session.started:
                record = replay_record(run, episode.reset_kwargs)
                (transcripts / f"{episode.label}.json").write_text(json.dumps(record, indent=1) + "\n",
                                                                   encoding="utf-8")
    breakdown = run.graded.reward_breakdown if run.graded is not None else None
    return TaskResult(episode.label, episode.reset_kwargs.get("seed"), run.score, round(open_interval(run.score), 2),
                      success, run.steps, run.rewards, round(time.monotonic() - started, 2), error,
                      getattr(policy, "last_error", None), breakdown.model_dump() if breakdown else None, fallback,
                      refused_calls=list(run.refused))


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
        note(f"[WARN] task={run.label} {reason}; nothing can be submitted any more, so the task is scored "
             "without a report")
        return reason
    reason = fallback_reason(policy)
    note(f"[WARN] task={run.label} {reason}: an empty report is submitted so that the task is graded, and its "
         "score is not the agent's work")
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


def settings_help() -> str:
    lines = [f"  {' / '.join(field.validation_alias.choices):<44} {field.description}"
             for name, field in ClientSettings.model_fields.items() if name != "reset_defaults"]
    return "environment variables (docs/settings.md):\n" + "\n".join(lines)


def parse_args(argv: list[str] | None, settings: ClientSettings) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run the metric_tracker_rl baseline on the named tasks.",
                                     epilog=settings_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agent", default=None, help="llm, scripted or expert (any registered agent name works); "
                        "default: llm when an API key is set, else scripted")
    parser.add_argument("--tasks", default=None,
                        help=f"comma-separated task ids (default: every named task, {','.join(DEFAULT_TASK_ORDER)}, "
                             "or those at --difficulty)")
    parser.add_argument("--difficulty", default=None,
                        help=f"comma-separated difficulties ({', '.join(DIFFICULTIES)}): the named tasks at them, or "
                             "with --episodes the train split's tasks at them")
    knobs = parser.add_argument_group("dial knobs", "reset's arguments of the same names, set on every episode "
                                      "played (the episodes are then not standard); reset refuses a knob at a tier "
                                      "where it does not apply")
    knobs.add_argument("--incident-kinds", dest="incident_kinds", metavar="A,B",
                       help="comma-separated incident kinds the episodes draw from (segmented tiers; default: all)")
    knobs.add_argument("--decoy-ratio", dest="decoy_ratio", metavar="FLOAT",
                       help=f"benign look-alikes per incident, 0 to {MAX_DECOY_RATIO:g} (segmented tiers)")
    knobs.add_argument("--dimensions", dest="dimensions", metavar="A,B",
                       help="comma-separated dimensions a root cause may name, platform among them (cuboid tiers)")
    knobs.add_argument("--max-cuboid-depth", dest="max_cuboid_depth", metavar="INT",
                       help=f"the most dimensions a root cause names, 1 to {MAX_CUBOID_DEPTH} (cuboid tiers)")
    knobs.add_argument("--magnitude-scale", dest="magnitude_scale", metavar="FLOAT",
                       help=f"every incident kind's magnitude range times this, {MAGNITUDE_SCALE_RANGE[0]:g} to "
                            f"{MAGNITUDE_SCALE_RANGE[1]:g} (cuboid tiers)")
    knobs.add_argument("--concurrency", dest="concurrency", metavar="INT",
                       help=f"dates carrying a second incident in an overlapping cuboid, 0 to {MAX_CONCURRENCY} "
                            "(cuboid tiers)")
    knobs.add_argument("--note-share", dest="note_share", metavar="FLOAT",
                       help="the share of partner payment failures with a partner_status notice, 0 to 1 "
                            "(tiers with context tables)")
    parser.add_argument("--seed", type=int, default=None, help="override the seed of every task")
    parser.add_argument("--port", type=int, default=0, help="the loopback port of the server this run starts, in "
                        "this process or in a container (default: a free one); ignored with METRIC_TRACKER_URL")
    parser.add_argument("--output", type=Path, default=None, help="write the results as JSON to this file")
    parser.add_argument("--trajectories", type=Path, default=None,
                        help="directory for <agent>.jsonl: one SFT-ready chat record per episode")
    parser.add_argument("--transcripts", type=Path, default=None,
                        help="directory for <task>.json: each episode's calls and the texts read, which "
                             "`python -m lab.calibration.replay DIR` replays")
    parser.add_argument("--episodes", type=int, default=None, help="run this many tasks of the Task API's train "
                        "split instead of the named tasks, with a progress bar")
    parser.add_argument("--first-task", type=int, default=None,
                        help=f"with --episodes, the train split's first task (default 0; --seed {TRAIN_SEED_BASE} "
                             "+ N means task N)")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be between 0 (a free port) and 65535, not {args.port}")
    try:
        difficulties = None if args.difficulty is None else tuple(
            check_name_in_any_case("difficulty", name.strip(), DIFFICULTIES)
            for name in args.difficulty.split(",") if name.strip())
        if difficulties == ():
            raise ValueError(f"--difficulty names no difficulty; valid: {', '.join(DIFFICULTIES)}")
        args.task_ids = task_ids(args.tasks, difficulties)
        knobs = {name: knob_value(name, getattr(args, name)) for name in DIAL_KNOBS if getattr(args, name) is not None}
    except ValueError as exc:
        parser.error(str(exc))
    if args.episodes is not None:
        if args.tasks is not None:
            parser.error("--episodes plays the train split's tasks instead of named ones: drop --tasks")
        if args.episodes < 1:
            parser.error("--episodes must be at least 1")
        first = args.first_task if args.first_task is not None else (args.seed or TRAIN_SEED_BASE) - TRAIN_SEED_BASE
        if first < 0 or first + args.episodes > get_split("train").size():
            parser.error(f"--episodes takes tasks 0 to {get_split('train').size() - 1} of the train split: set "
                         f"--first-task (or --seed from {TRAIN_SEED_BASE})")
        try:
            episodes = training_episodes(args.episodes, first, difficulties)
        except ValueError as exc:
            parser.error(str(exc))
    else:
        episodes = named_episodes(args.task_ids, args.seed)
    try:
        args.episode_specs = with_knobs(episodes, knobs) if knobs else episodes
    except ValueError as exc:
        parser.error(str(exc))
    args.agent = args.agent or ("llm" if settings.model_requested() else "scripted")
    if args.agent == "llm" and not settings.api_key and settings.api_base_url == DEFAULT_API_BASE_URL:
        parser.error(f"--agent llm needs a key in API_KEY, HF_TOKEN or OPENAI_API_KEY for {DEFAULT_API_BASE_URL}; "
                     "a local endpoint needs none: set API_BASE_URL (e.g. http://127.0.0.1:8001/v1) and MODEL_NAME")
    if args.agent != "llm":
        from metric_tracker_rl.agents import AGENTS  # importing the registry imports every agent: checked last

        if args.agent not in AGENTS:
            parser.error(f"agent {args.agent!r} is not available in this checkout; valid: llm, {', '.join(AGENTS)}")
    return args


def task_ids(tasks: str | None, difficulties: tuple[str, ...] | None) -> list[str]:
    """The named tasks to play: those `tasks` lists (each at one of `difficulties`, when given), else every named
    task (at `difficulties`, when given). A ValueError names the valid choices."""
    if tasks is None:
        chosen = [task_id for task_id in DEFAULT_TASK_ORDER
                  if difficulties is None or get_task_spec(task_id).difficulty in difficulties]
        if not chosen:  # a difficulty with no named task
            raise ValueError(f"no named task at {', '.join(difficulties or ())}: use --episodes for its train tasks")
        return chosen
    chosen = [get_task_spec(name.strip()).task_id for name in tasks.split(",") if name.strip()]
    for task_id in chosen:
        difficulty = get_task_spec(task_id).difficulty
        if difficulties is not None and difficulty not in difficulties:
            raise ValueError(f"task {task_id} is at difficulty {difficulty}, not {', '.join(difficulties)}: drop "
                             "--difficulty, or name its tasks")
    return chosen


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    try:
        settings = ClientSettings.load()
    except SettingsError as exc:
        note(f"error: {exc}")
        return 2
    args = parse_args(argv, settings)
    from metric_tracker_rl.adapters.baseline_log import (
        BENCHMARK,
        log_end,
        log_start,
        one_line,
        show_progress,
        summary_table,
    )
    from metric_tracker_rl.agents.llm import LlmPolicy, openai_client
    from metric_tracker_rl.reconnect import ServerUnavailable
    from metric_tracker_rl.serving.local_server import environment_server

    signal.signal(signal.SIGTERM, _terminate)  # so a SIGTERM also stops the local server cleanly
    if args.agent == "llm":
        policy: Policy = LlmPolicy(openai_client(settings), settings)
        model_label = settings.model_name
    else:
        policy, model_label = agent_policy(args.agent), args.agent
    note(f"[INFO] agent={args.agent} model={model_label} episodes={len(args.episode_specs)}")
    started, results, interrupted = time.monotonic(), [], False
    with contextlib.ExitStack() as stack:
        trajectory = None
        if args.trajectories is not None:
            args.trajectories.mkdir(parents=True, exist_ok=True)
            path = args.trajectories / f"{args.agent}.jsonl"
            trajectory = stack.enter_context(open(path, "w", encoding="utf-8"))
            note(f"[INFO] writing trajectories to {path}")
        if args.transcripts is not None:
            args.transcripts.mkdir(parents=True, exist_ok=True)
            note(f"[INFO] writing transcripts to {args.transcripts}")
        url: str | None = None
        startup_error: str | None = None
        try:
            url = stack.enter_context(environment_server(settings, port=args.port))
        except KeyboardInterrupt:
            note("[WARN] interrupted while starting the environment; every task is skipped")
            interrupted = True
        except Exception as exc:  # noqa: BLE001 - reported per task below
            startup_error = f"environment unavailable: {one_line(str(exc))[:500]}"
            note(f"[ERROR] {startup_error}")
        for episode in args.episode_specs:
            if interrupted:
                log_start(episode.label, model_label)
                log_end(False, 0, 0.0, [])
                continue
            try:
                result = run_task(episode, url, startup_error, policy, args.agent, model_label, trajectory, settings,
                                  args.transcripts)
                results.append(result)
                if result.error and result.error.startswith(ServerUnavailable.__name__):
                    url, startup_error = None, f"environment unavailable: {result.error}"  # no second wait per task
            except KeyboardInterrupt:
                note(f"[WARN] interrupted during {episode.label}; the remaining tasks are skipped")
                interrupted = True
            if args.episodes is not None and results:
                show_progress(len(results), len(args.episode_specs), sum(r.score for r in results) / len(results))
    note(summary_table(results))
    if args.output is not None:
        payload = {"env": BENCHMARK, "agent": args.agent, "model": model_label, "seed": args.seed,
                   "interrupted": interrupted, "seconds": round(time.monotonic() - started, 2),
                   "mean_score": sum(r.score for r in results) / len(results) if results else 0.0,
                   "tasks": [asdict(r) for r in results]}
        args.output.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        note(f"[INFO] wrote {args.output}")
    if interrupted:
        return 130
    return 1 if any(r.error or r.model_error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
