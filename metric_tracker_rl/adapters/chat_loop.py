"""The one conversation loop every LLM harness runs: ask the model, run its tool calls, nudge it when it answered
without any, until the episode is finished (graded or out of steps), the model is cut off, or the turns run out.
inference.py's LLM policy (`agents.llm.OpenAiChat`) and the Inspect solver each drive it with their model API."""

from __future__ import annotations

from typing import Protocol

from metric_tracker_rl.view.tool_schemas import SUBMIT_GENERATORS, SUBMIT_REPORT

CONTINUE_MESSAGE = f"Continue with tool calls; finish with {SUBMIT_REPORT} or {SUBMIT_GENERATORS}."


def turn_budget(step_budget: int) -> int:
    """The model turns an episode with `step_budget` steps gets by default: every step, and half as many again for
    turns that cost no step (a malformed call answered as text, a nudge after a turn without tool calls), so the
    episode's own budget, not the harness, ends a model that keeps investigating."""
    return step_budget + step_budget // 2


class ChatSession(Protocol):
    """One model conversation over one episode, as `chat_loop` drives it."""

    def finished(self) -> bool:
        """The episode needs no more turns: a report was graded or the episode is over."""

    async def model_turn(self) -> bool | None:
        """Ask the model once and keep its turn: True when it called tools, False when it did not, None when it
        was cut off (no further turn can help)."""

    async def run_tool_calls(self) -> None:
        """Answer every tool call of the model's last turn."""

    def add_user_message(self, text: str) -> None: ...


async def chat_loop(session: ChatSession, max_turns: int) -> int:
    """Drive the session; return the model turns taken."""
    for turn in range(max_turns):
        if session.finished():
            return turn
        called = await session.model_turn()
        if called is None:
            return turn + 1
        if called:
            await session.run_tool_calls()
        else:
            session.add_user_message(CONTINUE_MESSAGE)
    return max_turns
