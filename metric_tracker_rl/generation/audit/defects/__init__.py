"""The data-defect mechanisms the audit draws from: the warehouse's eight (generation/warehouse/defects.py) and one
module per mechanism beside them, each registering itself by name. `check_audit_tiers` holds every tier's AuditMix
to the registry."""

from metric_tracker_rl.catalog.registry import Registry
from metric_tracker_rl.catalog.tiers import TIERS, AuditMix, Tier
from metric_tracker_rl.generation.audit.defects.base import DEFECT_REGISTRY, DefectMechanism, register_defect
from metric_tracker_rl.generation.warehouse.defects import DEFECTS

WAREHOUSE_AREAS = {"retry_duplicates": "sdk", "tracking_stopped": "sdk", "consent_drop": "identity",
                   "bot_farm": "traffic", "clock_skew": "time", "late_load": "pipeline", "transaction_retries": "sdk",
                   "currency_mislabel": "join"}
for _name, _apply in DEFECTS.items():
    DEFECT_REGISTRY.register(DefectMechanism(_name, _apply, WAREHOUSE_AREAS[_name]))

# Each mechanism's own module registers it when imported, in this order (its line below).
from metric_tracker_rl.generation.audit.defects import session_id_reset  # noqa: E402,F401,I001
from metric_tracker_rl.generation.audit.defects import pseudo_id_rotation  # noqa: E402,F401,I001
from metric_tracker_rl.generation.audit.defects import client_sampling  # noqa: E402,F401,I001
from metric_tracker_rl.generation.audit.defects import truncated_batches  # noqa: E402,F401,I001
from metric_tracker_rl.generation.audit.defects import background_opens  # noqa: E402,F401,I001
from metric_tracker_rl.generation.audit.defects import cookie_reset  # noqa: E402,F401,I001
from metric_tracker_rl.generation.audit.defects import debug_build  # noqa: E402,F401,I001
from metric_tracker_rl.generation.audit.defects import batch_replay  # noqa: E402,F401,I001
from metric_tracker_rl.generation.audit.defects import ingestion_gap  # noqa: E402,F401,I001
from metric_tracker_rl.generation.audit.defects import device_clock_ahead  # noqa: E402,F401,I001
from metric_tracker_rl.generation.audit.defects import missing_rate_rows  # noqa: E402,F401,I001
from metric_tracker_rl.generation.audit.defects import minor_units  # noqa: E402,F401,I001
from metric_tracker_rl.generation.audit.defects import untagged_load_test  # noqa: E402,F401,I001
from metric_tracker_rl.generation.audit.defects import event_renamed_silently  # noqa: E402,F401,I001


def check_audit_tiers(tiers: Registry[Tier]) -> None:
    """Every defect an audit tier names is registered."""
    for tier in tiers.values():
        mix = tier.segmented
        if isinstance(mix, AuditMix):
            unknown = set(mix.defects) - set(DEFECT_REGISTRY)
            if unknown:
                raise ValueError(f"tier {tier.name!r} names unregistered defect mechanisms: {sorted(unknown)}")


check_audit_tiers(TIERS)

__all__ = ["DEFECT_REGISTRY", "DefectMechanism", "check_audit_tiers", "register_defect"]
