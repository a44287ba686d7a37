from metric_tracker_rl.catalog.families import PUBLISHED_FAMILIES
from metric_tracker_rl.catalog.published import FUNNEL_STEPS
from metric_tracker_rl.generation.anomalies.base import register_family
from metric_tracker_rl.generation.anomalies.rate_shift import RateShiftFamily


class RateDropFromMedian(RateShiftFamily):
    """A step converts worse all day long (a pricing change, a broken coupon, a slow page)."""

    public = PUBLISHED_FAMILIES["rate_drop_from_median"]
    direction = -1
    entity_names = FUNNEL_STEPS
    magnitude_meaning = "relative fall of the step's conversion probability"
    magnitude_ranges = {"easy": (0.35, 0.5), "medium": (0.22, 0.35), "hard": (0.22, 0.3)}


register_family(RateDropFromMedian())
