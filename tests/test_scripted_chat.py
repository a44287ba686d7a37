"""The scripted chat model, importable from the package: an OpenAI client on loopback gets the script's tool calls
one per turn (streamed or not), then a closing message, and a turn that does not offer the scripted tool fails."""

from __future__ import annotations

import json

import openai
import pytest

from metric_tracker_rl.adapters.scripted_chat import CLOSING_TEXT, ScriptedChatModel, serving_model
from metric_tracker_rl.view.tool_schemas import openai_tools

SCRIPT = [("task_overview", {}), ("submit_report", {"rows": []})]


def tool_result(call_id: str) -> dict[str, str]:
    return {"role": "tool", "tool_call_id": call_id, "content": "ok"}


@pytest.mark.parametrize("stream", [False, True])
def test_a_client_reads_the_script_turn_by_turn(stream: bool) -> None:
    model = ScriptedChatModel(SCRIPT)
    tools = openai_tools("easy")
    with serving_model(model) as base_url:
        client = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0)
        messages: list[dict] = [{"role": "user", "content": "play"}]
        for name, arguments in [*SCRIPT, (None, None)]:
            if stream:
                chunks = list(
                    client.chat.completions.create(model="scripted", messages=messages, tools=tools, stream=True)
                )
                delta = chunks[0].choices[0].delta
                calls, content = delta.tool_calls or [], delta.content
            else:
                message = (
                    client.chat.completions.create(model="scripted", messages=messages, tools=tools).choices[0].message
                )
                calls, content = message.tool_calls or [], message.content
            if name is None:
                assert not calls and content == CLOSING_TEXT
                break
            (call,) = calls
            assert call.function.name == name and json.loads(call.function.arguments) == arguments
            messages += [
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": call.id,
                            "type": "function",
                            "function": {"name": name, "arguments": call.function.arguments},
                        }
                    ],
                },
                tool_result(call.id),
            ]
    assert len(model.requests) == len(SCRIPT) + 1


def test_a_turn_without_the_scripted_tool_is_refused() -> None:
    with serving_model(ScriptedChatModel(SCRIPT)) as base_url:
        client = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0)
        with pytest.raises(openai.BadRequestError, match="is not offered"):
            client.chat.completions.create(model="scripted", messages=[{"role": "user", "content": "play"}])
