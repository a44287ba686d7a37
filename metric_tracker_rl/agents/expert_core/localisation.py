"""Localisation: which cuboid a change belongs to. The cuboid scan returns the strongest few cuboids of a date and
step; the ripple check generalises the strongest to a parent (one dimension dropped) for as long as the rest of the
parent moved along with it, as a root cause's change ripples through every leaf it covers, and keeps it where the
rest of the parent stayed put (the change is confined to it)."""

from __future__ import annotations

from typing import Any

from metric_tracker_rl.agents.expert_core.reports import Report
from metric_tracker_rl.world.segments import SEGMENT_FIELDS

# Ripple: the rest of a parent moved the same way with |z| at least RIPPLE_Z and by at least RIPPLE_SHARE of the
# cuboid's own change.
RIPPLE_Z, RIPPLE_SHARE = 2.0, 0.5
OCCAM_Z = 0.5  # a parent within this of the cuboid's |z| explains the fall as well, with one dimension fewer
ARM_FIELDS = ("platform", "country", "channel", "user_type")  # the fields an experiment's arm names


def cuboid_fields(row: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """The segment fields a row names, with their values: its cuboid."""
    return tuple((field, str(row[field])) for field in SEGMENT_FIELDS if row.get(field) is not None)


def parent_cuboids(fields: tuple[tuple[str, str], ...]) -> list[tuple[tuple[str, str], ...]]:
    """The cuboids one dimension coarser (a version dropped alone; a platform dropped with its version)."""
    named = dict(fields)
    parents = []
    for field in named:
        dropped = {field, "app_version"} if field == "platform" else {field}
        parent = tuple((f, v) for f, v in fields if f not in dropped)
        if parent and parent not in parents:
            parents.append(parent)
    return parents


def localise(candidates: list[dict[str, Any]]) -> dict[str, Any]:
    """The root cause among one date and step's strongest cuboids: the strongest, generalised to a parent for as
    long as the rest of the parent moved along with it (the ripple check of the module docstring)."""
    by_fields = {cuboid_fields(row): row for row in candidates}
    best = max(candidates, key=lambda row: abs(row["z"]))
    while True:
        child = cuboid_fields(best)
        rippled = []
        for parent in parent_cuboids(child):
            row = by_fields.get(parent)
            if row is None or not row["z"] or not best["z"]:
                continue
            if row["z"] * best["z"] > 0 and abs(row["z"]) >= abs(best["z"]) - OCCAM_Z:
                rippled.append(row)  # the coarser cuboid explains it as well: the simpler root cause
                continue
            rest_r, rest_e = row["r"] - best["r"], row["e"] - best["e"]
            rest_var = (row["r"] / row["z"]) ** 2 - (best["r"] / best["z"]) ** 2
            if rest_e <= 0 or rest_var <= 0:
                continue
            rest_z, rest_change = rest_r / rest_var**0.5, rest_r / rest_e
            # The rest moved the same way beyond its noise, by a comparable share (or one its noise cannot tell
            # from the cuboid's own).
            comparable = (
                rest_change / best["change"] >= RIPPLE_SHARE
                or abs(rest_change - best["change"]) <= 2 * rest_var**0.5 / rest_e
            )
            if rest_z * best["z"] > 0 and abs(rest_z) >= RIPPLE_Z and comparable:
                rippled.append(row)
        if not rippled:
            return best
        best = max(rippled, key=lambda row: abs(row["z"]))


def nested(report: Report, arm: dict[str, Any]) -> bool:
    """Whether the report's cuboid lies inside the arm's, or the arm's inside the report's (one names every
    field the other names, with the same values)."""
    named = {field: getattr(report, field) for field in ARM_FIELDS if getattr(report, field) is not None}
    arm_named = {field: arm[field] for field in ARM_FIELDS if arm.get(field) is not None}
    return all(named.get(field) == value for field, value in arm_named.items()) or all(
        arm_named.get(field) == value for field, value in named.items()
    )
