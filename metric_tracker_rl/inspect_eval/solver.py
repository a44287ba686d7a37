"""The solver: one WebSocket session per sample, the environment's tools given to the model, and the tool loop
until the first graded submission (as in inference.py; on a standard episode it also ends the episode), the end
of the episode (a spent step budget), or the model's last turn."""

from __future__ import annotations

from inspect_ai.model import ChatMessageSystem, ChatMessageUser, execute_tools, get_model
from inspect_ai.solver import Generate, Solver, TaskState, solver

from metric_tracker_rl import MetricTrackerRlEnv
from metric_tracker_rl.inspect_eval.episode import Episode, EpisodeRecord
from metric_tracker_rl.inspect_eval.server import server_url
from metric_tracker_rl.inspect_eval.tools import episode_tools
from metric_tracker_rl.reconnect import areset_until_served
from metric_tracker_rl.tool_calls import SYSTEM_PROMPT, first_prompt

CONNECT_TIMEOUT_S = 30.0
MESSAGE_TIMEOUT_S = 180.0
CONTINUE_MESSAGE = "Continue with tool calls; finish with submit_report or submit_generators."


def require_held_out(config: dict, url: str) -> None:
    """A held-out eval must run on a server that says it serves held-out episodes (else scores would be
    comparable to nothing)."""
    if config.get("held_out") is not True:
        raise RuntimeError(f"the server at {url} does not serve held-out episodes (its reset config has no "
                           "held_out: true); start it with METRIC_TRACKER_SECRET set, or run without held_out")


@solver
def episode_agent(base_url: str | None = None, held_out: bool = False, max_turns: int = 60) -> Solver:
    """Run one episode per sample with the model choosing every action through tool calls.

    Args:
      base_url: URL of a running server (else BASE_URL, else a local server process).
      held_out: require held-out episodes (a local server is started with a secret).
      max_turns: model turns at most; the episode's own step budget usually ends it first.
    """

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        url = await server_url(base_url, held_out)
        record = state.store_as(EpisodeRecord)
        env = MetricTrackerRlEnv(base_url=url, connect_timeout_s=CONNECT_TIMEOUT_S,
                                 message_timeout_s=MESSAGE_TIMEOUT_S)
        try:
            episode = Episode(env, record)
            # The session opens with the first reset, which waits out a server restart (see reconnect).
            observation = await areset_until_served(lambda: episode.reset(state.metadata["reset_kwargs"]),
                                                    env.disconnect, url)
            if held_out:
                require_held_out(observation.config, url)
            state.tools = episode_tools(episode)
            state.messages = [ChatMessageSystem(content=SYSTEM_PROMPT),
                              ChatMessageUser(content=first_prompt(observation))]
            model = get_model()
            for _ in range(max_turns):
                if episode.done or episode.record.graded_submissions:
                    break
                state.output = await model.generate(input=state.messages, tools=state.tools)
                state.messages.append(state.output.message)
                if state.output.stop_reason == "model_length":
                    break
                if state.output.message.tool_calls:
                    results, _ = await execute_tools(state.messages, state.tools)
                    state.messages.extend(results)
                else:
                    state.messages.append(ChatMessageUser(content=CONTINUE_MESSAGE))
        finally:
            await env.close()
        return state

    return solve
