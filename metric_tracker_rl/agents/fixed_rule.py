"""The fixed-rule exploit: six calls and a magnitude filter, no reasoning about what moved together.

It runs the annotations and four generators with their default arguments, then keeps, for each date no annotation
explains, one row (the most specific family first) whose size falls inside the magnitude range the brief publishes
for its family (lowest to highest over the difficulties: a measured size strays a little past the range it was drawn
from). Where the published ranges sit clear of every benign fluctuation, that filter alone separates incidents
from decoys; the calibration keeps it in view to show where they do not.
"""

from __future__ import annotations

from metric_tracker_rl.agents.base import Agent, ResultKeeper, register_agent
from metric_tracker_rl.agents.reading import Row, explained_dates, magnitude_bounds, relative_move, signed_share
from metric_tracker_rl.catalog import COUNT_COLUMNS, FUNNEL_STEPS
from metric_tracker_rl.models import MetricSubmissionRow, MetricTrackerRlAction
from metric_tracker_rl.tool_calls import SeenObservation

GENERATORS = ("get_median_filter_rows", "get_funnel_break_rows", "get_instrumentation_data_quality_issue_rows",
              "get_hourly_traffic_mix_shift_rows")
# Most specific first: data quality > hourly mix > funnel break > rate > count.
SPECIFICITY = ("data_quality", "hourly_mix", "funnel_step", "conversion_rate", "event_count")


class FixedRuleAgent(Agent):
    """Annotations, four generators at their defaults, then one in-range row per unexplained date."""

    name = "fixed_rule"

    def begin(self, observation: SeenObservation) -> None:
        self.brief = observation.brief
        self.plan = ["get_annotations", *GENERATORS]
        self.calls = ResultKeeper()

    def act(self, observation: SeenObservation) -> MetricTrackerRlAction | None:
        self.calls.keep(observation)
        if observation.done or observation.status == "graded":
            return None
        if self.plan:
            name = self.plan.pop(0)
            self.calls.expect(name)
            return MetricTrackerRlAction(analysis_method=name)
        return MetricTrackerRlAction(classifications=[MetricSubmissionRow(**row) for row in self.rows()])

    def magnitude(self, row: Row, opens_share: dict[str, float]) -> float | None:
        """The row's size in its family's published unit, or None where a daily row cannot show it (a funnel
        break's magnitude is hours; the generator's hour-level flag stands for it)."""
        if row["entity_type"] == "funnel_step":
            return None
        if row["entity_type"] == "hourly_mix":  # extra opens as a share of the day: the app opens' rise
            return opens_share.get(row["date"], 0.0)
        return relative_move(row)

    def rows(self) -> list[Row]:
        explained = explained_dates(self.calls.results["get_annotations"])
        median_rows = self.calls.results["get_median_filter_rows"].get("rows", [])
        opens_share = {row["date"]: signed_share(row) for row in median_rows
                       if (row["entity_type"], row["entity_name"]) == ("event_count", COUNT_COLUMNS[0])}
        kept: dict[str, Row] = {}
        for method in GENERATORS:
            for row in self.calls.results[method].get("rows", []):
                if row["date"] in explained:
                    continue
                if row["entity_type"] == "conversion_rate" and row["entity_name"] not in FUNNEL_STEPS:
                    continue  # a cumulative rate only echoes a step
                if row["entity_type"] in ("event_count", "hourly_mix") and row["entity_name"] != COUNT_COLUMNS[0]:
                    continue  # a count incident or bot traffic is reported on the first event
                size = self.magnitude(row, opens_share)
                if size is not None and "segments" not in self.brief:  # frontier publishes no range: rows stand
                    low, high = magnitude_bounds(self.brief, row["anomaly_type"])
                    if not low <= size <= high:
                        continue
                best = kept.get(row["date"])
                if best is None or SPECIFICITY.index(row["entity_type"]) < SPECIFICITY.index(best["entity_type"]):
                    kept[row["date"]] = row
        return list(kept.values())


register_agent(FixedRuleAgent.name, FixedRuleAgent)
