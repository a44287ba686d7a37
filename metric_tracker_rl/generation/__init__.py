"""Behind the truth wall: how an episode and its ground truth are made. Imports the catalog and the world; the tools and
the view never import it.

Every tier is built by `build_episode(config)`. The tier's config (catalog/tiers.py) names its generator: the
aggregate generator (aggregate.py) with the anomaly families' injectors (anomalies/) for an aggregate tier, the
segmented generator (segmented.py) with the incident and benign kinds (kinds/) and the plan they edit
(segment_plan.py) for a segmented one, and for a tier of raw events (the warehouse) the same world drawn as events
with data defects (warehouse/, defects/). What both make, an episode and its truth, is episode.py's.
"""

from metric_tracker_rl.catalog.tasks import EpisodeConfig
from metric_tracker_rl.catalog.tiers import EVENTS, AuditMix
from metric_tracker_rl.generation.aggregate import build_aggregate_episode
from metric_tracker_rl.generation.anomalies import FAMILY_REGISTRY, FamilyRegistry
from metric_tracker_rl.generation.audit.episode import build_audit_episode
from metric_tracker_rl.generation.episode import Episode
from metric_tracker_rl.generation.segmented import build_segmented_episode
from metric_tracker_rl.generation.warehouse.episode import build_warehouse_episode


def build_episode(config: EpisodeConfig, families: FamilyRegistry = FAMILY_REGISTRY) -> Episode:
    """The episode a config names at its tier (the Tier it carries, a registered one or a scratch one): the tier's
    config says what is drawn, from the kinds or families it names (never from whatever else is registered).
    `families`: the injectors an aggregate tier's incidents are drawn from (a segmented tier's kinds use the
    published families)."""
    tier = config.tier
    if isinstance(tier.segmented, AuditMix):  # the warehouse's world with more mechanisms, and no catalogue
        return build_audit_episode(tier, config)
    if tier.data == EVENTS:  # a segmented world published as a raw event export
        return build_warehouse_episode(tier, config)
    if tier.segmented is not None:
        return build_segmented_episode(tier, config)
    return build_aggregate_episode(tier, config, families)


__all__ = ["build_episode"]
