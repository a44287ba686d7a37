from metric_tracker_rl.catalog.families import PUBLISHED_FAMILIES
from metric_tracker_rl.catalog.published import FUNNEL_STEPS
from metric_tracker_rl.generation.anomalies.base import register_family
from metric_tracker_rl.generation.anomalies.rate_shift import RateShiftFamily


class RateSpikeFromMedian(RateShiftFamily):
    """A step converts better all day long (a promotion, an auto-add-to-cart bug)."""

    public = PUBLISHED_FAMILIES["rate_spike_from_median"]
    direction = 1
    # Payment success already sits near 1 and cannot spike meaningfully.
    entity_names = FUNNEL_STEPS[:3]
    magnitude_meaning = "relative rise of the step's conversion probability (capped at 0.97)"
    magnitude_ranges = {"easy": (0.4, 0.6), "medium": (0.26, 0.4), "hard": (0.24, 0.34)}
    segment_magnitude_range = (0.2, 0.4)


register_family(RateSpikeFromMedian())
