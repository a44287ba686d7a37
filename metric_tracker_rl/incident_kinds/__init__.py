"""Incident kinds and benign kinds of the segmented tiers: one module per kind, each registering itself by name.

The import order below is the registration order, which a mixed episode's shuffle starts from (changing it changes
episodes). `FRONTIER_INCIDENT_KINDS` and `KIND_FAMILY` derive from the registries; nothing lists a kind by hand.
"""

from metric_tracker_rl.incident_kinds import (  # noqa: I001,F401  (imported to register the kinds, in this order)
    release_regression,
    payment_failure,
    web_tracking_bug,
    country_bots,
    segment_outage,
    level_shift,
    mix_shift,
    segment_demand_swing,
    segment_timing_shift,
)
from metric_tracker_rl.incident_kinds.base import (
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
from metric_tracker_rl.incident_kinds.family_on_segment import FamilyOnSegment

# The kinds frontier draws its incidents from (a curriculum may restrict an episode to some), in registration order.
FRONTIER_INCIDENT_KINDS: tuple[str, ...] = tuple(INCIDENT_KIND_REGISTRY)
# The family each incident kind is reported as.
KIND_FAMILY: dict[str, str] = {name: kind.family for name, kind in INCIDENT_KIND_REGISTRY.items()}

__all__ = ["BENIGN_KIND_REGISTRY", "FRONTIER_INCIDENT_KINDS", "INCIDENT_KIND_REGISTRY", "KIND_FAMILY", "BenignKind",
           "FamilyOnSegment", "IncidentKind", "KindRegistry", "SegmentFluctuation", "SegmentIncident",
           "register_benign_kind", "register_incident_kind"]
