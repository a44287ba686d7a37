"""`list_entities`: the entity types, their valid names and what each value measures."""

from __future__ import annotations

from typing import Any

from metric_tracker_rl.analysis_tools.arguments import NoArgs
from metric_tracker_rl.analysis_tools.registry import REFERENCE_API, register_tool
from metric_tracker_rl.catalog.published import ENTITY_NAMES, ENTITY_VALUE_DEFINITIONS
from metric_tracker_rl.catalog.tiers import COUNTS
from metric_tracker_rl.world.public_episode import PublicEpisode


@register_tool(
    "list_entities",
    "Entity types, their valid entity names and what each value measures.",
    NoArgs,
    reads=(COUNTS,),
    kept_for=f"{REFERENCE_API} and the debugger; a model reads the entities from task_overview",
)
def list_entities(episode: PublicEpisode, args: NoArgs) -> dict[str, Any]:
    return {
        "entities": [
            {"entity_type": t, "entity_names": list(n), "value": ENTITY_VALUE_DEFINITIONS[t]}
            for t, n in ENTITY_NAMES.items()
        ]
    }
