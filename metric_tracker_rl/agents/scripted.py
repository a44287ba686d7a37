"""A short fixed procedure: the offline baseline of inference.py.

It reads the overview and the calendar notes, previews the family-specific generators merged with the
directional median generators at one fixed threshold, drops the rows on annotated dates and the rows on
entities a family never starts from (the injector catalog of the reset observation lists each family's
root-cause entities), keeps the first row per date, and submits the rest. No reasoning about weak incidents:
the point is a reproducible floor that runs in seconds without a model.
"""

from __future__ import annotations

from metric_tracker_rl.agents import Agent, register_agent
from metric_tracker_rl.models import MetricSubmissionRow, MetricTrackerRlAction, MetricTrackerRlObservation

THRESHOLD = 4.0
# Family-specific generators first: payload_generator keeps the first row per key, so a funnel break or a
# data-quality issue is labelled by its own family rather than by the generic count/rate scan.
GENERATOR_ORDER = (
    "get_funnel_break_rows",
    "get_instrumentation_data_quality_issue_rows",
    "get_hourly_traffic_mix_shift_rows",
    "get_rate_drop_from_median_rows",
    "get_rate_spike_from_median_rows",
    "get_absolute_drop_in_event_count_rows",
    "get_absolute_spike_in_event_count_rows",
)


class ScriptedAgent(Agent):
    """overview -> annotations -> payload_generator preview -> submit the rows off annotated dates."""

    name = "scripted"

    def __init__(self, threshold: float = THRESHOLD) -> None:
        self.threshold = threshold

    def begin(self, observation: MetricTrackerRlObservation) -> None:
        super().begin(observation)
        self.stage = 0
        self.annotated_dates: set[str] = set()
        self.root_entities = {spec["family"]: set(spec["entity_names"])
                              for spec in observation.available_synthetic_generator_methods}

    def act(self, observation: MetricTrackerRlObservation) -> MetricTrackerRlAction | None:
        self.stage += 1
        if self.stage == 1:
            return MetricTrackerRlAction(analysis_method="task_overview")
        if self.stage == 2:
            return MetricTrackerRlAction(analysis_method="get_annotations")
        if self.stage == 3:
            notes = (observation.analysis_result or {}).get("annotations", [])
            self.annotated_dates = {note["date"] for note in notes}
            methods = [{"method_name": name, "threshold_multiplier": self.threshold} for name in GENERATOR_ORDER]
            return MetricTrackerRlAction(analysis_method="payload_generator",
                                         analysis_args={"generator_methods": methods})
        if self.stage == 4:
            candidates = (observation.analysis_result or {}).get("rows", [])
            first_per_date: dict[str, dict] = {}
            for row in candidates:  # in GENERATOR_ORDER: the most specific family first
                if row["date"] not in self.annotated_dates \
                        and row["entity_name"] in self.root_entities.get(row["anomaly_type"], ()):
                    first_per_date.setdefault(row["date"], row)
            rows = [MetricSubmissionRow.model_validate(row) for row in first_per_date.values()]
            return MetricTrackerRlAction(classifications=rows)
        return None


register_agent("scripted", ScriptedAgent)
