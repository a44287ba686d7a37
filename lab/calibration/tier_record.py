"""What a kept calibration records of each tier it played: the version and the mechanisms the tier drew then, so a
test can tell a kept figure that no longer describes the tier (lab/tests/test_kept_calibrations.py).

A tier's mechanisms are the names its mix draws from: its incident and benign kinds and its data defects (held-out
ones included), or at an aggregate tier the anomaly families, distractors and fluctuations."""

from __future__ import annotations

from typing import Any

from metric_tracker_rl.catalog.published import ANOMALY_TYPES
from metric_tracker_rl.catalog.tiers import TIERS, Tier
from metric_tracker_rl.catalog.versions import tier_at


def tier_mechanisms(tier: Tier) -> list[str]:
    """Every mechanism name the tier draws from, sorted."""
    if tier.segmented is None:
        assert tier.aggregate is not None
        names = (*ANOMALY_TYPES, *tier.aggregate.distractors, *tier.aggregate.fluctuations)
    else:
        mix = tier.segmented
        names = (*mix.incident_kinds, *mix.benign_kinds, *getattr(mix, "defects", ()))
        names += (*getattr(mix, "held_out_kinds", ()), *getattr(mix, "held_out_defects", ()))
    return sorted(set(names))


def tier_record(difficulty: str, tier: Tier | None = None) -> dict[str, Any]:
    """What a calibration keeps of the tier it played (its latest unless `tier` is given)."""
    tier = TIERS[difficulty] if tier is None else tier
    return {"version": tier.version, "mechanisms": tier_mechanisms(tier)}


def stale_records(kept: dict[str, dict[str, Any]], version: int | None = None) -> list[str]:
    """Each tier whose record in a kept calibration differs from the tier today, with what differs: from its latest
    version, or from `version` (a calibration kept of an earlier version, which keeps playing as it was)."""
    found = []
    for difficulty, record in kept.items():
        today = tier_record(difficulty, None if version is None else tier_at(difficulty, version))
        if record.get("version") != today["version"]:
            found.append(f"{difficulty}: kept for v{record.get('version')}, the tier is v{today['version']}")
        added = sorted(set(today["mechanisms"]) - set(record.get("mechanisms", ())))
        dropped = sorted(set(record.get("mechanisms", ())) - set(today["mechanisms"]))
        if added or dropped:
            found.append(f"{difficulty}: mechanisms added {added or 'none'}, dropped {dropped or 'none'}")
    return found
