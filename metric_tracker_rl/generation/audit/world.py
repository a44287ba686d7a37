"""An audit episode's world: the warehouse's, built from the incident kinds and defect mechanisms its split draws
(catalog.tiers.AuditMix.drawn), each as often as the mix weighs it where it weighs them (the split's own
renormalised: a held-out mechanism's weight goes to the others in the train split). An eval episode's first defect
is a held-out one, so every eval episode holds a mechanism no train episode holds; no episode holds more of the
warehouse's listed defects than the mix allows."""

from __future__ import annotations

from dataclasses import replace

from metric_tracker_rl.catalog.task_splits import mechanism_split
from metric_tracker_rl.catalog.tasks import EpisodeConfig
from metric_tracker_rl.catalog.tiers import WAREHOUSE, AuditMix, Tier
from metric_tracker_rl.generation.defects import defect_edits
from metric_tracker_rl.generation.warehouse.world import (
    DefectDraw,
    WarehouseWorld,
    build_warehouse_world,
    warehouse_mix,
)


def audit_mix(tier: Tier) -> AuditMix:
    mix = tier.segmented
    if not isinstance(mix, AuditMix):
        raise ValueError(f"tier {tier.name!r} is no audit tier")
    return mix


def build_audit_world(tier: Tier, config: EpisodeConfig) -> WarehouseWorld:
    """The world of an audit episode: its split's kinds placed, its events drawn, its split's defects edited in."""
    mix = audit_mix(tier)
    split = mechanism_split(config.seed)
    kinds, defects = mix.drawn(split)
    drawn_tier = replace(tier, segmented=replace(mix, incident_kinds=kinds, held_out_kinds=()))
    first = tuple(d for d in mix.held_out_defects if d in defects) if split == "eval" else ()
    listed = warehouse_mix(WAREHOUSE).defects  # the mechanisms the warehouse's brief lists
    draw = DefectDraw(
        defect_edits(defects),
        mix.defect_count,
        first,
        rationed=frozenset(defects) & set(listed),
        ration=mix.listed_defects,
        overlap_share=mix.defect_overlap_share,
        weights=None if mix.weights is None else dict(mix.weights),
    )
    return build_warehouse_world(drawn_tier, config, draw)
