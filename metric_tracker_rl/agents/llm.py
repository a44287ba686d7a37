"""The LLM policy: a tool-calling model investigates an episode with the environment's model tools.

`OpenAiChat` drives the conversation loop every LLM harness runs (`adapters.chat_loop`) with an OpenAI-compatible
endpoint over `transcript.TaskRun` (inference.py, SFT records); the Inspect solver drives the same loop with
Inspect's model API. Not registered with the other agents (it needs a model), and importing `metric_tracker_rl.agents`
does not import it.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any, cast

from openai import APIConnectionError, APIStatusError, OpenAI, OpenAIError
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

from metric_tracker_rl.adapters.baseline_log import one_line
from metric_tracker_rl.adapters.chat_loop import chat_loop, turn_budget
from metric_tracker_rl.adapters.transcript import SKIPPED_AFTER_GRADING, TaskRun
from metric_tracker_rl.settings import ClientSettings
from metric_tracker_rl.view.tool_schemas import openai_tools, tool_action

NO_KEY = "none"  # what the OpenAI client sends when no key is set: an endpoint without authentication ignores it
# HTTP statuses after which further model calls cannot succeed in this run.
FATAL_MODEL_STATUSES = {
    401: "the API key was rejected",
    402: "the provider's credits are exhausted",
    403: "the key may not use this model or endpoint",
    404: "the model or endpoint was not found",
}
STATUS_HINTS = {
    401: "check API_KEY / HF_TOKEN / OPENAI_API_KEY",
    402: "add credits, or switch API_BASE_URL / MODEL_NAME / the key",
    403: "check the key's permissions",
    404: "check API_BASE_URL and MODEL_NAME",
}


class ModelError(Exception):
    def __init__(self, message: str, fatal: bool) -> None:
        super().__init__(message)
        self.fatal = fatal


def describe_status_error(exc: APIStatusError, api_base_url: str) -> str:
    reason = FATAL_MODEL_STATUSES.get(exc.status_code, "the request failed")
    hint = STATUS_HINTS.get(exc.status_code, "retry later or switch provider")
    return (
        f"model call to {api_base_url} failed with HTTP {exc.status_code} ({reason}; {hint}): "
        f"{one_line(exc.message)[:300]}"
    )


def openai_client(settings: ClientSettings) -> OpenAI:
    return OpenAI(
        base_url=settings.api_base_url,
        api_key=settings.api_key or NO_KEY,
        timeout=settings.model_timeout_s,
        max_retries=settings.model_max_retries,
    )


class OpenAiChat:
    """A `ChatSession` over an OpenAI-compatible endpoint and a synchronous environment client; the messages are
    the TaskRun's transcript. Tool mistakes come back to the model as text and never cost an env step."""

    def __init__(
        self, client: OpenAI, settings: ClientSettings, tools: list[dict[str, Any]], env: Any, run: TaskRun
    ) -> None:
        self.client, self.settings, self.tools, self.env, self.run = client, settings, tools, env, run
        self.calls: list[Any] = []

    def finished(self) -> bool:
        return self.run.done or self.run.graded is not None

    async def model_turn(self) -> bool:
        message = self.complete()
        self.calls = message.tool_calls or []
        turn: dict[str, Any] = {"role": "assistant", "content": message.content or ""}
        if self.calls:
            turn["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.function.name, "arguments": c.function.arguments},
                }
                for c in self.calls
            ]
        self.run.messages.append(turn)
        return bool(self.calls)

    async def run_tool_calls(self) -> None:
        for call in self.calls:
            if self.finished():
                content = SKIPPED_AFTER_GRADING
            else:
                content = self.execute(call.function.name, call.function.arguments)
            self.run.messages.append(
                {"role": "tool", "tool_call_id": call.id, "name": call.function.name, "content": content}
            )

    def add_user_message(self, text: str) -> None:
        self.run.messages.append({"role": "user", "content": text})

    def complete(self) -> Any:
        settings = self.settings
        try:
            # The transcript and the tool schemas are plain dicts in OpenAI's chat format.
            completion = self.client.chat.completions.create(
                model=settings.model_name,
                messages=cast(list[ChatCompletionMessageParam], self.run.messages),
                tools=cast(list[ChatCompletionToolParam], self.tools),
                tool_choice="auto",
                temperature=settings.temperature,
                max_tokens=settings.max_tokens,
            )
        except APIStatusError as exc:
            raise ModelError(
                describe_status_error(exc, settings.api_base_url), fatal=exc.status_code in FATAL_MODEL_STATUSES
            ) from exc
        except APIConnectionError as exc:
            raise ModelError(f"could not reach the model at {settings.api_base_url}: {exc}", fatal=False) from exc
        except OpenAIError as exc:
            raise ModelError(f"model call failed: {one_line(str(exc))[:300]}", fatal=False) from exc
        if not completion.choices:
            raise ModelError("the model returned no choices", fatal=False)
        return completion.choices[0].message

    def execute(self, name: str, raw_arguments: str | None) -> str:
        action = tool_action(name, raw_arguments, self.run.config.get("difficulty"))
        if isinstance(action, str):
            self.run.refuse(name, raw_arguments, action)
            return action
        return self.run.step(self.env, action).text


class LlmPolicy:
    """An OpenAI tool-calling model over the model tools (the registry's and the two submit tools). After an error
    that no later call can get past (a rejected key, exhausted credits), the remaining tasks skip the model."""

    def __init__(self, client: OpenAI, settings: ClientSettings) -> None:
        self.client = client
        self.settings = settings
        self.disabled: str | None = None
        self.last_error: str | None = None
        self.turns: tuple[int, int] = (0, 0)  # the last task's model turns: taken, and its limit

    def __call__(self, env: Any, run: TaskRun, reset_kwargs: dict[str, Any]) -> None:
        self.last_error, self.turns = None, (0, 0)
        brief = run.reset(env, **reset_kwargs)
        limit = self.settings.max_tool_rounds or turn_budget(brief.steps_remaining)
        if self.disabled:
            self.last_error = f"model disabled after an earlier error: {self.disabled}"
            print(f"[WARN] task={run.label} {self.last_error}", file=sys.stderr, flush=True)
            return
        try:
            tools = openai_tools(run.config.get("difficulty"))  # the tools its tier offers
            chat = OpenAiChat(self.client, self.settings, tools, env, run)
            self.turns = (asyncio.run(chat_loop(chat, limit)), limit)
        except ModelError as exc:
            self.last_error = str(exc)
            print(f"[ERROR] task={run.label} {exc}", file=sys.stderr, flush=True)
            if exc.fatal:
                self.disabled = str(exc)
