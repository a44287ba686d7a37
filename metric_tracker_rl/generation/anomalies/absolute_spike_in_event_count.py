from metric_tracker_rl.catalog.families import PUBLISHED_FAMILIES
from metric_tracker_rl.generation.anomalies.base import register_family
from metric_tracker_rl.generation.anomalies.count_shift import CountShiftFamily


class AbsoluteSpikeInEventCount(CountShiftFamily):
    """More real users arrive (press coverage, an unannounced referral loop) and convert normally."""

    public = PUBLISHED_FAMILIES["absolute_spike_in_event_count"]
    direction = 1
    partial_day_probability = {"easy": 0.3, "medium": 0.3, "hard": 1.0}
    segment_partial_day_probability = 0.3
    magnitude_meaning = "extra app opens as a share of the day's normal volume"
    magnitude_ranges = {"easy": (0.6, 1.0), "medium": (0.4, 0.6), "hard": (0.2, 0.45)}
    segment_magnitude_range = (0.3, 0.6)  # no frontier kind reports it: its own scenario at frontier


register_family(AbsoluteSpikeInEventCount())
