"""The reference README's baseline: one payload generator per difficulty, submitted once. It reads only
observations and sends public actions; inference.py and the SFT export may play it (its record ends with a
generator submission)."""

from __future__ import annotations

from metric_tracker_rl.agents.base import Agent, register_agent
from metric_tracker_rl.models import MetricTrackerRlAction, PayloadGeneratorMethod
from metric_tracker_rl.view.observation import SeenObservation

# The reference README's scripted baseline: one generator per named task.
README_BASELINE = {
    "easy": PayloadGeneratorMethod(method_name="get_absolute_spike_in_event_count_rows", threshold_multiplier=2.0),
    "medium": PayloadGeneratorMethod(method_name="get_median_filter_rows", threshold_multiplier=2.0),
    "hard": PayloadGeneratorMethod(method_name="get_median_filter_rows", threshold_multiplier=2.0),
}


class ReadmeBaselineAgent(Agent):
    """One payload generator chosen by the episode's difficulty, submitted once."""

    name = "readme_baseline"

    def act(self, observation: SeenObservation) -> MetricTrackerRlAction | None:
        if observation.status == "graded":  # submitted once
            return None
        difficulty = str(observation.config.get("difficulty", "medium"))
        # The reference README predates frontier: its hardest task's generator stands in for it there.
        return MetricTrackerRlAction(payload_generators=[README_BASELINE.get(difficulty, README_BASELINE["hard"])])


register_agent(ReadmeBaselineAgent.name, ReadmeBaselineAgent)
