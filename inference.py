"""Baseline inference for metric_tracker_rl: runs the named tasks and prints the hackathon log format.

With an API key (API_KEY, then HF_TOKEN, then OPENAI_API_KEY), or with API_BASE_URL or MODEL_NAME set (a local
endpoint such as vLLM needs no key), an OpenAI tool-calling model investigates each task with the environment's
analysis tools; with none of them the deterministic `scripted` agent runs, so a fresh checkout completes offline.
A model that was asked for and could not be used (unreachable, an HTTP error) is an error: its tasks' fallback
report carries the error on stdout and the run exits 1. The environment is reached only over the WebSocket API:
BASE_URL, else a Docker image (LOCAL_IMAGE_NAME / IMAGE_NAME), else a server this process runs itself and stops at
exit.

Stdout carries only the [START] / [STEP] / [END] lines; every diagnostic goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any

from openai import APIConnectionError, APIStatusError, OpenAI, OpenAIError

from metric_tracker_rl import (
    DEFAULT_TASK_ORDER,
    MetricTrackerRlAction,
    MetricTrackerRlEnv,
    get_task_spec,
)
from metric_tracker_rl.agents import AGENTS, make_agent, run_episode
from metric_tracker_rl.catalog import DIFFICULTIES
from metric_tracker_rl.reconnect import ServerUnavailable, reset_until_served
from metric_tracker_rl.tool_calls import (
    SUBMIT_GENERATORS,
    SUBMIT_REPORT,
    action_tool_call,
    openai_tools,
    render_observation,
    tool_action,
)
from metric_tracker_rl.transcript import TaskRun


def _env(name: str, default: str | None = None) -> str | None:
    """An environment variable, with empty or blank values treated as unset."""
    value = (os.getenv(name) or "").strip()
    return value or default


ROOT = Path(__file__).resolve().parent
BENCHMARK = "metric_tracker_rl"
DEFAULT_API_BASE_URL = "https://router.huggingface.co/v1"
API_BASE_URL = _env("API_BASE_URL", DEFAULT_API_BASE_URL)
DEFAULT_MODEL_NAME = "Qwen/Qwen2.5-72B-Instruct"
MODEL_NAME = _env("MODEL_NAME", DEFAULT_MODEL_NAME)
API_KEY = _env("API_KEY") or _env("HF_TOKEN") or _env("OPENAI_API_KEY")
# A model is asked for by a key, or by naming an endpoint or a model: a local endpoint needs no key.
MODEL_REQUESTED = bool(_env("API_BASE_URL") or _env("MODEL_NAME"))
NO_KEY = "none"  # what the OpenAI client sends when no key is set: an endpoint without authentication ignores it
BASE_URL = _env("BASE_URL")
IMAGE_NAME = _env("LOCAL_IMAGE_NAME") or _env("IMAGE_NAME")
TEMPERATURE = float(_env("TEMPERATURE", "0"))
MAX_TOKENS = int(_env("MAX_TOKENS", "1500"))
MAX_TOOL_ROUNDS = int(_env("MAX_TOOL_ROUNDS", "16"))
MODEL_TIMEOUT_S = float(_env("MODEL_TIMEOUT_S", "120"))
MODEL_MAX_RETRIES = int(_env("MODEL_MAX_RETRIES", "2"))
CONNECT_TIMEOUT_S = float(_env("OPENENV_CONNECT_TIMEOUT_S", "30"))
MESSAGE_TIMEOUT_S = float(_env("OPENENV_MESSAGE_TIMEOUT_S", "180"))
SERVER_START_TIMEOUT_S = float(_env("SERVER_START_TIMEOUT_S", "120"))
SUCCESS_THRESHOLD = float(_env("SUCCESS_THRESHOLD", "0.95"))
ACTION_CHARS = 220
# HTTP statuses after which further model calls cannot succeed in this run.
FATAL_MODEL_STATUSES = {401: "the API key was rejected", 402: "the provider's credits are exhausted",
                        403: "the key may not use this model or endpoint", 404: "the model or endpoint was not found"}

def note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the hackathon log format ----------------------------------------------------------------------


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def open_interval(value: float) -> float:
    """Published scores and rewards are clamped so that, at two decimals, they lie strictly inside (0, 1)."""
    return min(0.99, max(0.01, value))


def format_action(name: str, arguments: dict[str, Any]) -> str:
    """`name(json)` on one line without whitespace, clipped: the `action=` field of a [STEP] line."""
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


def log_fallback(model_error: str, step: int, action: MetricTrackerRlAction, reward: float, done: bool,
                 error: str | None) -> None:
    """The empty report submitted for a model that failed, logged with the model's error."""
    log_action(step, action, reward, done, error or f"model error: {model_error}")


