"""The one chat loop every LLM harness runs (inference.py's OpenAI policy and the Inspect solver)."""

from __future__ import annotations

import asyncio

import pytest
from conftest import INSPECT_GROUP
from hypothesis import given
from hypothesis import strategies as st

from metric_tracker_rl.adapters.chat_loop import CONTINUE_MESSAGE, chat_loop

# What the scripted model does in one turn: call tools, answer without any, be cut off, or submit (finishing).
TURNS = st.sampled_from(["tools", "text", "cut", "submit"])


class ScriptedChat:
    """A ChatSession whose model plays a script and whose tool calls are counted."""

    def __init__(self, script: list[str]) -> None:
        self.script = list(script)
        self.log: list[str] = []
        self.submitted = False

    def finished(self) -> bool:
        return self.submitted

    async def model_turn(self) -> bool | None:
        turn = self.script.pop(0) if self.script else "text"
        self.log.append(f"model:{turn}")
        if turn == "cut":
            return None
        if turn == "submit":
            self.submitted = True
        return turn in ("tools", "submit")

    async def run_tool_calls(self) -> None:
        self.log.append("tools")

    def add_user_message(self, text: str) -> None:
        self.log.append(f"user:{text}")


@given(script=st.lists(TURNS, max_size=12), max_turns=st.integers(min_value=0, max_value=10))
def test_the_loop_asks_until_finished_cut_off_or_out_of_turns(script: list[str], max_turns: int) -> None:
    chat = ScriptedChat(script)
    taken = asyncio.run(chat_loop(chat, max_turns))
    turns = [entry for entry in chat.log if entry.startswith("model:")]
    assert taken == len(turns)
    played = [entry.removeprefix("model:") for entry in turns]
    assert len(turns) <= max_turns
    # it stops right after a cut-off or a submission, and otherwise only when the turns run out
    ends = [i for i, turn in enumerate(played) if turn in ("cut", "submit")]
    assert ends == ([len(played) - 1] if ends else [])
    if not ends:
        assert len(turns) == max_turns
    # every turn with tool calls is answered; every turn without is nudged with the continue message
    expected: list[str] = []
    for turn in played:
        expected.append(f"model:{turn}")
        if turn in ("tools", "submit"):
            expected.append("tools")
        elif turn == "text":
            expected.append(f"user:{CONTINUE_MESSAGE}")
    assert chat.log == expected


def test_a_finished_episode_asks_the_model_nothing() -> None:
    chat = ScriptedChat(["tools"])
    chat.submitted = True
    asyncio.run(chat_loop(chat, 5))
    assert chat.log == []


@pytest.mark.parametrize("harness", ["metric_tracker_rl.agents.llm", "metric_tracker_rl.adapters.inspect_eval.solver"])
def test_both_harnesses_run_this_loop(harness: str) -> None:
    pytest.importorskip("inspect_ai", reason=INSPECT_GROUP)
    import importlib

    module = importlib.import_module(harness)
    assert module.chat_loop is chat_loop
