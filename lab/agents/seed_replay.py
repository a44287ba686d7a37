"""The seed-replay exploit: rebuild the episode from the visible config with the public package and submit its
ground truth. The one reference agent allowed to import the generator, because replaying it is the
exploit. It scores 1.0 on an open server and near 0 in held-out mode, where a server-side secret is mixed
into every random stream."""

from __future__ import annotations

from typing import Any

from lab.agents.registry import register_lab_agent
from metric_tracker_rl.agents.base import Agent
from metric_tracker_rl.catalog.tasks import RESET_KEYS, resolve_episode_config
from metric_tracker_rl.generation import build_episode
from metric_tracker_rl.models import AnomalyRequest, MetricTrackerRlAction
from metric_tracker_rl.view.observation import SeenObservation


def replay_config(visible: dict[str, Any]) -> dict[str, Any]:
    """Reset settings that reproduce the visible config: a named task with its seed, or the seed and difficulty
    alone; every visible setting only when the short form resolves to a different config."""
    settings = {key: visible[key] for key in RESET_KEYS if visible.get(key) not in (None, [])}
    short = (
        {"task_id": settings["task_id"], "seed": settings["seed"]}
        if "task_id" in settings
        else {key: settings[key] for key in ("seed", "difficulty", "scenario_family") if key in settings}
    )
    if "anomalies" in settings:
        short["anomalies"] = [AnomalyRequest(**a) for a in settings["anomalies"]]
    public = resolve_episode_config(**short).public_dict()
    if all(public.get(key) == value for key, value in visible.items() if key not in ("held_out", "standard")):
        return short
    settings["anomalies"] = short.get("anomalies", [])
    if settings.get("scenario_family") == "custom":  # a report of custom anomalies, not a reset setting
        del settings["scenario_family"]
    return settings


class SeedReplayAgent(Agent):
    name = "seed_replayer"

    def begin(self, observation: SeenObservation) -> None:
        self.config = observation.config

    def act(self, observation: SeenObservation) -> MetricTrackerRlAction | None:
        if observation.status == "graded" or observation.done:
            return None
        config = resolve_episode_config(**replay_config(self.config))
        episode = build_episode(config)
        return MetricTrackerRlAction(classifications=list(episode.truth.expected_rows))


register_lab_agent(SeedReplayAgent.name, SeedReplayAgent)
