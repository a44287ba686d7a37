"""One episode as a chat transcript: every step, its reward, and the messages a model reads and writes.

inference.py records its episodes with it (the SFT records of `--trajectories`), and agents.recording records a
reference agent's the same way: a record shows the system prompt, the brief, each tool call and its result as
`view.observation` renders them.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from metric_tracker_rl.adapters.session import EpisodeSession, Step
from metric_tracker_rl.models import MetricTrackerRlAction, MetricTrackerRlObservation
from metric_tracker_rl.view.prompt import system_prompt
from metric_tracker_rl.view.tool_schemas import SUBMIT_REPORT, action_tool_call, openai_tools

StepHook = Callable[[int, MetricTrackerRlAction, float, bool, "str | None"], None]
RefusalHook = Callable[[dict[str, Any]], None]
# What a model reads for a tool call it made in the same turn as the graded report: it reaches no environment.
SKIPPED_AFTER_GRADING = "skipped: the report has already been graded"


def sft_message(message: dict[str, Any]) -> dict[str, Any]:
    """A chat message as TRL's SFT trainer reads it: tool-call arguments as JSON objects, not JSON text (a call
    whose text is not a JSON object keeps its text)."""
    if "tool_calls" not in message:
        return message
    calls = []
    for call in message["tool_calls"]:
        arguments = call["function"]["arguments"]
        if isinstance(arguments, str):
            with contextlib.suppress(json.JSONDecodeError):
                parsed = json.loads(arguments or "{}")
                arguments = parsed if isinstance(parsed, dict) else arguments
        calls.append({**call, "function": {**call["function"], "arguments": arguments}})
    return {**message, "tool_calls": calls}


@dataclass
class TaskRun:
    """One episode's chat transcript over an `EpisodeSession`: the session keeps the steps, rewards and grading;
    `messages` is the chat (system, user, assistant tool calls, tool results) that the trajectory record keeps, and
    `results` each tool call's step (by call id) for the calls `act` made, whose views say what each result showed."""

    label: str
    on_step: StepHook | None = None  # called after every step (step number, action, reward, done, error)
    on_refused: RefusalHook | None = None  # called with each entry of `refused`
    session: EpisodeSession = field(default_factory=lambda: EpisodeSession(env=None))  # replaced by reset
    messages: list[dict[str, Any]] = field(default_factory=list)
    results: dict[str, Step] = field(default_factory=dict)
    refused: list[dict[str, Any]] = field(default_factory=list)  # tool calls answered without a step

    def reset(self, env: Any, **kwargs: Any) -> MetricTrackerRlObservation:
        """Start the episode on `env` (the in-process environment or a sync client); its steps go to `env` too."""
        self.session = EpisodeSession(env)
        brief = self.session.reset(**kwargs)
        if self.session.brief_observation is None:
            raise RuntimeError(" ".join(self.session.message.split()))
        difficulty = self.session.brief_observation.config.get("difficulty")
        self.messages = [
            {"role": "system", "content": system_prompt(difficulty)},
            {"role": "user", "content": brief.text},
        ]
        self.results, self.refused = {}, []
        return self.session.brief_observation

    def step(self, env: Any, action: MetricTrackerRlAction) -> Step:
        if env is not self.session.env:
            raise RuntimeError("step the environment that reset the episode")
        step = self.session.step(action)
        if not step.used:  # the environment refused the call before it ran: booked as a refusal, not a step
            name, arguments = action_tool_call(action)
            self.refuse(name, json.dumps(arguments, sort_keys=True), step.observation.message)
        elif self.on_step is not None:
            error = step.observation.message if step.observation.status == "error" else None
            self.on_step(self.steps, action, step.reward, step.done, error)
        return step

    def refuse(self, name: str, raw_arguments: str | None, text: str) -> None:
        """Book a model's tool call that was answered with `text` and used no step (an unknown tool, arguments that
        are not JSON or that the tool's checks refuse, an invalid submission: refused here or by the environment):
        `after_step` is the number of steps taken before it."""
        call = {"after_step": self.steps, "tool": name, "arguments": raw_arguments, "error": text}
        self.refused.append(call)
        if self.on_refused is not None:
            self.on_refused(call)

    def act(self, env: Any, action: MetricTrackerRlAction) -> Step:
        """A step taken by an agent that sends actions: the transcript shows it as a tool call and its result."""
        name, arguments = action_tool_call(action)
        call_id = f"call_{sum(message['role'] == 'tool' for message in self.messages) + 1}"
        self.messages.append(
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}],
            }
        )
        step = self.step(env, action)  # the agent reads the step's view next: the text is the view's
        self.results[call_id] = step
        self.messages.append({"role": "tool", "tool_call_id": call_id, "name": name, "content": step.seen.text})
        return step

    # The session's books, under the names inference.py reads.
    observation = property(lambda self: self.session.observation)
    steps = property(lambda self: self.session.steps)
    rewards = property(lambda self: self.session.rewards)
    done = property(lambda self: self.session.done)
    graded = property(lambda self: self.session.graded)
    config = property(lambda self: self.session.config)

    @property
    def score(self) -> float:
        """The session's score (the sum of the rewards), within [0, 1]."""
        return min(1.0, max(0.0, self.session.score))

    def record(self, agent: str, model: str, reset_kwargs: dict[str, Any], error: str | None) -> dict[str, Any]:
        """The episode as one SFT-ready JSONL record: the chat, the tools its tier offered, the score and the
        config."""
        breakdown = self.graded.reward_breakdown if self.graded is not None else None
        return {
            "messages": [sft_message(m) for m in self.messages],
            "tools": openai_tools(self.config.get("difficulty")),
            "task": self.label,
            "agent": agent,
            "model": model,
            "reset": reset_kwargs,
            "config": self.config,
            "score": self.score,
            "rewards": self.rewards,
            "steps": self.steps,
            "reward_breakdown": breakdown.model_dump() if breakdown is not None else None,
            "error": error,
        }


