"""The short segment rule: no investigation, one GROUP BY per dimension against the same-weekday median, then
the strongest groups reported as the plainest family of their move; no hourly reading, no context tables. The
calibration's shortcut at deep: what a few lines of SQL get without the expert's search."""

from __future__ import annotations

from typing import Any

from lab.agents.registry import register_lab_agent
from metric_tracker_rl.agents.base import Agent
from metric_tracker_rl.agents.expert_core.cuboid_queries import EVENT_ALIAS, SEARCH_DIMENSIONS
from metric_tracker_rl.agents.expert_core.queries import EVENT_OF, STEPS, query_action
from metric_tracker_rl.agents.expert_core.reports import severity_sql
from metric_tracker_rl.models import MetricSubmissionRow, MetricTrackerRlAction
from metric_tracker_rl.view.observation import SeenObservation
from metric_tracker_rl.world.segments import SEGMENT_FIELDS

RULE_K = 6  # the strongest groups the rule reports
COUNT_SPREAD = 0.1  # a group's daily count varies by about this share of its level (demand), on top of sampling
RULE_ENTITIES: tuple[tuple[str, str, str, str | None], ...] = (
    ("event_count", "app_opens", "o", None),
    *(("conversion_rate", name, EVENT_ALIAS[EVENT_OF[num]], EVENT_ALIAS[EVENT_OF[den]]) for name, num, den in STEPS),
)


def rule_sql(dimension: str, k: int = RULE_K) -> str:
    """One GROUP BY of one dimension: every group's app opens and step conversions per date against the
    same-weekday median of its own, the k strongest moves by their z (sampling plus a day-to-day spread)."""
    fields = SEARCH_DIMENSIONS[dimension]
    listed = ", ".join(fields)
    same = " AND ".join(f"x.{field} = a.{field}" for field in fields)
    # A version's traffic follows its rollout, so only its conversions are compared.
    units = " UNION ALL ".join(
        f"SELECT date, {listed}, '{kind}' entity_type, '{name}' entity_name, "
        + (f"{num} / nullif({den}, 0) v, {den} n FROM s" if den else f"{num} v, NULL n FROM s")
        for kind, name, num, den in RULE_ENTITIES
        if den or dimension != "version"
    )
    return (
        f"WITH s AS (SELECT date, {listed}, sum(app_opens) o, sum(menu_opens) m, sum(product_added_to_cart) c2, "
        f"sum(orders_placed) p2, sum(payment_successful) y FROM daily_by_segment GROUP BY ALL), u AS ({units}), "
        f"b AS (SELECT a.date, {', '.join(f'a.{field}' for field in fields)}, a.entity_type, a.entity_name, "
        "any_value(a.v) observed_value, any_value(a.n) n, median(x.v) baseline_value FROM u a JOIN u x ON "
        f"{same} AND x.entity_name = a.entity_name AND isodow(x.date) = isodow(a.date) AND x.date <> a.date "
        "GROUP BY ALL), "
        "d AS (SELECT *, observed_value - baseline_value delta_value, (observed_value - baseline_value) / "
        f"sqrt(CASE WHEN n IS NULL THEN baseline_value + ({COUNT_SPREAD} * baseline_value) ^ 2 "
        "ELSE baseline_value * greatest(1 - baseline_value, 0.02) / n + (0.02 * baseline_value) ^ 2 END) z FROM b "
        "WHERE baseline_value > 0) "
        f"SELECT date, {listed}, entity_type, entity_name, baseline_value, observed_value, delta_value, "
        f"{severity_sql('abs(delta_value)')} severity, round(z, 1) z FROM d ORDER BY abs(z) DESC LIMIT {k}"
    )


class ShortSegmentRuleAgent(Agent):
    """A short rule, no investigation: one GROUP BY per dimension against the same-weekday median, then the k
    strongest groups (one a date), each reported as the plainest family of its move; no hourly reading, no
    context tables."""

    name = "short_segment_rule"

    def begin(self, observation: SeenObservation) -> None:
        self.plan_calls = [(dimension, query_action(rule_sql(dimension))) for dimension in SEARCH_DIMENSIONS]
        self.rows_seen: list[dict[str, Any]] = []
        self.waiting = False
        self.submitted = False

    def act(self, observation: SeenObservation) -> MetricTrackerRlAction | None:
        if self.waiting:
            self.rows_seen += (observation.analysis_result or {}).get("rows", [])
            self.waiting = False
        if observation.status == "graded" or observation.done or self.submitted:
            return None
        if self.plan_calls:
            self.waiting = True
            return self.plan_calls.pop(0)[1]
        self.submitted = True
        return MetricTrackerRlAction(classifications=self._report())

    def _report(self) -> list[MetricSubmissionRow]:
        chosen: dict[str, dict[str, Any]] = {}
        for row in sorted(self.rows_seen, key=lambda r: -abs(r["z"] or 0.0)):
            if len(chosen) < RULE_K and str(row["date"]) not in chosen:
                chosen[str(row["date"])] = row
        report = []
        for row in chosen.values():
            fell = row["delta_value"] < 0
            family = (
                ("rate_drop_from_median" if fell else "rate_spike_from_median")
                if row["entity_type"] == "conversion_rate"
                else ("absolute_drop_in_event_count" if fell else "absolute_spike_in_event_count")
            )
            method = "compare_rate_to_median" if row["entity_type"] == "conversion_rate" else "compare_count_to_median"
            report.append(
                MetricSubmissionRow(
                    date=str(row["date"]),
                    entity_type=row["entity_type"],
                    entity_name=row["entity_name"],
                    anomaly_type=family,
                    detection_method=method,
                    baseline_value=row["baseline_value"],
                    observed_value=row["observed_value"],
                    delta_value=row["delta_value"],
                    severity=row["severity"],
                    **{field: str(row[field]) for field in SEGMENT_FIELDS if row.get(field) is not None},
                )
            )
        return report


register_lab_agent(ShortSegmentRuleAgent.name, ShortSegmentRuleAgent)
