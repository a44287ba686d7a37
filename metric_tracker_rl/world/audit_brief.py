"""What the brief publishes about the audit rung: the warehouse's world and tables, and the rules of a finding
(what counts as one, how its row is reported, how it is scored), exactly; never a mechanism (what can go wrong, how
large, how long, where, what trace it leaves). Public text only; a test holds every brief to naming no mechanism
(tests/test_audit_tier.py).
"""

from __future__ import annotations

import math
from typing import Any

from metric_tracker_rl.catalog.published import (
    COUNT_COLUMNS,
    FUNNEL_STEPS,
    QUALITY_WEIGHTS,
    REPAIRED_TOLERANCE,
    config_meaning,
)
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
    warehouse_brief_data,
)

_MIX = AUDIT.segmented
assert isinstance(_MIX, AuditMix)
MARGIN = _MIX.margin

AUDIT_OBJECTIVE = (
    "Audit eight weeks of a food-ordering app's raw analytics events: find every business incident and every data "
    "defect, and report each finding as the findings rule says. A business incident changes what users do; a data "
    "defect only what is recorded. Every number is the metrics layer's (metrics_layer). Benign changes are not "
    "reported. No list of what can go wrong is given. Some episodes contain no business incident."
)


def relative_move(value: float, reference: float) -> float:
    """The findings rule's measure of a departure: |value - reference| / |reference|; infinite from a reference of
    zero, and 0 where either has no value (NaN) or is not finite (no number a dashboard shows). The grader's truth
    and the agents read this one definition."""
    if not (math.isfinite(value) and math.isfinite(reference)):
        return 0.0
    if reference == 0:
        return math.inf if value != 0 else 0.0
    return abs(value - reference) / abs(reference)


def departs(value: float, reference: float, margin: float = MARGIN) -> bool:
    """Whether `value` departs from `reference` as the findings rule says: by more than `margin` of it."""
    return relative_move(value, reference) > margin


SPLIT_NOTE = {
    "train": "This episode is in the train split.",
    "eval": "This episode is in the eval split: it may hold ways of going wrong that no train episode holds.",
}


def audit_objective(split: str) -> str:
    """The objective of an audit episode of `split` (train or eval): the split is published, what it holds never."""
    return f"{AUDIT_OBJECTIVE} {SPLIT_NOTE[split]}"


DEFECT_METRICS = ("app_opens", *RATE_COLUMNS, "revenue_usd")  # in the order they are tried
# Which segment a defect's row names (the truth's records hold it; tests/test_text_truth.py checks every defect
# mechanism's against the dashboard rows it changes).
SEGMENT_RULE = (
    "The segment that holds a defect is named by each of platform, app_version and country that every session it "
    "applies to shares, and by no other field: a defect of one app version names its platform and app_version, one "
    "of a whole platform its platform alone, one of a country on every platform its country alone, one of all "
    "traffic no field (a row on another segment earns the overlap credit: grading)."
)
# Which segment a business incident's row names, as the truth's records hold it (tests/test_audit_tier.py checks every
# incident row of a seed sweep against it).
INCIDENT_SEGMENT_FIELDS = ("platform", "app_version", "country", "channel", "user_type")
INCIDENT_SEGMENT_RULE = (
    "The segment that holds a business incident is named by each of "
    + ", ".join(INCIDENT_SEGMENT_FIELDS[:-1])
    + f" and {INCIDENT_SEGMENT_FIELDS[-1]} that every session it changed shares, and by no other field; but a count "
    "spike's row (absolute_spike_in_event_count) names no app_version, channel or user_type, whichever its extra "
    "sessions arrive as."
)
FINDINGS_RULE = (
    f"A finding is a date, a metric and a segment; 'departs' means by more than {MARGIN:.0%} of the value it is "
    "compared with. A business incident (users did something else) is a finding on each date where the metric it "
    "starts at (its root-cause entity, named as its family says) departs from its baseline in the segment that "
    "holds the change: one row per such date. A data defect (only the record changed) is a finding on each date it "
    "covers where, in the segment that holds the defect, a dashboard metric departs from the metrics layer's value "
    "over the events as they would have been recorded without the defect: one row per such date, on the first "
    "metric that departs of " + ", ".join(DEFECT_METRICS) + ". " + INCIDENT_SEGMENT_RULE + " " + SEGMENT_RULE
)
VALUES_RULE = (
    "Every row's values are what the data show, never a repair: observed_value the metrics layer's value of the "
    "metric in the row's segment on its date (the dashboard's where the dashboard has the segment: "
    + ", ".join(f"{count} = {column}" for count, column in zip(COUNT_COLUMNS, STEP_SESSION_COLUMNS, strict=True))
    + "; a rate is its numerator rows' sum over its denominator rows'), baseline_value by baseline_rule over the "
    "same values on the other dates, delta_value and severity by their rules; detection_method query. A defect's row "
    f"has entity_type data_quality, entity_name its metric and anomaly_type {DEFECT_FAMILY}. A date whose metric "
    "has no value in the segment or no baseline is no row."
)