def log_action(step: int, action: MetricTrackerRlAction, reward: float, done: bool, error: str | None) -> None:
    log_step(step, format_action(*action_tool_call(action)), reward, done, error)


Policy = Callable[[Any, TaskRun, dict[str, Any]], None]


def agent_policy(name: str) -> Policy:
    """A registered Agent (scripted, expert, ...) driven through run_episode over the WebSocket client."""
    def solve(env: Any, run: TaskRun, reset_kwargs: dict[str, Any]) -> None:
        run_episode(make_agent(name), partial(run.reset, env), partial(run.act, env), **reset_kwargs)
    return solve


# --- the model: tools, prompt and the tool-calling loop --------------------------------------------

def tool_definitions() -> list[dict[str, Any]]:
    """The OpenAI tools offered to the model: the registry's tools and the two submission tools."""
    return openai_tools()


class ModelError(Exception):
    def __init__(self, message: str, fatal: bool) -> None:
        super().__init__(message)
        self.fatal = fatal


def describe_status_error(exc: APIStatusError) -> str:
    reason = FATAL_MODEL_STATUSES.get(exc.status_code, "the request failed")
    hints = {401: "check API_KEY / HF_TOKEN / OPENAI_API_KEY",
             402: "add credits, or switch API_BASE_URL / MODEL_NAME / the key",
             403: "check the key's permissions", 404: "check API_BASE_URL and MODEL_NAME"}
    hint = hints.get(exc.status_code, "retry later or switch provider")
    return (f"model call to {API_BASE_URL} failed with HTTP {exc.status_code} ({reason}; {hint}): "
            f"{one_line(exc.message)[:300]}")


class LlmPolicy:
    """An OpenAI tool-calling loop over the tool registry plus the two submit tools."""

    def __init__(self, client: OpenAI) -> None:
        self.client = client
        self.tools = tool_definitions()
        self.tool_names = [t["function"]["name"] for t in self.tools]
        self.disabled: str | None = None  # set after an error that no later call can get past
        self.last_error: str | None = None

    def __call__(self, env: Any, run: TaskRun, reset_kwargs: dict[str, Any]) -> None:
        self.last_error = None
        run.reset(env, **reset_kwargs)
        if self.disabled:
            self.last_error = f"model disabled after an earlier error: {self.disabled}"
            note(f"[WARN] task={run.label} {self.last_error}")
            return
        try:
            self.converse(env, run, run.messages)
        except ModelError as exc:
            self.last_error = str(exc)
            note(f"[ERROR] task={run.label} {exc}")
            if exc.fatal:
                self.disabled = str(exc)

    def converse(self, env: Any, run: TaskRun, messages: list[dict[str, Any]]) -> None:
        for _ in range(MAX_TOOL_ROUNDS):
            if run.done or run.graded is not None:
                return
            message = self.complete(messages)
            calls = message.tool_calls or []
            turn: dict[str, Any] = {"role": "assistant", "content": message.content or ""}
            if calls:
                turn["tool_calls"] = [{"id": c.id, "type": "function",
                                       "function": {"name": c.function.name, "arguments": c.function.arguments}}
                                      for c in calls]
            messages.append(turn)
            if not calls:
                messages.append({"role": "user", "content": "Continue with tool calls; finish with "
                                                            f"{SUBMIT_REPORT} or {SUBMIT_GENERATORS}."})
                continue
            for call in calls:
                if run.done or run.graded is not None:
                    content = "skipped: the report has already been graded"
                else:
                    content = self.execute(env, run, call.function.name, call.function.arguments)
                messages.append({"role": "tool", "tool_call_id": call.id, "name": call.function.name,
                                 "content": content})

    def complete(self, messages: list[dict[str, Any]]) -> Any:
        try:
            completion = self.client.chat.completions.create(
                model=MODEL_NAME, messages=messages, tools=self.tools, tool_choice="auto",
                temperature=TEMPERATURE, max_tokens=MAX_TOKENS)
        except APIStatusError as exc:
            raise ModelError(describe_status_error(exc), fatal=exc.status_code in FATAL_MODEL_STATUSES) from exc
        except APIConnectionError as exc:
            raise ModelError(f"could not reach the model at {API_BASE_URL}: {exc}", fatal=False) from exc
        except OpenAIError as exc:
            raise ModelError(f"model call failed: {one_line(str(exc))[:300]}", fatal=False) from exc
        if not completion.choices:
            raise ModelError("the model returned no choices", fatal=False)
        return completion.choices[0].message

    def execute(self, env: Any, run: TaskRun, name: str, raw_arguments: str | None) -> str:
        """Run one tool call; mistakes come back to the model as text and never cost an env step."""
        action = tool_action(name, raw_arguments)
        if isinstance(action, str):
            return action
        return render_observation(run.step(env, action).observation)


