"""What the brief publishes about the audit rung: the warehouse's world and tables, and the rules of a finding
(what counts as one, how its row is reported, how it is scored), exactly; never a mechanism (what can go wrong, how
large, how long, where, what trace it leaves). Public text only; a test holds every brief to naming no mechanism
(tests/test_audit_text.py).
"""

from __future__ import annotations

from metric_tracker_rl.catalog.published import COUNT_COLUMNS
from metric_tracker_rl.catalog.tiers import AUDIT, AuditMix
from metric_tracker_rl.world.metrics_layer import RATE_COLUMNS, STEP_SESSION_COLUMNS
from metric_tracker_rl.world.warehouse_brief import (
    DEFECT_FAMILY,
    KIND_RULE,
    WAREHOUSE_BASELINE_RULE,
    WAREHOUSE_CREDIT_RULE,
    WAREHOUSE_GRADING_RULE,
    WAREHOUSE_SEVERITY_RULE,
    warehouse_brief,
)

_MIX = AUDIT.segmented
assert isinstance(_MIX, AuditMix)
MARGIN = _MIX.margin

AUDIT_OBJECTIVE = (
    "Audit eight weeks of a food-ordering app's raw analytics events: find every business incident and every data "
    "defect, and report each finding as the findings rule says. A business incident changes what users do; a data "
    "defect only what is recorded. Every number is the metrics layer's (metrics_layer). Benign changes are not "
    "reported. No list of what can go wrong is given. Some episodes contain no incident.")
SPLIT_NOTE = {"train": "This episode is in the train split.",
              "eval": "This episode is in the eval split: it may hold ways of going wrong that no train episode "
                      "holds."}


def audit_objective(split: str) -> str:
    """The objective of an audit episode of `split` (train or eval): the split is published, what it holds never."""
    return f"{AUDIT_OBJECTIVE} {SPLIT_NOTE[split]}"


DEFECT_METRICS = ("app_opens", *RATE_COLUMNS, "revenue_usd")  # a tie goes to the first
FINDINGS_RULE = (
    f"A finding is a date, a metric and a segment; 'departs' means by more than {MARGIN:.0%} of the value it is "
    "compared with. A business incident (users did something else) is a finding on each date where the metric it "
    "starts at (its root-cause entity, named as its family says) departs from its baseline in the segment that "
    "holds the change: one row per such date. A data defect (only the record changed) is a finding on each date it "
    "covers where, in the segment that holds the defect, a dashboard metric departs from the metrics layer's value "
    "over the events as they would have been recorded without the defect: one row per such date, on the metric "
    f"that departs most (relative: departures within {MARGIN * 100:.0f} points of the largest tie, and a tie goes "
    "to the first of " + ", ".join(DEFECT_METRICS) + ").")
VALUES_RULE = (
    "Every row's values are what the data show, never a repair: observed_value the metrics layer's value of the "
    "metric in the row's segment on its date (the dashboard's where the dashboard has the segment: "
    + ", ".join(f"{count} = {column}" for count, column in zip(COUNT_COLUMNS, STEP_SESSION_COLUMNS, strict=True))
    + "; a rate is its numerator rows' sum over its denominator rows'), baseline_value by baseline_rule over the "
    "same values on the other dates, delta_value and severity by their rules; detection_method query. A defect's row "
    f"has entity_type data_quality, entity_name its metric and anomaly_type {DEFECT_FAMILY}. A date whose metric "
    "has no value in the segment or no baseline is no row.")


def audit_brief(dimensions: tuple[str, ...]) -> dict[str, object]:
    """What the brief publishes about an audit tier's world (the same for every episode of it): the warehouse's
    world, tables and metric names, and the audit's rules of a finding instead of any list of mechanisms."""
    warehouse = warehouse_brief(dimensions)
    return {
        "dimensions": warehouse["dimensions"],
        "tables": warehouse["tables"],
        "metrics_layer": warehouse["metrics_layer"],
        "metric_names": warehouse["metric_names"],
        "findings": FINDINGS_RULE,
        "values": VALUES_RULE,
        "baseline_rule": WAREHOUSE_BASELINE_RULE,
        "severity_rule": WAREHOUSE_SEVERITY_RULE,
        "grading": f"{WAREHOUSE_GRADING_RULE} {KIND_RULE} {WAREHOUSE_CREDIT_RULE}",
    }
