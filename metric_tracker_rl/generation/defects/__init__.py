"""Data defects: changes to what was recorded, not to what users did, edited into a warehouse's event log after it
is drawn. One registry (base.py) holds every mechanism by name; each mechanism is a module of `mechanisms/`, found
by discovery; the seam they share is base.py (what a mechanism is and returns), log_edits.py (where a defect lands,
and the edits that keep a log in order), places.py and session_edits.py.

A tier with raw events names the mechanisms it draws (catalog/tiers.py: WarehouseMix.defects); `check_defect_tiers`
holds every such tier to the registry.
"""

from collections.abc import Mapping

from metric_tracker_rl.catalog.registry import Registry
from metric_tracker_rl.catalog.tiers import TIERS, Tier, WarehouseMix
from metric_tracker_rl.generation.defects import mechanisms  # noqa: F401  (imports and so registers every mechanism)
from metric_tracker_rl.generation.defects.base import (
    AREAS,
    DEFECT_REGISTRY,
    Defect,
    DefectMechanism,
    DefectRecord,
    register_defect,
)


def defect_edits(names: tuple[str, ...]) -> Mapping[str, Defect]:
    """The edits of the mechanisms `names` (registered ones), in that order: what a tier's draw is built from."""
    return {name: DEFECT_REGISTRY[name].apply for name in names}


def check_defect_tiers(tiers: Registry[Tier]) -> None:
    """Every defect a tier with raw events names is registered (tiers.py cannot import the registry itself)."""
    for tier in tiers.values():
        mix = tier.segmented
        if isinstance(mix, WarehouseMix):
            unknown = set(mix.defects) - set(DEFECT_REGISTRY)
            if unknown:
                raise ValueError(f"tier {tier.name!r} names unregistered defect mechanisms: {sorted(unknown)}")


check_defect_tiers(TIERS)

__all__ = [
    "AREAS",
    "DEFECT_REGISTRY",
    "Defect",
    "DefectMechanism",
    "DefectRecord",
    "check_defect_tiers",
    "defect_edits",
    "register_defect",
]