# --- the environment server ------------------------------------------------------------------------


@contextlib.contextmanager
def local_server() -> Iterator[str]:
    """The environment served from this process on a free loopback port, in standard mode (never debug, no
    debugger), stopped on exit. A second interpreter would pay OpenEnv's import (gradio, fastmcp: most of a
    start-up) again; here the client's import already paid it. Uvicorn runs in a thread with its own loop."""
    import socket
    import threading

    import uvicorn

    sys.path.insert(0, str(ROOT))  # the repository's server package, next to this script
    from metric_tracker_rl.server.app import build_app, websocket_options

    with temporary_environment(ENABLE_WEB_INTERFACE="false", METRIC_TRACKER_DEBUG=""):
        app = build_app()
    listener = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", **websocket_options()))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, name="environment-server",
                              daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the in-process server did not start within {SERVER_START_TIMEOUT_S:.0f} s")
            time.sleep(0.02)
        note(f"[INFO] started local server in this process url={url}")
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listener.close()
        note(f"[INFO] stopped local server url={url}")


@contextlib.contextmanager
def temporary_environment(**settings: str) -> Iterator[None]:
    """Environment variables set while the app is built (it reads its settings then), restored after."""
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def docker_server(image: str) -> Iterator[str]:
    from openenv.core.containers.runtime.providers import LocalDockerProvider

    try:
        provider = LocalDockerProvider()
    except RuntimeError as exc:
        raise RuntimeError(f"cannot start image {image!r}: {exc} Set BASE_URL to use a running server, or unset "
                           "LOCAL_IMAGE_NAME / IMAGE_NAME to start a local server process.") from exc
    try:
        url = provider.start_container(image)
        note(f"[INFO] started container from {image} at {url}")
        provider.wait_for_ready(url, timeout_s=SERVER_START_TIMEOUT_S)
        yield url
    finally:
        provider.stop_container()


def environment_server() -> contextlib.AbstractContextManager[str]:
    if BASE_URL:
        return contextlib.nullcontext(BASE_URL.rstrip("/"))
    if IMAGE_NAME:
        return docker_server(IMAGE_NAME)
    return local_server()


# --- the run -------------------------------------------------------------------------------------


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


def close_quietly(env: Any) -> None:
    """Closing a client whose server is gone must not turn a finished task into a crash."""
    try:
        env.close()
    except Exception as exc:  # noqa: BLE001
        note(f"[WARN] closing the environment client failed: {exc}")


@dataclass(frozen=True)
class EpisodeSpec:
    """One episode to run: its label in the log and its reset settings."""

    label: str
    reset_kwargs: dict[str, Any]


def named_episodes(task_ids: list[str], seed: int | None) -> list[EpisodeSpec]:
    return [EpisodeSpec(t, {"task_id": t} if seed is None else {"task_id": t, "seed": seed}) for t in task_ids]


