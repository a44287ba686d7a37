"""An audit episode: its world (world.py) published as the warehouse publishes its own, with the audit's objective
(which says the episode's split) and its truth by the rules of a finding (truth.py)."""

from __future__ import annotations

from metric_tracker_rl.catalog.task_splits import mechanism_split
from metric_tracker_rl.catalog.tasks import EpisodeConfig
from metric_tracker_rl.catalog.tiers import Tier
from metric_tracker_rl.generation.audit.truth import audit_truth
from metric_tracker_rl.generation.audit.world import audit_mix, kept_draw
from metric_tracker_rl.generation.episode import Episode
from metric_tracker_rl.generation.warehouse.episode import public_warehouse
from metric_tracker_rl.world.audit_brief import audit_objective
from metric_tracker_rl.world.funnel import window_calendar


def build_audit_episode(tier: Tier, config: EpisodeConfig) -> Episode:
    """The episode of an audit tier: the warehouse's tables and dimensions, and the truth of the audit's rules."""
    world, counted, rows = kept_draw(tier, config)
    calendar = window_calendar(world.log.num_days)
    public = public_warehouse(world, config, audit_objective(mechanism_split(config.seed)))
    return Episode(config, public, audit_truth(world, audit_mix(tier), calendar.iso_dates, counted, rows))
