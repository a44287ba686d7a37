"""An audit episode's world: the warehouse's, built from the incident kinds and defect mechanisms its split draws
(catalog.tiers.AuditMix.drawn), each as often as the mix weighs it where it weighs them (the split's own
renormalised: a held-out mechanism's weight goes to the others in the train split). An eval episode's first defect
is a held-out one, so every eval episode holds a mechanism no train episode holds; no episode holds more of the
warehouse's listed defects than the mix allows."""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Any

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

# Mechanisms the audit edits in with settings of its own, by the version that set them (a version edits with the
# latest set at or before it; the warehouse's keep their defaults). Version 1: a bot farm of a small country's web
# traffic opens enough sessions to leave a trace there. Version 2, which draws these two more often, sizes them by
# their segment's own sessions too, so that their trace stands however big the segment (a floor alone leaves none
# where the segment has more sessions than it): the bots open one and a half times the segment's sessions of a date
# (their idle sessions' share), the load test runs one to two times them, most from one device (whose share stands
# above the segment's busiest customers' however many devices run it, where they hold the most: android in Japan).
AUDIT_EDIT_SETTINGS: dict[int, dict[str, dict[str, Any]]] = {
    1: {"bot_farm": {"least_per_day": 30}},
    2: {
        "bot_farm": {"least_per_day": 30, "share": 1.5},
        "untagged_load_test": {"share": (1.0, 2.0), "lead_share": 0.85},
    },
}
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


def edit_settings(version: int) -> dict[str, dict[str, Any]]:
    """The audit's edit settings at `version`: the latest set at or before it."""
    return AUDIT_EDIT_SETTINGS[max(set_at for set_at in AUDIT_EDIT_SETTINGS if set_at <= version)]


def audit_edits(defects: tuple[str, ...], version: int) -> dict[str, Defect]:
    """The edits of the mechanisms `defects`, each with the audit's settings at `version` where it has some."""
    edits = dict(defect_edits(defects))
    for name, settings in edit_settings(version).items():
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
        audit_edits(defects, tier.version),
        mix.defect_count,
        first,
        rationed=frozenset(defects) & set(listed),
        ration=mix.listed_defects,
        overlap_share=mix.defect_overlap_share,
        weights=None if mix.weights is None else dict(mix.weights),
    )
    return build_warehouse_world(drawn_tier, config, draw)
