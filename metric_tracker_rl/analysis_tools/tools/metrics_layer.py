"""`metrics_layer`: the warehouse's metrics layer, the definition of every reported number, a few sections at a
time (each names what it shows of how many, and where the rest starts)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from metric_tracker_rl.analysis_tools.arguments import ToolArgs
from metric_tracker_rl.analysis_tools.registry import register_tool
from metric_tracker_rl.catalog.tiers import EVENTS
from metric_tracker_rl.world.metrics_layer import METRICS_LAYER
from metric_tracker_rl.world.public_episode import PublicEpisode

# A page stops before its text passes this many characters (the whole layer fits in one today).
PAGE_CHARS = 4000
SECTIONS = tuple(METRICS_LAYER)


class MetricsLayerArgs(ToolArgs):
    # Literal: the schema lists the sections, and a wrong name is refused with the list.
    section: Literal[SECTIONS] | None = Field(default=None, description="One section; default: all, from offset")  # type: ignore[valid-type]
    offset: int = Field(default=0, ge=0, le=len(SECTIONS) - 1, description="A next_offset")


@register_tool(
    "metrics_layer",
    "The metrics layer: the exact definition of every reported number; by section.",
    MetricsLayerArgs,
    reads=(EVENTS,),
)
def metrics_layer(episode: PublicEpisode, args: MetricsLayerArgs) -> dict[str, Any]:
    if args.section is not None:
        return {"showing": f"1 of {len(SECTIONS)} sections", "definitions": {args.section: METRICS_LAYER[args.section]}}
    shown: dict[str, str] = {}
    budget = PAGE_CHARS
    for name in SECTIONS[args.offset :]:
        budget -= len(name) + len(METRICS_LAYER[name])
        if budget < 0 and shown:
            break
        shown[name] = METRICS_LAYER[name]
    following = args.offset + len(shown)
    result: dict[str, Any] = {
        "showing": f"{args.offset + 1}-{following} of {len(SECTIONS)} sections",
        "definitions": shown,
    }
    if following < len(SECTIONS):
        result["next_offset"] = following
    return result
