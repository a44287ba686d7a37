"""Incident kinds and benign kinds of the segmented tiers: one module per kind, each registering itself by name.

The import order below is the registration order, which a mixed episode's shuffle starts from (changing it changes
episodes). `FRONTIER_INCIDENT_KINDS` and `KIND_FAMILY` derive from the registries; nothing lists a kind by hand.
"""

from metric_tracker_rl.generation.kinds import (  # noqa: I001,F401  (imported to register the kinds, in this order)
    release_regression,
    payment_failure,
    web_tracking_bug,
    country_bots,
    segment_outage,
    level_shift,
    mix_shift,
    segment_demand_swing,
    segment_timing_shift,
    partner_payment_failure,
    experiment_effect,
    experiment_breakage,
    country_holiday,
    campaign,
)
from metric_tracker_rl.generation.kinds.base import (
    BENIGN_KIND_REGISTRY,
    INCIDENT_KIND_REGISTRY,
    BenignKind,
    IncidentKind,
    KindRegistry,
    SegmentFluctuation,
    SegmentIncident,
    register_benign_kind,
    register_incident_kind,
)
from metric_tracker_rl.generation.kinds.family_on_segment import FamilyOnSegment
from metric_tracker_rl.spec.tiers import TIERS, Tier, TierCatalog


def incident_kinds_of(tier: Tier) -> tuple[str, ...]:
    """The incident kinds a segmented tier draws from: the ones its config names, or every registered kind (in
    registration order)."""
    assert tier.segmented is not None, f"tier {tier.name!r} draws no incident kinds"
    return tier.segmented.incident_kinds or tuple(INCIDENT_KIND_REGISTRY)


def benign_kinds_of(tier: Tier) -> tuple[str, ...]:
    """The benign kinds a segmented tier draws its look-alikes from (its config's, or every registered one)."""
    assert tier.segmented is not None, f"tier {tier.name!r} draws no benign kinds"
    return tier.segmented.benign_kinds or tuple(BENIGN_KIND_REGISTRY)


def check_tiers(tiers: TierCatalog) -> None:
    """Every kind a tier names is registered, and a kind that writes context tables is drawn only where the tier
    has them (tiers.py cannot import the registry to check it itself)."""
    for tier in tiers.values():
        if tier.segmented is None:
            continue
        registries: tuple[tuple[tuple[str, ...], KindRegistry], ...] = (
            (incident_kinds_of(tier), INCIDENT_KIND_REGISTRY), (benign_kinds_of(tier), BENIGN_KIND_REGISTRY))
        for names, registry in registries:
            unknown = set(names) - set(registry)
            if unknown:
                raise ValueError(f"tier {tier.name!r} names unregistered {registry.what}s: {sorted(unknown)}")
            needing = [name for name in names if registry[name].needs_context]
            if needing and not tier.segmented.context:
                raise ValueError(f"tier {tier.name!r} has no context tables for {sorted(needing)}")


check_tiers(TIERS)
# The kinds frontier draws its incidents from (a curriculum may restrict an episode to some), in registration order.
FRONTIER_INCIDENT_KINDS: tuple[str, ...] = incident_kinds_of(TIERS["frontier"])
# The family each incident kind is reported as.
KIND_FAMILY: dict[str, str] = {name: kind.family for name, kind in INCIDENT_KIND_REGISTRY.items()}

__all__ = ["BENIGN_KIND_REGISTRY", "FRONTIER_INCIDENT_KINDS", "INCIDENT_KIND_REGISTRY", "KIND_FAMILY", "BenignKind",
           "FamilyOnSegment", "IncidentKind", "KindRegistry", "SegmentFluctuation", "SegmentIncident",
           "benign_kinds_of", "check_tiers", "incident_kinds_of", "register_benign_kind", "register_incident_kind"]
