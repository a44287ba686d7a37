"""The data-defect mechanisms, one module each: a module defines its mechanism whole (its constants, its edit of the
event log and its record) and registers it in DEFECT_REGISTRY (base.py) when imported, by the name and area its
`register_defect` gives it. It imports the seam beside this package (base.py, log_edits.py, places.py,
session_edits.py) and the public world, never the rest of the generator.

Importing this package imports every module in it, in name order: a new mechanism is one new module here (and the
tiers that draw it name it, in catalog/tiers.py, so adding one moves no episode of a tier that does not).
"""

from __future__ import annotations

from metric_tracker_rl.catalog.registry import import_package_modules


def mechanism_module_names() -> tuple[str, ...]:
    """Every mechanism module of this package, in name order (importing any not imported yet)."""
    return import_package_modules(__name__, __path__)


mechanism_module_names()