def seeded_episodes(count: int, first_seed: int) -> list[EpisodeSpec]:
    """`count` generated episodes, seeds from `first_seed` on, difficulties in turn (a training data set)."""
    episodes = []
    for index in range(count):
        seed, difficulty = first_seed + index, DIFFICULTIES[index % len(DIFFICULTIES)]
        episodes.append(EpisodeSpec(f"seed{seed}_{difficulty}", {"seed": seed, "difficulty": difficulty}))
    return episodes


def run_task(episode: EpisodeSpec, url: str | None, startup_error: str | None, policy: Policy, agent: str,
             model_label: str, trajectory: IO[str] | None) -> TaskResult:
    """One episode, start to finish. [START] and [END] are printed whatever happens in between; with a trajectory
    file, the episode's record is appended to it."""
    label = episode.label
    log_start(label, model_label)
    started = time.monotonic()
    error: str | None = None
    run = TaskRun(label, on_step=log_action)
    with contextlib.ExitStack() as stack:
        try:
            if url is None:
                raise RuntimeError(startup_error or "no environment server")
            env = MetricTrackerRlEnv(base_url=url, connect_timeout_s=CONNECT_TIMEOUT_S,
                                     message_timeout_s=MESSAGE_TIMEOUT_S).sync()
            stack.callback(close_quietly, env)
            reset_until_served(env.connect, env.disconnect, url)  # waits out a server restart
            policy(env, run, dict(episode.reset_kwargs))
            if run.observation is not None and run.graded is None and not run.done:
                note(f"[INFO] task={label} nothing was submitted: submitting an empty report so the task is graded")
                model_error = getattr(policy, "last_error", None)
                if model_error:  # the fallback's [STEP] line says why the model did not report
                    run.on_step = partial(log_fallback, model_error)
                run.act(env, MetricTrackerRlAction(classifications=[]))
        except Exception as exc:  # noqa: BLE001 - any failure ends this task, never the run
            error = f"{type(exc).__name__}: {one_line(str(exc))[:500]}"
            note(f"[ERROR] task={label} {error}")
        finally:
            success = run.graded is not None and run.score >= SUCCESS_THRESHOLD
            log_end(success, run.steps, run.score, run.rewards)
            if trajectory is not None and run.observation is not None:
                trajectory.write(json.dumps(run.record(agent, model_label, episode.reset_kwargs, error)) + "\n")
                trajectory.flush()
    breakdown = run.graded.reward_breakdown if run.graded is not None else None
    return TaskResult(label, episode.reset_kwargs.get("seed"), run.score, round(open_interval(run.score), 2),
                      success, run.steps, run.rewards, round(time.monotonic() - started, 2), error,
                      getattr(policy, "last_error", None), breakdown.model_dump() if breakdown else None)


def show_progress(done: int, total: int, mean_score: float) -> None:
    """A progress bar on stderr (stdout carries only the log lines)."""
    width = 30
    filled = width * done // total
    end = "\n" if done == total else ""
    print(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} episodes, mean score {mean_score:.3f}",
          end=end, file=sys.stderr, flush=True)


