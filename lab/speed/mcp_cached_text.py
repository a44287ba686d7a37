"""The server that `lab.speed.mcp --cached-text` measures: every MCP call answers with the first text its tool
wrote in the process (the same size, none of the work of writing it), so that what an MCP call costs apart from
the model's text can be told from what the text costs. A diagnostic: the answers are wrong for any other call."""

from __future__ import annotations

from collections.abc import Callable

from metric_tracker_rl.models import MetricTrackerRlObservation
from metric_tracker_rl.serving import mcp_surface
from metric_tracker_rl.serving.app import main

Render = Callable[[MetricTrackerRlObservation], str]


def first_text_per_tool(render: Render) -> Render:
    """`render`, run once per tool (and once for results of no tool, such as errors); later calls reuse that text."""
    texts: dict[object, str] = {}

    def cached(observation: MetricTrackerRlObservation) -> str:
        tool = (observation.analysis_result or {}).get("method")
        if tool not in texts:
            texts[tool] = render(observation)
        return texts[tool]

    return cached


if __name__ == "__main__":
    mcp_surface.render_observation = first_text_per_tool(mcp_surface.render_observation)
    main()
