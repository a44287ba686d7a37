"""What a data-defect mechanism is, and the one registry that holds every mechanism by name.

A mechanism edits an event log after it is drawn (a change to what was recorded, never to what users did) and
returns the record the truth is built from: its dates, the segment it is confined to, the dashboard metric it
corrupts and a description for the episode's record. The warehouse's truth reads the metric from the record; the
audit's reads which metrics moved, and by how much, from the data (audit/truth.py). `area` says which part of a real
analytics stack fails this way (for the documentation's table and the calibration's per-area recall), never shown
to an agent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from metric_tracker_rl.catalog.registry import Registry
from metric_tracker_rl.world.events import EventLog
from metric_tracker_rl.world.segments import Segment

AREAS = ("sdk", "pipeline", "identity", "time", "join", "traffic", "experiment")


@dataclass(frozen=True)
class DefectRecord:
    """What a defect did: its kind, its reporting dates (days from the window's first), the segment it touched,
    the dashboard metric it corrupts, and a description for the episode's record."""

    kind: str
    days: tuple[int, ...]
    segment: Segment
    metric: str
    description: str


Defect = Callable[[EventLog, np.random.Generator], tuple[EventLog, DefectRecord]]


@dataclass(frozen=True)
class DefectMechanism:
    """A registered data defect: its name, the edit it makes, the area of the stack that fails, and whether the
    events as recorded can tell the value it hid (`repairable`: False where it kept some of the events users sent
    from ever being recorded; the audit asks no repaired value of such a defect's rows)."""

    name: str
    apply: Defect
    area: str
    repairable: bool = True


def _check(mechanism: DefectMechanism) -> None:
    if mechanism.area not in AREAS:
        raise ValueError(f"defect {mechanism.name!r}: area must be one of {AREAS}, got {mechanism.area!r}")


DEFECT_REGISTRY: Registry[DefectMechanism] = Registry("defect mechanism", check=_check)


def register_defect(name: str, area: str, *, repairable: bool = True) -> Callable[[Defect], Defect]:
    """Register the decorated edit as the defect mechanism `name` of `area` (see DefectMechanism for
    `repairable`); the edit itself is returned."""

    def register(apply: Defect) -> Defect:
        DEFECT_REGISTRY.register(DefectMechanism(name, apply, area, repairable))
        return apply

    return register
