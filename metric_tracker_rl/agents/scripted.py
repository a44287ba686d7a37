"""A short fixed procedure: the offline baseline of inference.py.

It reads the calendar notes, runs the family-specific generators and the median generator at one fixed threshold,
drops the rows on annotated dates and the rows on entities a family never starts from (the brief lists each
family's root-cause entities), keeps the first row per date (the most specific family first, then the strongest
evidence), and submits the rest. No reasoning about weak incidents: the point is a reproducible floor that runs in
seconds without a model. At a tier that offers none of these tools (the warehouse: raw events), it submits an empty
report: the floor of a procedure that reads no data.
"""

from __future__ import annotations

from typing import Any

from metric_tracker_rl.agents.base import Agent, ResultKeeper, register_agent
from metric_tracker_rl.agents.reading import PAGE_ROWS
from metric_tracker_rl.models import MetricSubmissionRow, MetricTrackerRlAction
from metric_tracker_rl.view.observation import SeenObservation
from metric_tracker_rl.view.tool_schemas import model_tools

THRESHOLD = 4.0
# Family-specific generators first, so that a funnel break or a data-quality issue is labelled by its own family
# rather than by the generic count/rate scan (which types a row by its direction).
GENERATOR_ORDER = (
    "get_funnel_break_rows",
    "get_instrumentation_data_quality_issue_rows",
    "get_hourly_traffic_mix_shift_rows",
    "get_median_filter_rows",
)


class ScriptedAgent(Agent):
    """annotations -> each generator at one threshold -> submit the first row of every unannotated date."""

    name = "scripted"

    def __init__(self, threshold: float = THRESHOLD) -> None:
        self.threshold = threshold

    def begin(self, observation: SeenObservation) -> None:
        self.root_entities = {row["family"]: set(row["root_cause_entities"]) for row in observation.brief["families"]}
        difficulty = observation.config.get("difficulty")
        offered = {tool.name for tool in model_tools(difficulty if isinstance(difficulty, str) else None)}
        self.calls: list[tuple[str, str, dict[str, Any]]] = [
            call
            for call in [
                ("annotations", "get_annotations", {}),
                *(
                    (name, name, {"threshold_multiplier": self.threshold, "limit": PAGE_ROWS})
                    for name in GENERATOR_ORDER
                ),
            ]
            if call[1] in offered
        ]
        self.kept = ResultKeeper()

    def act(self, observation: SeenObservation) -> MetricTrackerRlAction | None:
        self.kept.keep(observation)
        if observation.status == "graded" or observation.done:
            return None
        if self.calls:
            name, method, arguments = self.calls.pop(0)
            self.kept.expect(name)
            return MetricTrackerRlAction(analysis_method=method, analysis_args=arguments)
        annotated = {note["date"] for note in self.kept.results.get("annotations", {}).get("annotations", [])}
        first_per_date: dict[str, dict[str, Any]] = {}
        for method in GENERATOR_ORDER:  # the most specific family first, each strongest first
            for row in self.kept.results.get(method, {}).get("rows", []):
                if row["date"] not in annotated and row["entity_name"] in self.root_entities.get(
                    row["anomaly_type"], ()
                ):
                    first_per_date.setdefault(row["date"], row)
        return MetricTrackerRlAction(
            classifications=[MetricSubmissionRow.model_validate(row) for row in first_per_date.values()]
        )


register_agent("scripted", ScriptedAgent)
