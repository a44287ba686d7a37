"""The warehouse's reference agents beside its expert, each a shortcut a model might take:

- `warehouse_dashboard_analyst`: scans the dashboard as a capable model scanned abyss (every date and cuboid of
  its fields against the same weekday's median, binomial for a rate, Poisson for a count) and never reads a raw
  event: a metric that fell to nothing it calls a data defect, any other fall an incident;
- `warehouse_every_dip`: every dashboard dip past a low bar, each called an incident;
- `warehouse_all_data_quality`: the dashboard analyst's rows, every one called a data defect;
- `warehouse_aggregate_expert`: the expert's report with every segment left out (the whole funnel's values).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from lab.agents.registry import register_lab_agent
from metric_tracker_rl.agents.base import Agent
from metric_tracker_rl.agents.expert_core.queries import query_action
from metric_tracker_rl.agents.warehouse_expert import Investigation, WarehouseExpertAgent
from metric_tracker_rl.agents.warehouse_findings import (
    COUNT_DROP,
    DATA_QUALITY,
    RATE_DROP,
    Finding,
    dedupe,
    report_row,
    segment_of,
)
from metric_tracker_rl.agents.warehouse_sql import ALL_RULES, NO_FIXES, metric_values_sql
from metric_tracker_rl.models import MetricTrackerRlAction
from metric_tracker_rl.view.observation import SeenObservation
from metric_tracker_rl.world.metrics_layer import RATE_COLUMNS
from metric_tracker_rl.world.segments import Segment

DASHBOARD_Z = 4.5  # the dashboard analyst's bar
DIP_Z = 2.5  # every dip's bar
SCAN_TOP = 60
EMPTIED = 0.1  # a metric at this share of its baseline or less fell to nothing
MIN_VOLUME = 30  # sessions (of a count) or sessions at the earlier step (of a rate) a cuboid needs to be read


def dashboard_scan_sql(bar: float) -> str:
    """Per date, cuboid of the dashboard's fields (the whole, a platform, a country, both, a version) and metric
    (sessions, each rate), the value against the median of the same weekday's other dates and its z, where it fell
    beyond `bar`: the SCAN_TOP strongest."""
    return (
        "WITH g AS (SELECT date, platform, country, app_version, sum(sessions) m0, sum(menu_sessions) m1, "
        "sum(cart_sessions) m2, sum(order_sessions) m3, sum(payment_sessions) m4 FROM dashboard GROUP BY date, "
        "GROUPING SETS ((), (platform), (country), (platform, country), (platform, app_version))), "
        "x AS (SELECT date, platform, country, app_version, unnest([0, 1, 2, 3, 4]) k, "
        "unnest([m0, m1 / nullif(m0, 0), m2 / nullif(m1, 0), m3 / nullif(m2, 0), m4 / nullif(m3, 0)]) value, "
        "unnest([m0, m0, m1, m2, m3]) base_count FROM g), "
        "b AS (SELECT *, median(value) OVER (PARTITION BY platform, country, app_version, k, isodow(date) ROWS "
        "BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING EXCLUDE CURRENT ROW) baseline FROM x), "
        "z AS (SELECT *, CASE WHEN k = 0 THEN (value - baseline) / sqrt(greatest(baseline, 1)) ELSE (value - baseline)"
        " / sqrt(greatest(baseline * (1 - baseline), 0.05) / greatest(base_count, 1)) END z FROM b "
        f"WHERE baseline > 0 AND base_count >= {MIN_VOLUME}) SELECT CAST(date AS VARCHAR) date, platform, country, "
        "app_version, k, value, baseline, "
        f"round(z, 2) z FROM z WHERE z <= -{bar} ORDER BY z LIMIT {SCAN_TOP}"
    )


class DashboardAnalystAgent(Agent):
    """One scan of the dashboard, the strongest fall of each date and metric reported (see the module docstring)."""

    name = "warehouse_dashboard_analyst"
    bar = DASHBOARD_Z
    emptied_is_defect = True

    def begin(self, observation: SeenObservation) -> None:
        self.asked = False

    def act(self, observation: SeenObservation) -> MetricTrackerRlAction | None:
        if not self.asked:
            self.asked = True
            return query_action(dashboard_scan_sql(self.bar))
        if observation.analysis_result is None:
            return None
        rows = (observation.analysis_result or {}).get("rows", [])
        findings = dedupe(self.finding(row) for row in rows)
        return MetricTrackerRlAction(classifications=[report_row(f) for f in findings])

    def finding(self, row: dict[str, Any]) -> Finding:
        k = int(row["k"])
        metric = "sessions" if k == 0 else RATE_COLUMNS[k - 1]
        emptied = float(row["value"]) <= EMPTIED * float(row["baseline"])
        family = DATA_QUALITY if emptied and self.emptied_is_defect else (COUNT_DROP if k == 0 else RATE_DROP)
        return Finding(str(row["date"]), metric, family, segment_of(row), float(row["baseline"]), float(row["value"]))


class EveryDipAgent(DashboardAnalystAgent):
    name = "warehouse_every_dip"
    bar = DIP_Z
    emptied_is_defect = False


class AllDataQualityAgent(DashboardAnalystAgent):
    name = "warehouse_all_data_quality"

    def finding(self, row: dict[str, Any]) -> Finding:
        return replace(super().finding(row), anomaly_type=DATA_QUALITY)


class AggregateExpertAgent(WarehouseExpertAgent):
    """The expert blind to segments: its findings on the whole funnel, values read there."""

    name = "warehouse_aggregate_expert"

    def plan(self, observation: SeenObservation) -> Any:
        return _aggregate(Investigation(self.rules).run())


def _aggregate(procedure: Any) -> Any:
    """The expert's procedure, its findings moved to the whole funnel and their values read there."""
    findings = yield from procedure
    moved = dedupe(replace(f, segment=Segment()) for f in findings)
    if not moved:
        return []
    asked = [(i, f.date, *f.segment.values(), f.step) for i, f in enumerate(moved)]
    rows = yield ("aggregate values", metric_values_sql(ALL_RULES, NO_FIXES, asked))
    values = {row["i"]: row for row in rows}
    return [
        replace(f, observed=_float(values.get(i, {}).get("value")), baseline=_float(values.get(i, {}).get("peers")))
        for i, f in enumerate(moved)
    ]


def _float(value: Any) -> float:
    return float(value) if value is not None else math.nan


for _agent in (DashboardAnalystAgent, EveryDipAgent, AllDataQualityAgent, AggregateExpertAgent):
    register_lab_agent(_agent.name, _agent)