def replay_record(run: TaskRun, reset_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The episode in the replay format: `difficulty`, its `version`, `seed`, the other reset `settings`, the episode
    `score` the server computed and every call the environment answered, with the text the model read."""
    called: dict[str, tuple[str, Any]] = {}
    calls = []
    for message in run.messages:
        for call in message.get("tool_calls") or []:
            arguments = sft_message({"tool_calls": [call]})["tool_calls"][0]["function"]["arguments"]
            called[call["id"]] = (call["function"]["name"], arguments)
        if message["role"] == "tool" and message["content"] != SKIPPED_AFTER_GRADING:
            tool, arguments = called[message["tool_call_id"]]
            calls.append({"tool": tool, "arguments": arguments, "text": message["content"]})
    settings = {key: value for key, value in reset_kwargs.items() if key not in ("seed", "difficulty", "version")}
    return {
        "difficulty": run.config["difficulty"],
        "version": run.config["version"],
        "seed": run.config["seed"],
        "settings": settings,
        "score": run.session.score,
        "calls": calls,
    }


# --- what a record shows -------------------------------------------------------------------------------

ROW_KEY_FIELDS = ("date", "entity_type", "entity_name")
ROW_NUMBER_FIELDS = ("baseline_value", "observed_value", "delta_value")
REPORT_DIGITS = 4  # the decimals a report's values are compared at


def _shown_dicts(value: Any) -> list[dict[str, Any]]:
    """Every object a result's view holds, at any depth (table rows, a comparison's own fields)."""
    if isinstance(value, dict):
        return [value] + [d for item in value.values() for d in _shown_dicts(item)]
    if isinstance(value, list):
        return [d for item in value for d in _shown_dicts(item)]
    return []


def _shown_result(run: TaskRun, message: dict[str, Any]) -> dict[str, Any] | None:
    """What a tool message's result showed (its view: numbers as written), None for errors and gradings."""
    step = run.results.get(message.get("tool_call_id", "")) if message["role"] == "tool" else None
    return None if step is None else step.seen.analysis_result


def unseen_submitted_rows(run: TaskRun) -> list[dict[str, Any]]:
    """The rows of each submit_report call whose key and numbers stand in no earlier tool result of the
    transcript: what a model trained on the record would learn to produce from nothing."""
    shown: set[tuple[Any, ...]] = set()
    unseen = []
    fields = ROW_KEY_FIELDS + ROW_NUMBER_FIELDS
    for message in run.messages:
        result = _shown_result(run, message)
        if result is not None:
            shown.update(tuple(d[f] for f in fields) for d in _shown_dicts(result) if all(f in d for f in fields))
        for call in message.get("tool_calls") or []:
            if call["function"]["name"] != SUBMIT_REPORT:
                continue
            arguments = call["function"]["arguments"]
            rows = (json.loads(arguments) if isinstance(arguments, str) else arguments).get("rows", [])
            unseen += [row for row in rows if tuple(row.get(f) for f in fields) not in shown]
    return unseen


