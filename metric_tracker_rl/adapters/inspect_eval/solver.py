"""The solver: one WebSocket session per sample, the environment's tools given to the model, and the chat loop
inference.py runs (`adapters.chat_loop`) until the first graded submission (on a standard episode it also ends
the episode), the end of the episode (a spent step budget), the model's cut-off, or its last turn."""

from __future__ import annotations

from inspect_ai.model import ChatMessageSystem, ChatMessageUser, Model, execute_tools, get_model
from inspect_ai.solver import Generate, Solver, TaskState, solver

from metric_tracker_rl import MetricTrackerRlEnv
from metric_tracker_rl.adapters.chat_loop import chat_loop, turn_budget
from metric_tracker_rl.adapters.inspect_eval.episode import PLAYING, Episode, EpisodeRecord
from metric_tracker_rl.adapters.inspect_eval.server import server_url
from metric_tracker_rl.adapters.inspect_eval.tools import episode_tools
from metric_tracker_rl.reconnect import areset_until_served
from metric_tracker_rl.settings import ClientSettings
from metric_tracker_rl.view.prompt import first_prompt, system_prompt


class InspectChat:
    """`adapters.chat_loop.ChatSession` over Inspect's model API: the sample's messages, its tools, its episode."""

    def __init__(self, state: TaskState, model: Model, episode: Episode) -> None:
        self.state, self.model, self.episode = state, model, episode

    def finished(self) -> bool:
        return self.episode.done or self.episode.record.graded_submissions > 0

    async def model_turn(self) -> bool | None:
        state = self.state
        state.output = await self.model.generate(input=state.messages, tools=state.tools)
        state.messages.append(state.output.message)
        if state.output.stop_reason == "model_length":
            return None
        return bool(state.output.message.tool_calls)

    async def run_tool_calls(self) -> None:
        results, _ = await execute_tools(self.state.messages, self.state.tools)
        self.state.messages.extend(results)

    def add_user_message(self, text: str) -> None:
        self.state.messages.append(ChatMessageUser(content=text))


def require_held_out(config: dict, url: str) -> None:
    """A held-out eval must run on a server that says it serves held-out episodes (else scores would be
    comparable to nothing)."""
    if config.get("held_out") is not True:
        raise RuntimeError(
            f"the server at {url} does not serve held-out episodes (its reset config has no "
            "held_out: true); start it with METRIC_TRACKER_SECRET set, or run without held_out"
        )


@solver
def episode_agent(
    base_url: str | None = None, held_out: bool = False, max_turns: int | None = None, port: int = 0
) -> Solver:
    """Run one episode per sample with the model choosing every action through tool calls.

    Args:
      base_url: URL of a running server (else METRIC_TRACKER_URL, else a local server process).
      held_out: require held-out episodes (a local server is started with a secret).
      max_turns: model turns at most (default `chat_loop.turn_budget` of the episode's step budget, so the
        budget, not the turns, ends a model that keeps investigating).
      port: the loopback port of the local server the run starts (0: a free one).
    """

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        settings = ClientSettings.load()
        url = await server_url(base_url, held_out, settings, port)
        record = state.store_as(EpisodeRecord)
        env = MetricTrackerRlEnv(
            base_url=url,
            connect_timeout_s=settings.connect_timeout_s,
            message_timeout_s=settings.message_timeout_s,
            resume_sessions=settings.resume_sessions,
        )
        try:
            episode = Episode(env, record)
            PLAYING.set(episode)
            # The session opens with the first reset, which waits out a server restart (see reconnect).
            observation = await areset_until_served(
                lambda: episode.reset(state.metadata["reset_kwargs"]),
                env.disconnect,
                url,
                deadline_s=settings.retry_deadline_s,
            )
            if held_out:
                require_held_out(observation.config, url)
            state.tools = episode_tools(episode)
            state.messages = [
                ChatMessageSystem(content=system_prompt(observation.config.get("difficulty"))),
                ChatMessageUser(content=first_prompt(observation)),
            ]
            turns = max_turns or turn_budget(observation.steps_remaining)
            await chat_loop(InspectChat(state, get_model(), episode), turns)
        finally:
            await env.close()
        return state

    return solve
