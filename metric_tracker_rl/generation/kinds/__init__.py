"""Incident kinds and benign kinds of the segmented tiers: one module per kind, each registering itself by name.

Importing this package imports every module in it: those of LISTING first, in that order (the registries' order),
then any other in name order, so a new kind is one new module here. Each segmented tier names the kinds it draws
from, in the order a mixed episode's shuffle starts from (tiers.py), so registering a kind changes no tier's
episodes; `check_tiers` checks that every kind a tier names is registered. `KIND_FAMILY` derives from the registry.
"""

from metric_tracker_rl.catalog.registry import Registry, import_package_modules
from metric_tracker_rl.catalog.tiers import TIERS, Tier
from metric_tracker_rl.generation.kinds.base import (
    BENIGN_KIND_REGISTRY,
    INCIDENT_KIND_REGISTRY,
    BenignKind,
    IncidentKind,
    SegmentFluctuation,
    SegmentIncident,
    check_kind,
    date_entities,
    register_benign_kind,
    register_incident_kind,
)
from metric_tracker_rl.generation.kinds.family_on_segment import FamilyOnSegment

LISTING = (
    "release_regression",
    "payment_failure",
    "web_tracking_bug",
    "country_bots",
    "segment_outage",
    "level_shift",
    "mix_shift",
    "segment_demand_swing",
    "segment_timing_shift",
    "partner_payment_failure",
    "experiment_effect",
    "experiment_breakage",
    "country_holiday",
    "campaign",
    "persistent_regression",
    "leaf_blip",
    "checkout_outage_hours",
    "onboarding_break",
    "paid_channel_stop",
    "price_rise",
    "promo_surge",
    "store_feature",
    "search_outage_hours",
    "push_delivery_lapse",
    "stored_card_challenge",
    "member_price_sale",
)
import_package_modules(__name__, __path__, LISTING)


def check_tiers(tiers: Registry[Tier]) -> None:
    """Every kind a tier names is registered, and a kind that writes context tables is drawn only where the tier
    has them (tiers.py cannot import the registry to check it itself)."""
    for tier in tiers.values():
        if tier.segmented is None:
            continue
        registries: tuple[tuple[tuple[str, ...], Registry[IncidentKind] | Registry[BenignKind]], ...] = (
            (tier.incident_kinds, INCIDENT_KIND_REGISTRY),
            (tier.benign_kinds, BENIGN_KIND_REGISTRY),
        )
        for names, registry in registries:
            unknown = set(names) - set(registry)
            if unknown:
                raise ValueError(f"tier {tier.name!r} names unregistered {registry.what}s: {sorted(unknown)}")
            needing = [name for name in names if registry[name].needs_context]
            if needing and not tier.segmented.context:
                raise ValueError(f"tier {tier.name!r} has no context tables for {sorted(needing)}")


check_tiers(TIERS)
# The family each incident kind is reported as.
KIND_FAMILY: dict[str, str] = {name: kind.family for name, kind in INCIDENT_KIND_REGISTRY.items()}

__all__ = [
    "BENIGN_KIND_REGISTRY",
    "INCIDENT_KIND_REGISTRY",
    "KIND_FAMILY",
    "BenignKind",
    "FamilyOnSegment",
    "IncidentKind",
    "SegmentFluctuation",
    "SegmentIncident",
    "check_kind",
    "check_tiers",
    "date_entities",
    "register_benign_kind",
    "register_incident_kind",
]
