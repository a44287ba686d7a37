"""Read-only analysis tools over the public data of an episode (never the labels): one module per tool in
`tools/`, which registers itself on import."""

from metric_tracker_rl.analysis_tools import tools  # noqa: F401  (imports and so registers every tool)
from metric_tracker_rl.analysis_tools.generators import generate_rows, generator_names
from metric_tracker_rl.analysis_tools.registry import (
    MAX_RESULT_ROWS,
    TOOL_REGISTRY,
    ToolOutcome,
    ToolSpec,
    run_tool,
)

GENERATOR_NAMES = generator_names()  # every built-in generator, in registration order


def available_analysis_methods() -> list[ToolSpec]:
    """Every tool, in registration order; each has .name, .description and .openai_schema()."""
    return list(TOOL_REGISTRY.values())


__all__ = [
    "GENERATOR_NAMES",
    "MAX_RESULT_ROWS",
    "TOOL_REGISTRY",
    "ToolOutcome",
    "ToolSpec",
    "available_analysis_methods",
    "generate_rows",
    "run_tool",
]
