"""`payload_generator`: several generator calls run and merged into one candidate payload, as a generator
submission would merge them (a preview: nothing is graded)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from metric_tracker_rl.analysis_tools.arguments import PageArgs
from metric_tracker_rl.analysis_tools.generators import generate_rows
from metric_tracker_rl.analysis_tools.registry import REFERENCE_API, page, register_tool
from metric_tracker_rl.catalog.plain_types import MAX_GENERATOR_CALLS, PayloadGeneratorMethod
from metric_tracker_rl.catalog.tiers import COUNTS
from metric_tracker_rl.world.public_episode import PublicEpisode


class PayloadArgs(PageArgs):
    generator_methods: list[PayloadGeneratorMethod] = Field(
        min_length=1, max_length=MAX_GENERATOR_CALLS, description="Generator calls to run and merge"
    )


@register_tool(
    "payload_generator",
    "Run several generator calls and merge their rows into one candidate payload (a preview: nothing is graded).",
    PayloadArgs,
    reads=(COUNTS,),
    kept_for=f"{REFERENCE_API} and the debugger; a model's submit_generators grades the merged rows itself",
    example={
        "generator_methods": [
            {
                "method_name": "get_rate_drop_from_median_rows",
                "metric_name": "app_open_to_order_placed",
                "threshold_multiplier": 3.0,
            }
        ]
    },
)
def payload_generator(episode: PublicEpisode, args: PayloadArgs) -> dict[str, Any]:
    rows, errors = generate_rows(episode, args.generator_methods)
    return {**page(rows, args.offset, args.limit), "errors": errors}