assert REPAIRED_TOLERANCE < MARGIN, "a defect's dashboard value is never within the repaired tolerance"
# What a data defect's row reports beside its values where the tier asks it (AuditMix.repaired_values), and how it is
# graded (grading/grader.py: asks_repaired_value, repaired_in_tolerance).
REPAIRED_VALUE_RULE = (
    "A data defect's row also reports repaired_value: the metric's value in the row's segment on its date over the "
    "events as they would have been recorded without the defect (what the dashboard should have shown, by the "
    "metrics layer's definitions; the value the findings rule measures the defect's departure from). It is right "
    f"within {REPAIRED_TOLERANCE:.0%} of the expected value (|reported - expected| <= {REPAIRED_TOLERANCE:g} x "
    "|expected|, for a rate and a count alike). Where the recorded events cannot tell it (the defect kept some of "
    "the events users sent from ever being recorded) it is not asked: the row earns its share whatever it holds, "
    "null included. A business incident's row has no repaired_value: leave it out (or "
    "null); it is not graded there."
)
REPAIRED_GRADING_RULE = (
    "A data defect's row has four values, repaired_value the fourth (repaired_value): baseline, observed, delta and "
    f"repaired_value earn a quarter each of its {QUALITY_WEIGHTS['values']:g} values credit; every other row's "
    "three, a third each."
)


def audit_brief(dimensions: tuple[str, ...], repaired_values: bool = False) -> dict[str, object]:
    """What the brief publishes about an audit tier's world (the same for every episode of it): the warehouse's
    world, tables and metric names, and the audit's rules of a finding instead of any list of mechanisms; where the
    tier asks a defect's repaired value (`repaired_values`), its rule."""
    warehouse = warehouse_brief(dimensions)
    repaired = {"repaired_value": REPAIRED_VALUE_RULE} if repaired_values else {}
    grading = f"{WAREHOUSE_GRADING_RULE} {KIND_RULE} {WAREHOUSE_CREDIT_RULE}"
    return {
        "dimensions": warehouse["dimensions"],
        "tables": warehouse["tables"],
        "metrics_layer": warehouse["metrics_layer"],
        "metric_names": warehouse["metric_names"],
        "findings": FINDINGS_RULE,
        "values": VALUES_RULE.replace("never a repair", "never a repair (but repaired_value)")
        if repaired_values
        else VALUES_RULE,
        **repaired,
        "baseline_rule": WAREHOUSE_BASELINE_RULE,
        "severity_rule": WAREHOUSE_SEVERITY_RULE,
        "grading": f"{grading} {REPAIRED_GRADING_RULE}" if repaired_values else grading,
    }


# A move of sessions that every channel, user type and hour of a whole platform or country share is a benign change.
NOT_UNIFORM = (
    "a move shared alike by every channel, user type and hour of a whole platform or country is not one "
    "(benign_fluctuations)"
)
# The families a finding is reported as, each defined by what the data show (never by a cause): how a row names
# its anomaly_type and root-cause entity.
AUDIT_FAMILIES: tuple[dict[str, Any], ...] = (
    {
        "family": "absolute_drop_in_event_count",
        "entity_type": "event_count",
        "root_cause_entities": ["app_opens"],
        "definition": "fewer sessions arrive (all day or for some hours) and those who come convert as before: "
        "app_opens departs downward, no rate does; " + NOT_UNIFORM,
    },
    {
        "family": "absolute_spike_in_event_count",
        "entity_type": "event_count",
        "root_cause_entities": ["app_opens"],
        "definition": "more sessions arrive and convert as before: app_opens departs upward, no rate does; "
        + NOT_UNIFORM,
    },
    {
        "family": "funnel_break",
        "entity_type": "funnel_step",
        "root_cause_entities": list(FUNNEL_STEPS),
        "definition": "a step almost stops converting for some hours of the date while the sessions before it "
        "arrive as usual; its daily rate departs as a consequence",
    },
    {
        "family": "rate_drop_from_median",
        "entity_type": "conversion_rate",
        "root_cause_entities": list(FUNNEL_STEPS),
        "definition": "a step converts worse all day",
    },
    {
        "family": "rate_spike_from_median",
        "entity_type": "conversion_rate",
        "root_cause_entities": list(FUNNEL_STEPS),
        "definition": "a step converts better all day",
    },
    {
        "family": DEFECT_FAMILY,
        "entity_type": "data_quality",
        "root_cause_entities": list(DEFECT_METRICS),
        "definition": "a data defect: see findings",
    },
)
# The settings an audit episode shows: none that would name or size a mechanism.
AUDIT_CONFIG_SHOWN = (
    "seed",
    "scenario_family",
    "difficulty",
    "version",
    "task_id",
    "max_steps",
    "standard",
    "held_out",
)


def audit_brief_data(shown: dict[str, Any]) -> dict[str, Any]:
    """A brief's data (view.prompt.brief_data) as the audit states it: the warehouse's, with its families
    defined by what the data show, its settings those that name no mechanism, and no note on what a release can
    do."""
    data = warehouse_brief_data(shown)
    config = {key: value for key, value in data["config"].items() if key in AUDIT_CONFIG_SHOWN}
    meaning = {key: text for key, text in config_meaning(config).items() if key != "scenario_family"}
    return {
        **{key: value for key, value in data.items() if key != "calendar_note_kinds"},
        "config": config,
        "config_meaning": meaning,
        "families": [dict(family) for family in AUDIT_FAMILIES],
    }
