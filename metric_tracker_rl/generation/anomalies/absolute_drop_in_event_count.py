from metric_tracker_rl.catalog.families import PUBLISHED_FAMILIES
from metric_tracker_rl.generation.anomalies.base import register_family
from metric_tracker_rl.generation.anomalies.count_shift import CountShiftFamily


class AbsoluteDropInEventCount(CountShiftFamily):
    """Fewer users arrive (an app-store outage, a crash on launch) but those who arrive convert normally."""

    public = PUBLISHED_FAMILIES["absolute_drop_in_event_count"]
    direction = -1
    partial_day_probability = {"easy": 0.5, "medium": 0.5, "hard": 1.0}
    segment_partial_day_probability = 0.5
    magnitude_meaning = "share of the day's app opens lost (all day or in the outage's hours)"
    magnitude_ranges = {"easy": (0.45, 0.65), "medium": (0.35, 0.5), "hard": (0.2, 0.38)}


register_family(AbsoluteDropInEventCount())
