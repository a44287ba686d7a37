"""How clear the warehouse's business incidents are on its dashboard: for each incident date of a few worlds, the
z-score of its metric in the dashboard rows of its segment's cell fields (platform, app version, country; a segment
naming channel or user type is read over the cells it falls in, so its z is diluted) against its same-weekday
peers, binomial for a rate and Poisson for a count. It tells whether the kinds' sizing for the sampled volume
(tiers.WAREHOUSE's observed_share) holds incidents above the noise the dashboard shows.

    uv run python -m lab.calibration.warehouse_visibility --seeds 8
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from metric_tracker_rl.catalog.published import CONVERSION_METRICS, COUNT_COLUMNS
from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.catalog.tiers import WAREHOUSE
from metric_tracker_rl.generation.warehouse.world import WarehouseWorld, build_warehouse_world
from metric_tracker_rl.sql.columns import Labels
from metric_tracker_rl.world.funnel import WINDOW_START
from metric_tracker_rl.world.metrics_layer import STEP_SESSION_COLUMNS

SEED_BASE = 910_000  # seeds no tier's calibration or split uses


def incident_z(world: WarehouseWorld) -> list[dict[str, object]]:
    """One entry per incident date: its kind, segment, metric and z on the dashboard."""
    board = world.dashboard
    day = (board["date"] - np.datetime64(WINDOW_START, "D")).astype(int)  # type: ignore[operator]
    labels = {}
    for name in ("platform", "app_version", "country"):
        column = board[name]
        assert isinstance(column, Labels)
        labels[name] = np.array(column.values)[column.codes]
    steps = np.stack([np.asarray(board[c], dtype=float) for c in STEP_SESSION_COLUMNS], axis=1)
    rates = {m.name: (COUNT_COLUMNS.index(m.denominator), COUNT_COLUMNS.index(m.numerator)) for m in CONVERSION_METRICS}
    out = []
    for incident in world.incidents:
        keep = np.ones(len(day), dtype=bool)
        for field, value in incident.segment.cell_part().normalised().named().items():
            keep &= labels[field] == value
        daily = np.zeros((world.log.num_days, len(STEP_SESSION_COLUMNS)))
        np.add.at(daily, day[keep], steps[keep])
        record = incident.record
        peers = [d for d in range(record.day % 7, world.log.num_days, 7) if d != record.day]
        if record.entity_name in rates:
            low, high = rates[record.entity_name]
            expected = daily[peers, high].sum() / max(daily[peers, low].sum(), 1.0)
            arrivals = max(daily[record.day, low], 1.0)
            spread = np.sqrt(max(expected * (1 - expected), 1e-9) / arrivals)
            z = (daily[record.day, high] / arrivals - expected) / spread
        else:
            column = COUNT_COLUMNS.index(record.entity_name) if record.entity_name in COUNT_COLUMNS else 0
            median = float(np.median(daily[peers, column]))
            z = (daily[record.day, column] - median) / np.sqrt(max(median, 1.0))
        out.append(
            {
                "kind": incident.kind,
                "segment": incident.segment.label(),
                "metric": record.entity_name,
                "z": round(float(z), 2),
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=8)
    args = parser.parse_args()
    rows = []
    for index in range(args.seeds):
        config = resolve_episode_config(seed=SEED_BASE + index, difficulty="abyss")
        rows += incident_z(build_warehouse_world(WAREHOUSE, config))
    z = np.abs(np.array([row["z"] for row in rows], dtype=float))
    print(
        json.dumps(
            {
                "incident_dates": len(rows),
                "median_abs_z": float(np.median(z)),
                "share_abs_z_over_3": float(np.mean(z > 3)),
                "share_abs_z_over_5": float(np.mean(z > 5)),
                "by_kind": {
                    kind: float(np.median([abs(float(r["z"])) for r in rows if r["kind"] == kind]))
                    for kind in sorted({str(r["kind"]) for r in rows})
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
