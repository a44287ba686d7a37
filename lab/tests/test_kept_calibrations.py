"""Every kept calibration says which version of each tier it played and what the tier drew then; where either differs
from the tier today the kept figures (and the pages and README rendered from them) no longer describe it, and this
fails naming the command that plays them again."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from lab.calibration.tier_record import stale_records, tier_mechanisms, tier_record
from metric_tracker_rl.catalog.tiers import TIERS
from metric_tracker_rl.catalog.versions import tier_at

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
# Each kept calibration, and how to play it again (the page that names its commands).
KEPT = {
    "calibration.json": "the two runs lab/docs/calibration.md names (`uv run python -m lab.calibration.calibrate "
    "--seeds 200 --workers 2 --output lab/artifacts/calibration.json`, then its `--untuned --merge` run)",
    "abyss_calibration.json": "the `--untuned --difficulties abyss` run lab/docs/calibration.md names",
    "warehouse_calibration.json": "`uv run python -m lab.calibration.warehouse_calibration --out "
    "lab/artifacts/warehouse_calibration.json`",
    "audit_calibration.json": "the run lab/docs/audit.md names (`uv run python -m lab.calibration.audit_calibration "
    "--seeds 16 --skip 2900 --out lab/artifacts/audit_calibration.json`)",
    "audit_calibration_v1.json": "the run of version 1 lab/docs/audit.md names (`uv run python -m "
    "lab.calibration.audit_calibration --seeds 16 --skip 2900 --version 1 --out "
    "lab/artifacts/audit_calibration_v1.json`)",
}
# A calibration kept of an earlier version describes that version, which keeps playing as it was published.
KEPT_VERSION = {"audit_calibration_v1.json": 1}


@pytest.mark.parametrize("name", list(KEPT))
def test_a_kept_calibration_describes_each_tier_as_it_is(name: str) -> None:
    kept = json.loads((ARTIFACTS / name).read_text(encoding="utf-8"))
    again = f"play it again with {KEPT[name]}, then `uv run python -m lab.docs_blocks --write`"
    assert "tiers" in kept, f"{name} does not say which version of which tier it played: {again}"
    stale = stale_records(kept["tiers"], KEPT_VERSION.get(name))
    assert not stale, f"{name} no longer describes its tiers ({'; '.join(stale)}): {again}"


def test_a_tier_that_gains_a_mechanism_or_a_version_makes_its_record_stale() -> None:
    kept = {"audit": tier_record("audit")}
    assert stale_records(kept) == []
    audit = TIERS["audit"]
    assert audit.segmented is not None
    weights = audit.segmented.weights
    grown = replace(
        audit.segmented,
        incident_kinds=(*audit.segmented.incident_kinds, "scratch_kind"),
        weights=None if weights is None else (*weights, ("scratch_kind", 0.01)),  # a weighed mix weighs each kind
    )
    with TIERS.substituted(replace(audit, segmented=grown)):
        assert stale_records(kept) == ["audit: mechanisms added ['scratch_kind'], dropped none"]
    with TIERS.substituted(replace(audit, version=audit.version + 1)):
        assert stale_records(kept) == [f"audit: kept for v{audit.version}, the tier is v{audit.version + 1}"]


def test_a_calibration_of_an_earlier_version_describes_that_version() -> None:
    first = {"audit": tier_record("audit", tier_at("audit", 1))}
    assert stale_records(first, 1) == []
    assert stale_records(first) == [f"audit: kept for v1, the tier is v{TIERS['audit'].version}"]


def test_every_tiers_mechanisms_are_named() -> None:
    for tier in TIERS.values():
        assert tier_mechanisms(tier), tier.name
