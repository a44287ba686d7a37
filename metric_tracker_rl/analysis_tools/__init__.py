"""Read-only analysis tools over the public data of an episode (never the labels)."""

from metric_tracker_rl.analysis_tools import inspection  # noqa: I001,F401  (registration order = listing order)
from metric_tracker_rl.analysis_tools import comparisons, generators, segment_tools, sql  # noqa: F401
from metric_tracker_rl.analysis_tools.generators import GENERATOR_NAMES, generate_rows
from metric_tracker_rl.analysis_tools.registry import (
    MAX_RESULT_ROWS,
    TOOL_REGISTRY,
    ToolOutcome,
    ToolSpec,
    run_tool,
)


def available_analysis_methods() -> list[ToolSpec]:
    """Every tool, in registration order; each has .name, .description and .openai_schema()."""
    return list(TOOL_REGISTRY.values())


__all__ = ["GENERATOR_NAMES", "MAX_RESULT_ROWS", "TOOL_REGISTRY", "ToolOutcome", "ToolSpec",
           "available_analysis_methods", "generate_rows", "run_tool"]
