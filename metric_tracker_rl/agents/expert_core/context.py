"""Context: what the team knows besides the counts (the experiments, campaigns and holidays tables, one get_context
each, or at abyss one query: CONTEXT_SQL) explains a move as benign. An experiment's intended effect on its target
step in its arm during its dates is not an incident, nor is the traffic a country's holiday or a channel x country
campaign moved. Context never adds a finding the data does not show (so the partner status log, which explains
payment incidents and finds none, is not read)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from metric_tracker_rl.agents.expert_core.localisation import ARM_FIELDS, cuboid_fields, nested
from metric_tracker_rl.agents.expert_core.reports import Report, segment_of
from metric_tracker_rl.world.segments import SEGMENT_FIELDS

# The context tables that can explain a move as benign (the partner log explains a payment incident, it never
# finds one, so it is not read).
EXPLAINING_TABLES = ("experiments", "campaigns", "holidays")
ARM_SHARE = 0.5
# The three tables in one query (abyss), without the names the expert never reads: a row is an experiment's where
# it names a target step, a holiday's where it has a date, else a campaign's (context_tables tells them apart).
CONTEXT_SQL = (
    "SELECT * EXCLUDE (experiment) FROM experiments UNION ALL BY NAME "
    "SELECT * EXCLUDE (campaign) FROM campaigns UNION ALL BY NAME SELECT * EXCLUDE (name) FROM holidays"
)
CONTEXT_COLUMNS = {
    "experiments": ("platform", "country", "channel", "user_type", "target_step", "start_date", "end_date"),
    "campaigns": ("channel", "country", "start_date", "end_date"),
    "holidays": ("date", "country"),
}


def context_tables(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """CONTEXT_SQL's rows as the three tables' (each with the columns the expert reads), in the order read."""

    def table(row: dict[str, Any]) -> str:
        return (
            "experiments"
            if row.get("target_step") is not None
            else "holidays"
            if row.get("date") is not None
            else "campaigns"
        )

    return {
        name: [{column: row.get(column) for column in columns} for row in rows if table(row) == name]
        for name, columns in CONTEXT_COLUMNS.items()
    }


def beyond_arms(experiments: list[dict[str, Any]], row: dict[str, Any], candidates: list[dict[str, Any]]) -> bool:
    """Whether a fall localised on a cuboid wider than an experiment's arm (on its target step and dates) is
    more than the arm's intended effect: the arm's own cuboid, where the scan returned it, holds under
    ARM_SHARE of the fall's residual, or is not among its strongest cuboids (the rest of the cuboid fell too: an
    incident beside the experiment)."""
    date, step = str(row["date"]), row["entity_name"]
    for experiment in experiments:
        arm = tuple(
            (field, str(experiment[field]))
            for field in SEGMENT_FIELDS
            if field in ARM_FIELDS and experiment.get(field) is not None
        )
        if (
            step != experiment["target_step"]
            or not experiment["start_date"] <= date <= experiment["end_date"]
            or arm == cuboid_fields(row)
            or not set(cuboid_fields(row)) < set(arm)
        ):
            continue
        own = next((c for c in candidates if cuboid_fields(c) == arm), None)
        if own is None or (row["r"] and own["r"] / row["r"] < ARM_SHARE):
            return True
    return False


def explained(report: Report, context: Mapping[str, list[dict[str, Any]]], beyond: set[tuple[Any, ...]]) -> bool:
    """Whether a context row explains the move as a benign change: an experiment's intended effect (its
    target step, inside its arm or its arm inside the cuboid, on its dates), or traffic a country's holiday or
    a campaign in that channel and country moved on its dates (counts and hours, never a leaf's conversion).
    `context`: the tables by name; `beyond`: the (date, step, segment) falls that are more than an arm's effect."""
    past_the_arm = (report.date, report.entity_name, segment_of(asdict(report))) in beyond
    for experiment in context["experiments"]:
        if (
            not past_the_arm
            and report.entity_name == experiment["target_step"]
            and experiment["start_date"] <= report.date <= experiment["end_date"]
            and nested(report, experiment)
        ):
            return True
    if report.entity_name != "app_opens":
        return False
    if any(
        holiday["date"] == report.date and (holiday["country"] is None or holiday["country"] == report.country)
        for holiday in context["holidays"]
    ):
        return True
    return any(
        campaign["start_date"] <= report.date <= campaign["end_date"]
        and report.country == campaign["country"]
        and report.channel in (None, campaign["channel"])
        for campaign in context["campaigns"]
    )
