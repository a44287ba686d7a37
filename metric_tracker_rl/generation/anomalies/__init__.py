"""Anomaly families: one module per family, each registering its injector by name (its public facts are its
entry in metric_tracker_rl/catalog/families.py)."""

from metric_tracker_rl.generation.anomalies import (  # noqa: F401  (imported to register the families)
    absolute_drop_in_event_count,
    absolute_spike_in_event_count,
    funnel_break,
    hourly_traffic_mix_shift,
    instrumentation_data_quality_issue,
    rate_drop_from_median,
    rate_spike_from_median,
)
from metric_tracker_rl.generation.anomalies.base import (
    FAMILY_REGISTRY,
    AnomalyFamily,
    ChangePointRecord,
    FamilyRegistry,
    InjectionRecord,
    register_family,
)

__all__ = [
    "FAMILY_REGISTRY",
    "AnomalyFamily",
    "ChangePointRecord",
    "FamilyRegistry",
    "InjectionRecord",
    "register_family",
]
