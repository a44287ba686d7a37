"""The audit's version 2 draws its mechanisms where a systematic analyst and a capable model part: each is aimed at
a share of an episode's expected rows (ROW_SHARES: the separation table's proposal, lab/calibration/separation.py:
more where the expert finds what the model misses, every mechanism still drawn, none past a quarter). A share of
rows is not a chance of being drawn: a lasting incident makes a row a date, a one-date defect one, and a change that
often stays inside the margin makes fewer rows than it is placed. So a mechanism is drawn in proportion to its aimed
share over the rows one placement of it yields (ROWS_PER_PLACEMENT, measured with every mechanism drawn alike on
seeds no task plays: lab/calibration/audit_mix_shares.py), never less than DRAW_FLOOR of the mean, among those its
split draws. The weights shape the order each group is drawn in (incidents, defects), not how many of each an
episode holds. The lab's tests hold both tables to the lab's artifacts. This module imports nothing of the
project."""

from __future__ import annotations

# Each mechanism's aimed share of the expected rows (lab/artifacts/audit_separation.json's weights).
ROW_SHARES: dict[str, float] = {
    "background_opens": 0.0167,
    "batch_replay": 0.0151,
    "bot_farm": 0.0405,
    "checkout_outage_hours": 0.0161,
    "client_sampling": 0.0382,
    "clock_skew": 0.0227,
    "consent_drop": 0.0227,
    "cookie_reset": 0.0094,
    "currency_mislabel": 0.0151,
    "debug_build": 0.0141,
    "device_clock_ahead": 0.0111,
    "event_renamed_silently": 0.0227,
    "experiment_breakage": 0.0117,
    "ingestion_gap": 0.0381,
    "inverted_rate": 0.019,
    "late_load": 0.019,
    "level_shift": 0.0078,
    "member_price_sale": 0.025,
    "menu_prefire": 0.0118,
    "minor_units": 0.0103,
    "missing_rate_rows": 0.0324,
    "onboarding_break": 0.0151,
    "paid_channel_stop": 0.0421,
    "partner_payment_failure": 0.0151,
    "payment_failure": 0.0154,
    "price_rise": 0.0114,
    "promo_surge": 0.0305,
    "pseudo_id_rotation": 0.008,
    "purchase_double_fire": 0.0167,
    "push_delivery_lapse": 0.0076,
    "regional_sign_out": 0.0538,
    "release_regression": 0.0227,
    "retry_duplicates": 0.0227,
    "search_ads_pause": 0.0491,
    "search_outage_hours": 0.0141,
    "segment_outage": 0.0235,
    "session_id_reset": 0.0611,
    "stamped_behind": 0.0473,
    "store_feature": 0.0254,
    "stored_card_challenge": 0.0076,
    "tracking_stopped": 0.0227,
    "transaction_retries": 0.0109,
    "truncated_batches": 0.0424,
    "untagged_load_test": 0.0151,
}
# Each mechanism's expected rows per episode holding it, drawn alike (lab/artifacts/audit_mix_shares.json).
ROWS_PER_PLACEMENT: dict[str, float] = {
    "background_opens": 1.471,
    "batch_replay": 1.0,
    "bot_farm": 2.544,
    "checkout_outage_hours": 0.992,
    "client_sampling": 2.774,
    "clock_skew": 2.0,
    "consent_drop": 3.111,
    "cookie_reset": 2.958,
    "currency_mislabel": 5.477,
    "debug_build": 2.845,
    "device_clock_ahead": 2.0,
    "event_renamed_silently": 4.239,
    "experiment_breakage": 4.939,
    "ingestion_gap": 1.0,
    "inverted_rate": 2.051,
    "late_load": 1.0,
    "level_shift": 1.833,
    "member_price_sale": 2.018,
    "menu_prefire": 2.845,
    "minor_units": 4.39,
    "missing_rate_rows": 1.772,
    "onboarding_break": 1.972,
    "paid_channel_stop": 3.066,
    "partner_payment_failure": 1.0,
    "payment_failure": 0.991,
    "price_rise": 4.349,
    "promo_surge": 2.024,
    "pseudo_id_rotation": 2.757,
    "purchase_double_fire": 2.818,
    "push_delivery_lapse": 2.881,
    "regional_sign_out": 2.972,
    "release_regression": 4.258,
    "retry_duplicates": 2.81,
    "search_ads_pause": 2.97,
    "search_outage_hours": 0.993,
    "segment_outage": 1.21,
    "session_id_reset": 2.708,
    "stamped_behind": 1.922,
    "store_feature": 1.586,
    "stored_card_challenge": 3.157,
    "tracking_stopped": 22.542,
    "transaction_retries": 2.96,
    "truncated_batches": 3.043,
    "untagged_load_test": 1.522,
}
# The least a mechanism's weight may be, against the mean weight: half as often as version 1's draw, which weighs
# every one alike, so that one whose placement makes many rows is still drawn (its share of the rows then past its
# aim).
DRAW_FLOOR = 0.5
_RAW = {name: share / ROWS_PER_PLACEMENT[name] for name, share in sorted(ROW_SHARES.items())}
# How often version 2 draws each mechanism against the others: its aimed share over its rows per placement, floored.
AUDIT_DRAW_WEIGHTS: tuple[tuple[str, float], ...] = tuple(
    (name, max(raw, DRAW_FLOOR * sum(_RAW.values()) / len(_RAW))) for name, raw in _RAW.items()
)
