"""`list_suspicious_dates`: the dates ranked by their strongest signal, each kind of signal shown with its
strongest entity."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from metric_tracker_rl.analysis_tools.arguments import ToolArgs
from metric_tracker_rl.analysis_tools.registry import derived, finite_or_none, register_tool
from metric_tracker_rl.catalog.published import LONGEST_WINDOW_DAYS
from metric_tracker_rl.catalog.tiers import COUNTS
from metric_tracker_rl.world.public_episode import PublicEpisode

# The kinds of signal a date is ranked by, each shown with its strongest entity. Counts and rates move either way;
# an hourly mix is a distance from the usual hours, so only its rise counts.
SUSPICIOUS_KINDS: tuple[str, ...] = ("conversion_rate", "event_count", "hourly_mix")
ONE_SIDED_KINDS = frozenset({"hourly_mix"})


class LimitArgs(ToolArgs):
    limit: int = Field(default=10, ge=1, le=28, description="Dates per page")
    offset: int = Field(default=0, ge=0, le=LONGEST_WINDOW_DAYS - 1, description="Rank of the first date")


@register_tool(
    "list_suspicious_dates",
    "Dates by largest |robust z|, each kind's strongest shown; hourly mixes rank by rises only, null if none rose.",
    LimitArgs,
    reads=(COUNTS,),
)
def list_suspicious_dates(episode: PublicEpisode, args: LimitArgs) -> dict[str, Any]:
    ranking = derived(episode, suspicious_date_ranking)
    return {"dates": [dict(entry) for entry in ranking[args.offset : args.offset + args.limit]]}


def suspicious_date_ranking(episode: PublicEpisode) -> list[dict[str, Any]]:
    """Every date, most suspicious first. A date's max_abs_robust_z is the largest |z| of its counts and rates
    and the largest positive z of its hourly mixes; each kind shows its strongest entity and that entity's z (for
    hourly mixes the largest rise, and null for both when no mix rose: a distance below its usual is no signal)."""
    panel = episode.panel
    strongest: dict[str, tuple[list[str | None], list[float | None]]] = {}
    scores = np.zeros(len(episode.data.dates))
    for kind in SUSPICIOUS_KINDS:
        rows = [k for k, (t, _) in enumerate(panel.keys) if t == kind]
        z = panel.filled_z[rows]
        strength = np.maximum(z, 0.0) if kind in ONE_SIDED_KINDS else np.abs(z)
        best = (z if kind in ONE_SIDED_KINDS else strength).argmax(axis=0)
        scores = np.maximum(scores, strength.max(axis=0))
        shown = (strength.max(axis=0) > 0).tolist() if kind in ONE_SIDED_KINDS else [True] * len(scores)
        chosen = [rows[i] if rose else None for i, rose in zip(best.tolist(), shown, strict=True)]
        strongest[kind] = (
            [None if k is None else panel.keys[k][1] for k in chosen],
            [None if k is None else finite_or_none(panel.z[k, day]) for day, k in enumerate(chosen)],
        )
    ranking = []
    for day in np.argsort(-scores, kind="stable").tolist():
        entry: dict[str, Any] = {"date": episode.data.dates[day], "max_abs_robust_z": float(scores[day])}
        for kind in SUSPICIOUS_KINDS:
            names, zs = strongest[kind]
            entry[kind], entry[f"{kind}_z"] = names[day], zs[day]
        ranking.append(entry)
    return ranking
