"""The taskset: one task per (seed, difficulty) episode; each rollout plays it on its own server session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import Field
from verifiers.v1.mcp import SharedToolsetConfig, Toolset
from verifiers.v1.runtimes import Runtime
from verifiers.v1.task import Task, TaskConfig, TaskData
from verifiers.v1.taskset import Taskset, TasksetConfig
from verifiers.v1.trace import Trace
from verifiers.v1.utils.decorators import reward

from metric_tracker_verifiers.episode import close_episode, open_episode
from metric_tracker_verifiers.state import EpisodeState
from metric_tracker_verifiers.toolset import MetricTrackerToolset

# The tools are the episode's tier's (tools/list in its session): task_overview explains a tier of counts, the
# metrics layer the warehouse's raw events.
PROMPT = (
    "You are investigating a product's analytics data ({difficulty} episode, seed {seed}) with the analysis tools "
    "you have. Start with the one that explains the data (task_overview, or metrics_layer at the warehouse), look "
    "for anomalies, and finish with submit_report."
)


class MetricTrackerTaskConfig(TaskConfig):
    base_url: str = "http://127.0.0.1:8000"
    """The metric_tracker_rl server (its HTTP address; the reset goes over its WebSocket)."""
    request_timeout_s: float = Field(60.0, gt=0)


class MetricTrackerConfig(TasksetConfig):
    episodes: list[dict[str, Any]] = Field(default_factory=lambda: [{"seed": 0, "difficulty": "easy"}])
    """One task per set of reset arguments (seed, difficulty)."""
    tools: SharedToolsetConfig = SharedToolsetConfig()
    task: MetricTrackerTaskConfig = MetricTrackerTaskConfig()


class EpisodeData(TaskData):
    reset: dict[str, Any]


class MetricTrackerTask(Task[EpisodeData, EpisodeState, MetricTrackerTaskConfig]):
    async def setup(self, trace: Trace, runtime: Runtime) -> None:
        state = trace.state
        state.base_url = self.config.base_url.rstrip("/")
        state.request_timeout_s = self.config.request_timeout_s
        state.session_id = await open_episode(state.base_url, self.data.reset, self.config.request_timeout_s)

    async def finalize(self, trace: Trace, runtime: Runtime) -> None:
        state = trace.state
        if state.session_id:
            await close_episode(state.base_url, state.session_id, self.config.request_timeout_s)

    @reward(weight=1.0)
    async def episode_score(self, trace: Trace) -> float:
        """The episode's score as the server computed it (the sum of the tool calls' rewards)."""
        trace.record_metric("tool_calls", float(len(trace.state.rewards)))
        trace.record_metric("episode_done", float(trace.state.done))
        return trace.state.score


class MetricTrackerTaskset(Taskset[MetricTrackerTask, MetricTrackerConfig]):
    @classmethod
    def toolsets(cls, config: MetricTrackerConfig) -> list[Toolset]:
        return [MetricTrackerToolset(config.tools)]

    def load(self) -> Iterator[MetricTrackerTask]:
        for reset in self.config.episodes:
            name = f"{reset.get('difficulty', 'easy')}-seed-{reset.get('seed', 0)}"
            prompt = PROMPT.format(seed=reset.get("seed", 0), difficulty=reset.get("difficulty", "easy"))
            yield MetricTrackerTask(EpisodeData(name=name, prompt=prompt, reset=reset), self.config.task)
