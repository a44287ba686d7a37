"""The parent reporter: the deep expert reporting every segment of three fields or more on a parent one field
coarser, without checking whether the data can tell the two apart. At abyss a row on a segment one field from its
incident's is credited as the incident's own where the traffic between them could not show the fall; this agent
bets that it never can. A tier whose credit reads the data keeps it below the expert."""

from __future__ import annotations

from dataclasses import replace

from lab.agents.registry import register_lab_agent
from metric_tracker_rl.agents.deep_expert import DeepExpertAgent
from metric_tracker_rl.agents.expert_core.reports import Report
from metric_tracker_rl.world.segments import SEGMENT_FIELDS

# The field the parent leaves out: the last one named in this order (a version keeps its platform).
DROPPED_FIRST = ("user_type", "channel", "app_version", "country", "platform")


def parent_of(report: Report) -> Report:
    """The report on its segment with one field left out, where it names three dimensions or more (a version
    with its platform counts once); else the report as it is."""
    named = [field for field in SEGMENT_FIELDS if getattr(report, field) is not None]
    depth = len(named) - ("app_version" in named and "platform" in named)
    if depth < 3:
        return report
    dropped = next(field for field in DROPPED_FIRST if field in named)
    return replace(report, **{dropped: None})


class ParentReporterAgent(DeepExpertAgent):
    """The deep expert, its three-field segments reported on a two-field parent (read from the parent's data)."""

    name = "parent_reporter"

    def _decide(self) -> list[Report]:
        return [parent_of(report) for report in super()._decide()]


register_lab_agent(ParentReporterAgent.name, ParentReporterAgent)
