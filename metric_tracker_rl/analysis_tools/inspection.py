"""What the tools that show the data as it is share: a date's daily row, a metric's series over the window."""

from __future__ import annotations

from typing import Any

import numpy as np

from metric_tracker_rl.catalog.published import CONVERSION_METRICS, COUNT_COLUMNS
from metric_tracker_rl.world.daily_panel import COLUMN_INDEX
from metric_tracker_rl.world.public_episode import PublicEpisode


def daily_row(episode: PublicEpisode, day: int, daily: np.ndarray | None = None) -> dict[str, Any]:
    """One date's counts and rates: of the whole funnel, or of `daily` (a segment's (D, 5) counts)."""
    data = episode.data
    counts = (data.daily if daily is None else daily)[day].tolist()
    row: dict[str, Any] = {"date": data.dates[day], "weekday": data.weekdays[day]}
    row.update(zip(COUNT_COLUMNS, counts, strict=True))
    for metric in CONVERSION_METRICS:
        den = counts[COLUMN_INDEX[metric.denominator]]
        row[metric.name] = counts[COLUMN_INDEX[metric.numerator]] / den if den else None
    return row


def metric_series(episode: PublicEpisode, metric: str) -> tuple[str, np.ndarray, int]:
    """A count's or rate's entity type, its values over the window and its row of the episode's panel."""
    entity_type = "event_count" if metric in COUNT_COLUMNS else "conversion_rate"
    k = episode.panel.index(entity_type, metric)
    return entity_type, episode.panel.values[k], k