def _shown_numbers(value: Any) -> set[float]:
    """Every number a result's view holds, at any depth, at a report's precision."""
    if isinstance(value, bool):
        return set()
    if isinstance(value, int | float):
        return {round(float(value), REPORT_DIGITS)} if math.isfinite(value) else set()
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return {number for item in value for number in _shown_numbers(item)}
    return set()


def unread_submitted_rows(run: TaskRun) -> list[dict[str, Any]]:
    """The rows of each submit_report call whose baseline or observed value stands in no earlier tool result (at a
    report's precision), or whose delta is not their difference (within their rounding): where every tool is a
    query, a row's key is the agent's own naming of what it found, but its numbers must be read, not made up."""
    shown: set[float] = set()
    unread = []
    for message in run.messages:
        result = _shown_result(run, message)
        if result is not None:
            shown |= _shown_numbers(result)
        for call in message.get("tool_calls") or []:
            if call["function"]["name"] != SUBMIT_REPORT:
                continue
            arguments = call["function"]["arguments"]
            rows = (json.loads(arguments) if isinstance(arguments, str) else arguments).get("rows", [])
            unread += [row for row in rows if not _read_row(row, shown)]
    return unread


def _read_row(row: dict[str, Any], shown: set[float]) -> bool:
    try:
        baseline, observed, delta = (float(row[field]) for field in ROW_NUMBER_FIELDS)
    except (KeyError, TypeError, ValueError):
        return False
    return {round(baseline, REPORT_DIGITS), round(observed, REPORT_DIGITS)} <= shown and abs(
        observed - baseline - delta
    ) <= 1.5 * 10**-REPORT_DIGITS  # each of the three rounded


def _page(run: TaskRun, message: dict[str, Any]) -> tuple[int, int] | None:
    """(rows shown, rows in all) of a tool result that shows one page of a longer table, else None."""
    step = run.results.get(message.get("tool_call_id", "")) if message["role"] == "tool" else None
    result = step.observation.analysis_result if step is not None and step.observation.status == "ok" else None
    if not result or not isinstance(result.get("rows"), list) or "row_count" not in result:
        return None
    shown, total = len(result["rows"]), result["row_count"]
    return (shown, total) if shown != total else None


# How the query tool ends a text cell it cut (metric_tracker_rl.sql.cells.CUT_MARK, read here without importing
# the engine): the cell's text past its limit is not shown.
CUT_CELL = re.compile(r"\.\.\.\(cut, \d+ chars\)")


def cut_results(run: TaskRun) -> int:
    """Tool results that show fewer rows of a table than it has, on a page that neither ends the table nor was paged
    on (by a later call of the same tool with the same arguments from a further offset), and results with a text
    cell cut short."""
    calls = {call["id"]: call["function"] for message in run.messages for call in message.get("tool_calls") or []}

    def paged_from(function: dict[str, Any]) -> tuple[str, str, int]:
        raw = function["arguments"]  # a dict here, a JSON string in a chat API's record
        arguments = dict(json.loads(raw) if isinstance(raw, str) else raw)
        offset = int(arguments.pop("offset", 0) or 0)
        return function["name"], json.dumps(arguments, sort_keys=True, default=str), offset

    read = [
        paged_from(calls[m["tool_call_id"]])
        for m in run.messages
        if m["role"] == "tool" and m.get("tool_call_id") in calls
    ]
    cut = 0
    for message in run.messages:
        page = _page(run, message)
        if page is None:
            continue
        name, arguments, offset = paged_from(calls[message["tool_call_id"]])
        shown, total = page
        ends = offset + shown >= total
        cut += not ends and not any(n == name and a == arguments and o > offset for n, a, o in read)
    return cut + sum(m["role"] == "tool" and bool(CUT_CELL.search(m["content"])) for m in run.messages)
