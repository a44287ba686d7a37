"""The fixed-rule exploit: six calls and a magnitude filter, no reasoning about what moved together.

It runs the annotations and four generators with their default arguments, then keeps, for each date no annotation
explains, one row (the most specific family first) whose size falls inside the magnitude range the brief publishes
for its family (lowest to highest over the difficulties, widened by a fifth: a measured size strays past the range
it was drawn from, through the day's noise and its baseline's). A row is reported under the family whose range holds
its size in that family's unit: a rise of the app opens is extra opens as a share of the day's volume, the bot
family's unit, on a date whose first step converted worse (the extra opens did not convert). Where the published
ranges sit clear of every benign fluctuation, that filter alone separates incidents from decoys; the calibration
keeps it in view to show where they do not.
"""

from __future__ import annotations

from lab.agents.registry import register_lab_agent
from metric_tracker_rl.agents.base import Agent, ResultKeeper
from metric_tracker_rl.agents.reading import Row, explained_dates, magnitude_bounds, relative_move, signed_share
from metric_tracker_rl.catalog.published import COUNT_COLUMNS, FUNNEL_STEPS
from metric_tracker_rl.models import MetricSubmissionRow, MetricTrackerRlAction
from metric_tracker_rl.view.observation import SeenObservation

GENERATORS = (
    "get_median_filter_rows",
    "get_funnel_break_rows",
    "get_instrumentation_data_quality_issue_rows",
    "get_hourly_traffic_mix_shift_rows",
)
# Most specific first: data quality > hourly mix > funnel break > rate > count.
SPECIFICITY = ("data_quality", "hourly_mix", "funnel_step", "conversion_rate", "event_count")
# How far past a published bound a measured size may stray, as a share of the bound.
RANGE_SLACK = 0.2
BOT_FAMILY = "hourly_traffic_mix_shift"
MIX_GENERATOR = "get_hourly_traffic_mix_shift_rows"


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

    def in_range(self, family: str, size: float) -> bool:
        """Whether a size lies inside the family's published range (with its slack); frontier publishes none, so
        there every row stands."""
        if "segments" in self.brief:
            return True
        low, high = magnitude_bounds(self.brief, family)
        return low * (1 - RANGE_SLACK) <= size <= high * (1 + RANGE_SLACK)

    def rows(self) -> list[Row]:
        results = {method: self.calls.results[method].get("rows", []) for method in GENERATORS}
        sized: list[tuple[Row, float | None]] = [*self.bot_rows(results)]
        for method in GENERATORS:
            for row in results[method]:
                kind = row["entity_type"]
                if kind == "hourly_mix":
                    continue  # sized in the bot family's unit by bot_rows
                if kind == "conversion_rate" and row["entity_name"] not in FUNNEL_STEPS:
                    continue  # a cumulative rate only echoes a step
                if kind == "event_count" and row["entity_name"] != COUNT_COLUMNS[0]:
                    continue  # a count incident is reported on the first event
                # A funnel break's range is in hours, which a daily row cannot show: the generator's flag stands.
                sized.append((row, None if kind == "funnel_step" else relative_move(row)))
        explained = explained_dates(self.calls.results["get_annotations"])
        kept: dict[str, Row] = {}
        for row, size in sized:
            if row["date"] in explained or (size is not None and not self.in_range(row["anomaly_type"], size)):
                continue
            best = kept.get(row["date"])
            if best is None or SPECIFICITY.index(row["entity_type"]) < SPECIFICITY.index(best["entity_type"]):
                kept[row["date"]] = row
        return list(kept.values())

    @staticmethod
    def bot_rows(results: dict[str, list[Row]]) -> list[tuple[Row, float]]:
        """The app opens' rise on each date whose first step converted worse, sized in the bot family's unit, on
        the hourly-mix generator's app-opens row (the app-opens count row where that page does not show it)."""
        opens = {
            row["date"]: row
            for row in results["get_median_filter_rows"]
            if (row["entity_type"], row["entity_name"]) == ("event_count", COUNT_COLUMNS[0])
        }
        mixes = {row["date"]: row for row in results[MIX_GENERATOR] if row["entity_name"] == COUNT_COLUMNS[0]}
        first_step_fell = {
            row["date"]
            for method in ("get_median_filter_rows", "get_funnel_break_rows")
            for row in results[method]
            if row["entity_name"] == FUNNEL_STEPS[0] and row["delta_value"] < 0
        }
        return [
            (
                mixes.get(date)
                or {**row, "entity_type": "hourly_mix", "anomaly_type": BOT_FAMILY, "detection_method": MIX_GENERATOR},
                signed_share(row),
            )
            for date, row in opens.items()
            if date in first_step_fell
        ]


register_lab_agent(FixedRuleAgent.name, FixedRuleAgent)
