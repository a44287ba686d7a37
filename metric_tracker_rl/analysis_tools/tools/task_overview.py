"""`task_overview`: the rules the brief leaves out (what each entity's value means, the baseline, severity and
grading), with no setting that is not set: worth its step."""

from __future__ import annotations

from typing import Any

from metric_tracker_rl.analysis_tools.arguments import NoArgs
from metric_tracker_rl.analysis_tools.registry import register_tool
from metric_tracker_rl.catalog.plain_types import MetricSubmissionRow
from metric_tracker_rl.catalog.published import (
    BASELINE_RULE,
    ENTITY_NAMES,
    ENTITY_VALUE_DEFINITIONS,
    GRADING_RULE,
    OVERLAP_CREDIT_RULE,
    SEVERITY_RULE,
    TWIN_CREDIT_RULE,
)
from metric_tracker_rl.catalog.shown_config import incident_line
from metric_tracker_rl.catalog.tiers import COUNTS, TIERS
from metric_tracker_rl.world.public_episode import PublicEpisode


def grading_rule(difficulty: str) -> str:
    """The grading rule a model reads: at a tier that credits segments by overlap (deep), with that credit, and
    where the tier credits segments its data cannot tell apart (abyss), with that rule."""
    tier = TIERS.get(difficulty)
    if tier is None or tier.segmented is None or tier.segment_credit != "overlap":
        return GRADING_RULE
    twin_z = tier.segmented.twin_z
    twins = "" if twin_z is None else f" {TWIN_CREDIT_RULE.format(twin_z=twin_z)}"
    return (
        f"{GRADING_RULE} At {difficulty} every row may name a segment, and its quality is multiplied by its "
        f"segment credit. {OVERLAP_CREDIT_RULE}{twins}"
    )


@register_tool(
    "task_overview", "Rules the brief leaves out: entity values, baseline, severity, grading.", NoArgs, reads=(COUNTS,)
)
def task_overview(episode: PublicEpisode, args: NoArgs) -> dict[str, Any]:
    """What the brief does not already say (it carries the objective, config, window and families)."""
    return {
        "entities": [
            {"entity_type": t, "entity_names": ",".join(n), "value": ENTITY_VALUE_DEFINITIONS[t]}
            for t, n in ENTITY_NAMES.items()
        ],
        "row_fields": list(MetricSubmissionRow.model_fields),
        "baseline_rule": BASELINE_RULE,
        "severity_rule": SEVERITY_RULE,
        "grading": grading_rule(str(episode.task["config"].get("difficulty", ""))),
        "incidents": incident_line(episode.task["config"]),
        "annotation_count": len(episode.annotations),
    }