ENVIRONMENT_HELP = f"""environment variables:
  API_BASE_URL        the model's OpenAI-compatible endpoint (default {DEFAULT_API_BASE_URL}); setting it, or
                      MODEL_NAME, or a key, runs the llm agent
  MODEL_NAME          the model (default {DEFAULT_MODEL_NAME})
  API_KEY, HF_TOKEN, OPENAI_API_KEY   the key, first one set wins (a local endpoint needs none)
  MODEL_TIMEOUT_S, MODEL_MAX_RETRIES  per model call (default {MODEL_TIMEOUT_S:g} s, {MODEL_MAX_RETRIES} retries)
  TEMPERATURE, MAX_TOKENS, MAX_TOOL_ROUNDS   sampling and the tool-call budget per task
  BASE_URL            a running environment server; else LOCAL_IMAGE_NAME / IMAGE_NAME (a Docker image); else
                      this process serves the environment itself
  OPENENV_CONNECT_TIMEOUT_S, OPENENV_MESSAGE_TIMEOUT_S, SERVER_START_TIMEOUT_S   environment timeouts
  METRIC_TRACKER_RETRY_DEADLINE_S   how long a task waits for an environment that is down
  SUCCESS_THRESHOLD   the score an [END] line calls a success (default {SUCCESS_THRESHOLD:g})"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run the metric_tracker_rl baseline on the named tasks.",
                                     epilog=ENVIRONMENT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agent", default=None,
                        help="llm, scripted or expert (any registered agent name works); default: llm when an "
                             "API key is set, else scripted")
    parser.add_argument("--tasks", default=",".join(DEFAULT_TASK_ORDER),
                        help="comma-separated task ids (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=None, help="override the seed of every task")
    parser.add_argument("--output", type=Path, default=None, help="write the results as JSON to this file")
    parser.add_argument("--trajectories", type=Path, default=None,
                        help="directory for <agent>.jsonl: one SFT-ready chat record per episode")
    parser.add_argument("--episodes", type=int, default=None,
                        help="run this many generated episodes (seeds from --seed, default 0, difficulties in "
                             "turn) instead of the named tasks, with a progress bar")
    args = parser.parse_args(argv)
    args.task_ids = [t.strip() for t in args.tasks.split(",") if t.strip()]
    for task_id in args.task_ids:
        try:
            get_task_spec(task_id)
        except ValueError as exc:
            parser.error(str(exc))
    if args.episodes is not None and args.episodes < 1:
        parser.error("--episodes must be at least 1")
    args.episode_specs = (seeded_episodes(args.episodes, args.seed or 0) if args.episodes is not None
                          else named_episodes(args.task_ids, args.seed))
    args.agent = args.agent or ("llm" if API_KEY or MODEL_REQUESTED else "scripted")
    if args.agent == "llm" and not API_KEY and API_BASE_URL == DEFAULT_API_BASE_URL:
        parser.error(f"--agent llm needs a key in API_KEY, HF_TOKEN or OPENAI_API_KEY for {DEFAULT_API_BASE_URL}; "
                     "a local endpoint needs none: set API_BASE_URL (e.g. http://127.0.0.1:8001/v1) and MODEL_NAME")
    if args.agent != "llm" and args.agent not in AGENTS:
        parser.error(f"agent {args.agent!r} is not available in this checkout; valid: llm, {', '.join(AGENTS)}")
    return args


def summary_table(results: list[TaskResult]) -> str:
    lines = [f"{'task':<24} {'score':>6} {'steps':>6} {'seconds':>8}"]
    lines += [f"{r.task_id:<24} {r.score:>6.3f} {r.steps:>6} {r.seconds:>8.2f}" for r in results]
    if results:
        mean = sum(r.score for r in results) / len(results)
        lines.append(f"{'mean':<24} {mean:>6.3f} {sum(r.steps for r in results):>6} "
                     f"{sum(r.seconds for r in results):>8.2f}")
    return "\n".join(lines)


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)  # so a SIGTERM also stops the local server cleanly
    if args.agent == "llm":
        policy: Policy = LlmPolicy(OpenAI(base_url=API_BASE_URL, api_key=API_KEY or NO_KEY,
                                          timeout=MODEL_TIMEOUT_S, max_retries=MODEL_MAX_RETRIES))
        model_label = MODEL_NAME
    else:
        policy, model_label = agent_policy(args.agent), args.agent
    note(f"[INFO] agent={args.agent} model={model_label} episodes={len(args.episode_specs)}")
    started = time.monotonic()
    results: list[TaskResult] = []
    interrupted = False
    with contextlib.ExitStack() as stack:
        trajectory = None
        if args.trajectories is not None:
            args.trajectories.mkdir(parents=True, exist_ok=True)
            path = args.trajectories / f"{args.agent}.jsonl"
            trajectory = stack.enter_context(open(path, "w", encoding="utf-8"))
            note(f"[INFO] writing trajectories to {path}")
        url: str | None = None
        startup_error: str | None = None
        try:
            url = stack.enter_context(environment_server())
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
                result = run_task(episode, url, startup_error, policy, args.agent, model_label, trajectory)
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
