"""Where the audit's recording faults land, shared by their mechanisms: a block of a date's hours (a collector's
outage or a replayed batch), and the counted purchases of each segment by date (a fault on revenue needs some on
every date it lists, or it would move nothing there)."""

from __future__ import annotations

import numpy as np

from metric_tracker_rl.generation.defects.log_edits import SessionPlaces
from metric_tracker_rl.world.events import MICROS_PER_SECOND, EventLog, day_start_micros, event_code
from metric_tracker_rl.world.metrics_layer import counted_events

HOUR_US = 3600 * MICROS_PER_SECOND
BLOCK_EARLIEST_HOUR = 8  # a block starts in the day's busier hours, so it holds a clear share of the date's traffic


def hour_block(rng: np.random.Generator, day: int, hours: tuple[int, int]) -> tuple[int, int]:
    """A drawn block of whole hours of reporting date `day` (UTC microseconds, end excluded), ending before the
    date does."""
    length = int(rng.integers(hours[0], hours[1] + 1))
    first = int(rng.integers(BLOCK_EARLIEST_HOUR, 24 - length))
    start = day_start_micros(day) + first * HOUR_US
    return start, start + length * HOUR_US


def counted_purchases(log: EventLog, places: SessionPlaces) -> np.ndarray:
    """(E,) positions of the payment events the metrics layer counts (each repeat left out)."""
    events = log.events
    return np.flatnonzero(
        counted_events(log) & (events.name == event_code("payment_successful")) & (places.day[events.session] >= 0)
    )


def fewest_on(counts: np.ndarray, days: tuple[int, ...]) -> np.ndarray:
    """For counts by (..., date), the fewest on any of `days`, per leading index."""
    fewest: np.ndarray = counts[..., list(days)].min(axis=-1)
    return fewest
