"""What the analysis tools may read of an episode: the public data, the calendar notes and the visible task.

This module knows nothing of how an episode was made: it cannot import the injectors, the ground truth or
the grader, and a test walks the tool package's imports to keep it so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from metric_tracker_rl.funnel import FunnelData
from metric_tracker_rl.metrics import MetricPanel


@dataclass(frozen=True)
class Annotation:
    date: str
    kind: str
    note: str

    def as_dict(self) -> dict[str, str]:
        return {"date": self.date, "kind": self.kind, "note": self.note}


@dataclass(frozen=True)
class PublicEpisode:
    """Everything the tools may read. It holds no label and no injection record."""

    data: FunnelData
    panel: MetricPanel
    annotations: tuple[Annotation, ...]
    task: dict  # task_id, objective and the visible config
    # Tables the tools derive from the fields above on first use and keep for the episode (see
    # analysis_tools.registry.derived); nothing else writes here.
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)
