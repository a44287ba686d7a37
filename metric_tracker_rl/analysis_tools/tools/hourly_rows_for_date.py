"""`hourly_rows_for_date`: one date's hourly counts and step conversions (a cell's, when the call names a
segment)."""

from __future__ import annotations

from typing import Any

import numpy as np

from metric_tracker_rl.analysis_tools.arguments import ScopedDateArgs
from metric_tracker_rl.analysis_tools.registry import register_tool
from metric_tracker_rl.catalog.published import CONVERSION_METRICS, COUNT_COLUMNS
from metric_tracker_rl.catalog.tiers import COUNTS
from metric_tracker_rl.world.daily_panel import safe_ratio
from metric_tracker_rl.world.public_episode import PublicEpisode


@register_tool(
    "hourly_rows_for_date",
    "One date's hourly counts and step conversions.",
    ScopedDateArgs,
    reads=(COUNTS,),
    example={"date": "2026-03-10"},
)
def hourly_rows_for_date(episode: PublicEpisode, args: ScopedDateArgs) -> dict[str, Any]:
    day = episode.data.date_index(args.date)
    hourly = episode.data.hourly[day]
    rates = safe_ratio(hourly[:, 1:].astype(float), hourly[:, :-1].astype(float))
    cells = rates.astype(object)
    cells[np.isnan(rates)] = None  # an hour with no earlier event has no rate
    rates = cells.tolist()
    counts = hourly.tolist()
    step_metrics = [m.name for m in CONVERSION_METRICS[:4]]
    rows = []
    for hour in range(hourly.shape[0]):
        row: dict[str, Any] = {"hour": hour}
        row.update(zip(COUNT_COLUMNS, counts[hour], strict=True))
        row.update(zip(step_metrics, rates[hour], strict=True))
        rows.append(row)
    return {"date": args.date, "rows": rows}
