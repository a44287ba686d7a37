"""The audit's version 2 mix (lab/calibration/audit_mix_shares.py): the package's weights are the separation
table's and the measured rows per placement, and as drawn every mechanism is still drawn in its split, no held-out
one in the train split, and none past a quarter of the rows; the page shows the kept measurement."""

from __future__ import annotations

import copy
import json

from lab import docs_blocks
from lab.calibration import audit_mix_shares
from lab.tests.helpers import ROOT
from metric_tracker_rl.catalog.audit_weights import ROW_SHARES, ROWS_PER_PLACEMENT
from metric_tracker_rl.catalog.tiers import AUDIT, AuditMix

KEPT = json.loads(audit_mix_shares.ARTIFACT.read_text(encoding="utf-8"))
MIX = AUDIT.segmented
assert isinstance(MIX, AuditMix)
REGENERATE = (
    "metric_tracker_rl/catalog/audit_weights.py's {name} differs from {source}: paste what "
    "`uv run python -m lab.calibration.audit_mix_shares --constants` prints there, then measure the mix again "
    "(`nice -n 5 uv run python -m lab.calibration.audit_mix_shares --write`, `uv run python -m lab.docs_blocks "
    "--write`) and, while version 2 is a draft, rewrite its fingerprints (`uv run python tests/episode_fingerprints.py "
    "--write`)"
)


def test_the_package_weights_are_a_proposal_of_the_separation_table_and_the_kept_measurements_aim() -> None:
    """Version 2 aims at the shares the separation table proposed when its mix was set: a valid proposal (every
    mechanism, none past a quarter, summing to one), the one the kept measurement aimed at. The table's proposal
    may move since, as the calibration it reads is played again; a new one is a next version's mix."""
    assert set(ROW_SHARES) == set(MIX.incident_kinds) | set(MIX.defects)
    assert max(ROW_SHARES.values()) <= 0.25 and min(ROW_SHARES.values()) > 0
    assert abs(sum(ROW_SHARES.values()) - 1) <= len(ROW_SHARES) * 5e-5
    assert KEPT["target"] == audit_mix_shares.target() == dict(sorted(ROW_SHARES.items())), (
        "the kept measurement aimed at other weights: measure again"
    )
    assert set(audit_mix_shares.proposed()) == set(ROW_SHARES)


def test_the_package_rows_per_placement_are_the_measured_ones() -> None:
    measured = KEPT["rows_per_placement"]["by_mechanism"]
    assert measured == ROWS_PER_PLACEMENT, REGENERATE.format(
        name="ROWS_PER_PLACEMENT", source="lab/artifacts/audit_mix_shares.json's rows_per_placement"
    )
    assert set(measured) == set(MIX.incident_kinds) | set(MIX.defects)


def test_as_drawn_every_mechanism_is_drawn_in_its_split_and_none_past_a_quarter() -> None:
    for split in ("eval", "train"):
        kinds, defects = MIX.drawn(split)
        for version in ("v1", "v2"):
            measured = KEPT["splits"][split][version]
            assert set(measured["episodes_holding"]) == set(kinds) | set(defects), (split, version)
            assert max(measured["shares"].values()) <= 0.25
            assert abs(sum(measured["shares"].values()) - 1) <= len(measured["shares"]) * 5e-5  # their rounding
    assert KEPT["splits"]["eval"]["tasks"]["count"] == KEPT["splits"]["train"]["tasks"]["count"] == 200


def test_the_page_shows_the_kept_measurement() -> None:
    shown = docs_blocks.shown((ROOT / "lab/docs/audit.md").read_text(encoding="utf-8"), "audit-mix-shares")
    assert shown == audit_mix_shares.table(KEPT)
    moved = copy.deepcopy(KEPT)
    moved["splits"]["eval"]["v2"]["shares"]["level_shift"] += 0.01
    assert audit_mix_shares.table(moved) != shown
