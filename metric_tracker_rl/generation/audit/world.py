"""An audit episode's world: the warehouse's, built from the incident kinds and defect mechanisms its split draws
(catalog.tiers.AuditMix.drawn), each as often as the mix weighs it where it weighs them (the split's own
renormalised: a held-out mechanism's weight goes to the others in the train split). An eval episode's first defect
is a held-out one, so every eval episode holds a mechanism no train episode holds; no episode holds more of the
warehouse's listed defects than the mix allows."""

from __future__ import annotations

import functools
from dataclasses import replace

from metric_tracker_rl.catalog.task_splits import mechanism_split
from metric_tracker_rl.catalog.tasks import EpisodeConfig
from metric_tracker_rl.catalog.tiers import WAREHOUSE, AuditMix, Tier
from metric_tracker_rl.generation.audit.standing import faint_rows
from metric_tracker_rl.generation.audit.truth import audit_rows
from metric_tracker_rl.generation.defects import Defect, defect_edits
from metric_tracker_rl.generation.warehouse.truth import ExpectedRow
from metric_tracker_rl.generation.warehouse.world import (
    DefectDraw,
    WarehouseWorld,
    build_warehouse_world,
    warehouse_mix,
)
from metric_tracker_rl.world.metrics_layer import CountedSessions, counted_sessions

# Mechanisms the audit edits in with settings of its own: a bot farm of a small country's web traffic opens enough
# sessions to leave a trace there (the warehouse's keep their default).
AUDIT_EDIT_SETTINGS: dict[str, dict[str, int]] = {"bot_farm": {"least_per_day": 30}}
REDRAWS = 8  # a world whose incident rows still do not all stand after this many draws is kept as it is


def audit_mix(tier: Tier) -> AuditMix:
    mix = tier.segmented
    if not isinstance(mix, AuditMix):
        raise ValueError(f"tier {tier.name!r} is no audit tier")
    return mix


def build_audit_world(tier: Tier, config: EpisodeConfig) -> WarehouseWorld:
    """The world of an audit episode (kept_draw's)."""
    return kept_draw(tier, config)[0]


def kept_draw(tier: Tier, config: EpisodeConfig) -> tuple[WarehouseWorld, CountedSessions, list[ExpectedRow]]:
    """The world of an audit episode: its split's kinds placed, its events drawn, its split's defects edited in;
    drawn again (EpisodeConfig.redrawn) while one of its incident rows does not stand out in its data
    (standing.py), at most REDRAWS times. With it, the counted sessions and expected rows it was judged by, which
    its truth is made of."""
    for draw in range(REDRAWS + 1):
        world = one_draw(tier, config.redrawn(draw) if draw else config)
        counted = counted_sessions(world.log)
        rows = audit_rows(world, audit_mix(tier), counted)
        if not faint_rows(world, counted, rows):
            break
    return world, counted, rows


def audit_edits(defects: tuple[str, ...]) -> dict[str, Defect]:
    """The edits of the mechanisms `defects`, each with the audit's settings where it has some."""
    edits = dict(defect_edits(defects))
    for name, settings in AUDIT_EDIT_SETTINGS.items():
        if name in edits:
            edits[name] = functools.partial(edits[name], **settings)
    return edits


def one_draw(tier: Tier, config: EpisodeConfig) -> WarehouseWorld:
    """The world of one draw of the episode (`config`'s key, which EpisodeConfig.redrawn changes), kept or not."""
    mix = audit_mix(tier)
    split = mechanism_split(config.seed)
    kinds, defects = mix.drawn(split)
    drawn_tier = replace(tier, segmented=replace(mix, incident_kinds=kinds, held_out_kinds=()))
    first = tuple(d for d in mix.held_out_defects if d in defects) if split == "eval" else ()
    listed = warehouse_mix(WAREHOUSE).defects  # the mechanisms the warehouse's brief lists
    draw = DefectDraw(
        audit_edits(defects),
        mix.defect_count,
        first,
        rationed=frozenset(defects) & set(listed),
        ration=mix.listed_defects,
        overlap_share=mix.defect_overlap_share,
        weights=None if mix.weights is None else dict(mix.weights),
    )
    return build_warehouse_world(drawn_tier, config, draw)
