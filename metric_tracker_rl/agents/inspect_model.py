"""The reference agents as Inspect AI models: `inspect eval metric_tracker_rl/metric_tracker --model
metric_tracker/expert` plays the whole eval offline, through Inspect's model API, and scores what
`inference.py --agent expert` scores (any registered agent name works: `metric_tracker/scripted`, ...).

Each turn, the model is the agent: it reads the view of the latest observation the sample's episode received (the
view whose text is the last message of the conversation, see `adapters.inspect_eval.episode`), asks the agent
for its next action, and answers with the tool call that sends it, or with a closing message when the agent is
done. So the agent decides from exactly what a model reads, as in inference.py, and the tool calls go through
Inspect's tools to the environment like any model's. It plays only inside this package's task (it needs the
sample's episode); Inspect finds it through the `metric_tracker` entry point.
"""

from __future__ import annotations

from weakref import WeakKeyDictionary

from inspect_ai.model import (
    ChatMessage,
    GenerateConfig,
    ModelAPI,
    ModelOutput,
    ModelUsage,
    modelapi,
)
from inspect_ai.tool import ToolChoice, ToolInfo

from metric_tracker_rl.adapters.inspect_eval.episode import PLAYING, Episode
from metric_tracker_rl.agents.base import AGENTS, Agent, make_agent
from metric_tracker_rl.view.observation import SeenObservation
from metric_tracker_rl.view.tool_schemas import action_tool_call

PROVIDER = "metric_tracker"
DONE_TEXT = "The agent has nothing more to do."


class AgentModel(ModelAPI):
    """One registered agent per episode, asked for one action per model turn."""

    def __init__(
        self,
        model_name: str,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig | None = None,
    ) -> None:
        super().__init__(model_name, base_url, api_key, [], config or GenerateConfig())
        if model_name not in AGENTS:
            raise ValueError(f"no agent {model_name!r}: --model {PROVIDER}/NAME takes one of {', '.join(AGENTS)}")
        self.agents: WeakKeyDictionary[Episode, tuple[Agent, SeenObservation | None]] = WeakKeyDictionary()

    async def generate(
        self, input: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice, config: GenerateConfig
    ) -> ModelOutput:
        episode = PLAYING.get()
        if episode is None or episode.latest is None:
            raise RuntimeError(f"{PROVIDER}/{self.model_name} plays only the metric_tracker_rl task's episodes")
        view = episode.latest
        agent, answered = self.agents.get(episode, (None, None))
        if agent is None:
            agent = make_agent(self.model_name)
            agent.begin(view)
        action = agent.act(view) if view is not answered else None  # a refused call leaves nothing new to read
        self.agents[episode] = (agent, view)
        if action is None:
            output = ModelOutput.from_content(self.model_name, DONE_TEXT)
        else:
            name, arguments = action_tool_call(action)
            output = ModelOutput.for_tool_call(self.model_name, name, arguments)
        # An agent reads and writes no tokens, and says so: a usage stated keeps Inspect from counting tokens itself
        # (its counter would download an encoding), and zeros keep its usage table from inventing any.
        output.usage = ModelUsage(input_tokens=0, output_tokens=0, total_tokens=0)
        return output


@modelapi(name=PROVIDER)
def agent_model() -> type[ModelAPI]:
    return AgentModel
