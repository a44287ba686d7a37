"""The replay oracle: read an episode's labels through graded feedback on replays of it, then submit the hits.

It collects candidate rows from the generator tools, then, for each candidate, opens another session on the same
server, resets it with the episode's own settings and submits that one row: the graded feedback's
`matched_row_count` says whether the row is an incident. A report of the hits scores near 1 wherever a reset of
the same settings gives the same episode (open mode); in held-out mode every reset draws a fresh episode, so the
labels it reads belong to other episodes and its report scores near 0.

`server` opens a new session on the server the agent plays on (an EpisodeSession, or anything with its `reset`
and `step`); without one the agent has no replays and submits an empty report.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from lab.agents.registry import register_lab_agent
from lab.agents.seed_replay import replay_config
from metric_tracker_rl.adapters.session import EpisodeSession
from metric_tracker_rl.agents.base import Agent
from metric_tracker_rl.models import MetricSubmissionRow, MetricTrackerRlAction
from metric_tracker_rl.view.observation import SeenObservation

MAX_PROBES = 48  # replays per episode: one candidate row each
PAGE = 120
ROW_KEY = ("date", "entity_type", "entity_name", "anomaly_type")


class ReplayOracleAgent(Agent):
    name = "replay_oracle"

    def __init__(self, server: Callable[[], EpisodeSession] | None = None) -> None:
        self.server = server

    def begin(self, observation: SeenObservation) -> None:
        self.settings = replay_config(observation.config)
        self.generators = _generator_names(observation)
        self.candidates: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.asked = False

    def act(self, observation: SeenObservation) -> MetricTrackerRlAction | None:
        if observation.status == "graded" or observation.done:
            return None
        if self.asked:
            for row in (observation.analysis_result or {}).get("rows", []):
                self.candidates.setdefault(tuple(row.get(key) for key in ROW_KEY), row)
        if self.generators and observation.steps_remaining > 1:
            self.asked = True
            return MetricTrackerRlAction(analysis_method=self.generators.pop(0), analysis_args={"limit": PAGE})
        hits = [row for row in list(self.candidates.values())[:MAX_PROBES] if self._is_incident(row)]
        return MetricTrackerRlAction(classifications=[MetricSubmissionRow(**row) for row in hits])

    def _is_incident(self, row: dict[str, Any]) -> bool:
        """Whether one candidate matched an incident, graded alone on a replay of the episode's settings."""
        if self.server is None:
            return False
        replay = self.server()
        if replay.reset(**self.settings).status == "error":
            return False
        graded = replay.step(MetricTrackerRlAction(classifications=[MetricSubmissionRow(**row)])).seen
        feedback = graded.reward_breakdown
        return bool(feedback is not None and feedback.matched_row_count)


def _generator_names(observation: SeenObservation) -> list[str]:
    """The generator tools the brief lists (their names end in _rows)."""
    return list(dict.fromkeys(re.findall(r"\bget_\w+_rows\b", observation.text)))


register_lab_agent(ReplayOracleAgent.name, ReplayOracleAgent)
