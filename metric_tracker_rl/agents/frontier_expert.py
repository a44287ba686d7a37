"""The expert at frontier: a segmented eight-week world read through the SQL tool, deciding only from the text of
the tool results and from what the brief publishes.

The brief says every incident is confined to a segment, that releases sometimes break the new version from the
rollout's start, and that the benign look-alikes keep every segment's own conversion (more traffic from a
low-converting segment, a segment's demand all day, a segment's timing). So the signature decides, never a size:

1. get_releases: each mobile release's platform, version and first date.
2. Step conversions of every platform, country and (in its release's first dates) new version against the
   published baseline (the median of the same weekday in the other weeks): a change well outside its sampling
   noise (a binomial z that also allows for a segment's day-to-day spread) is kept. Only incidents move a
   segment's own conversion.
3. The hour-of-day shape of each platform's and country's app opens against the same hours of the same weekday
   (each hour's ratio divided by the day's median ratio, so a whole-day swing cancels): low hours in one block and
   none high is an outage; low and high hours together are a timing shift (benign).
4. Each step's hourly conversion of every version against the day's own median: hours where a step nearly stopped
   converting are a funnel break, on the version, or on its platform when the other versions stopped too.
5. A web event whose incoming step converts far above its baseline is logged twice (a tracking bug); a new
   version whose step fell from its rollout's start while its platform did not fall with it is a release
   regression; a country whose first step fell on a single date is bots (opens that never go further: an hourly mix
   shift); any other step that fell on consecutive dates is a level shift on the platform or country that fell
   furthest.
6. Last, queries read every reported row (date, entity, the segment's baseline, observed value, delta and severity
   by the published rules) from the segment's own data, and the hourly-mix comparison tool, scoped to the segment,
   reads each hourly-mix row, so every number submitted stands in a result.

The queries, the signatures and the reading of the reported values are the experts' shared core
(metric_tracker_rl/agents/expert_core/); this module is the frontier's procedure over them. With `segment_blind`
the same procedure looks at the aggregate only and reports no segment.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from metric_tracker_rl.agents.base import Agent
from metric_tracker_rl.agents.expert_core import classification as classify
from metric_tracker_rl.agents.expert_core.queries import hours_sql, query_action, rates_sql, stops_sql
from metric_tracker_rl.agents.expert_core.reports import Report, mix_values_action, submitted_rows, values_queries
from metric_tracker_rl.agents.reading import episode_dates
from metric_tracker_rl.models import MetricTrackerRlAction
from metric_tracker_rl.view.observation import SeenObservation
from metric_tracker_rl.world.segments import CELL_FIELDS


class FrontierExpertAgent(Agent):
    """The frontier procedure of the module docstring."""

    name = "frontier_expert"
    fields: tuple[str, ...] = CELL_FIELDS  # the segment fields it reports and reads values by
    # A new version's fall counts as its release's regression when first seen within this many dates of the
    # rollout's start (a whole version carries enough users by its second date).
    regression_seen_within = 1

    def __init__(self, segment_blind: bool = False) -> None:
        self.segment_blind = segment_blind

    def begin(self, observation: SeenObservation) -> None:
        brief = observation.brief
        self.dates = episode_dates(brief)
        holidays = str(brief.get("segments", {}).get("holidays", ""))
        self.holidays = [word for word in holidays.replace(",", " ").split() if _is_date(word)]
        blind = self.segment_blind
        self.plan: list[tuple[str, MetricTrackerRlAction]] = [
            ("rates", query_action(rates_sql(("all",) if blind else ("platform", "country", "version")))),
            ("hours", query_action(hours_sql(("all",) if blind else ("platform", "country"), self.holidays))),
            ("stops", query_action(stops_sql(blind))),
        ]
        if not blind:
            self.plan.insert(0, ("releases", MetricTrackerRlAction(analysis_method="get_releases", analysis_args={})))
        self.results: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.waiting: tuple[str, MetricTrackerRlAction] | None = None
        self.report: list[Report] | None = None
        self.submitted = False

    def act(self, observation: SeenObservation) -> MetricTrackerRlAction | None:
        if self.waiting is not None:
            name, action = self.waiting
            self.waiting = None
            result = observation.analysis_result or {}
            if action.analysis_method == "compare_hourly_mix_to_baseline":  # one row's values, as the tool shows them
                self.results[name].append(result)
            else:
                self.results[name] += result.get("rows", [])
            if result.get("next_offset") is not None and action.analysis_method == "query":  # the next page
                self.plan.insert(0, (name, query_action(action.analysis_args["sql"], int(result["next_offset"]))))
        if observation.status == "graded" or observation.done or self.submitted:
            return None
        if not self.plan and self.report is None and not self._plan_more():
            self.report = self._decide()
            mixes = [report for report in self.report if report.entity_type == "hourly_mix"]
            daily = [report for report in self.report if report.entity_type != "hourly_mix"]
            self.plan += [("values", query_action(sql)) for sql in self._values_queries(daily)]
            self.plan += [("values", mix_values_action(report)) for report in mixes]
        if self.plan:
            self.waiting = self.plan.pop(0)
            return self.waiting[1]
        self.submitted = True
        return MetricTrackerRlAction(
            classifications=submitted_rows(self.report or [], self._values_rows(), self.fields, self.segment_blind)
        )

    def _values_rows(self) -> list[dict[str, Any]]:
        """The values calls' rows, a field per segment dimension."""
        return self.results["values"]

    def _values_queries(self, daily: list[Report]) -> list[str]:
        """The queries that read the daily rows' numbers by the published baseline rule."""
        return values_queries(daily, self.fields)

    # --- deciding ------------------------------------------------------------------------------------

    def _plan_more(self) -> bool:
        """Whether calls were added to the plan once the planned ones answered (a deeper procedure's next
        round); the frontier procedure has none."""
        return False

    def _decide(self) -> list[Report]:
        reports: dict[str, Report] = {}  # one event per date at most: the first signature that explains it
        classify.funnel_breaks(self, reports)
        classify.outages(self, reports)
        classify.duplicate_events(self, reports)
        classify.release_regressions(self, reports, self.regression_seen_within)
        classify.rate_runs(self, reports)
        return sorted(reports.values(), key=lambda r: r.date)


def _is_date(word: str) -> bool:
    try:
        dt.date.fromisoformat(word)
    except ValueError:
        return False
    return True
