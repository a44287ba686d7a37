"""The package's experts with a blind spot, the calibration's lower references for the segmented tiers: one blind
to segments, one that searches one-dimension breakdowns only. A tier that needs what they do not see keeps them
below the expert."""

from __future__ import annotations

from lab.agents.registry import register_lab_agent
from metric_tracker_rl.agents.base import Agent
from metric_tracker_rl.agents.deep_expert import DeepExpertAgent
from metric_tracker_rl.agents.expert import ExpertAgent
from metric_tracker_rl.agents.frontier_expert import FrontierExpertAgent
from metric_tracker_rl.catalog.published import SEGMENTED_DIFFICULTIES
from metric_tracker_rl.models import MetricTrackerRlAction
from metric_tracker_rl.view.observation import SeenObservation


class AggregateOnlyExpertAgent(Agent):
    """Today's expert blind to segments: below frontier it is the expert; at frontier it runs the frontier
    procedure on the aggregate funnel alone and reports no segment (the calibration's lower reference: an
    incident reported on the aggregate earns nothing, so a tier that needs segments keeps this agent low)."""

    name = "aggregate_only_expert"

    def begin(self, observation: SeenObservation) -> None:
        segmented = observation.config.get("difficulty") in SEGMENTED_DIFFICULTIES
        self.inner: Agent = FrontierExpertAgent(segment_blind=True) if segmented else ExpertAgent()
        self.inner.begin(observation)

    def act(self, observation: SeenObservation) -> MetricTrackerRlAction | None:
        return self.inner.act(observation)


class OneDimensionExpertAgent(DeepExpertAgent):
    """The deep expert limited to one-dimension breakdowns (a version with its platform counts as one)."""

    name = "one_dimension_expert"

    def __init__(self) -> None:
        super().__init__(max_dims=1)


register_lab_agent(AggregateOnlyExpertAgent.name, AggregateOnlyExpertAgent)
register_lab_agent(OneDimensionExpertAgent.name, OneDimensionExpertAgent)
