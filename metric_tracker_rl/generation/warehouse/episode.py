"""A warehouse episode: its world (world.py) as the tools read it, the warehouse's tables on a public episode
without counts (the events packed), and the truth (truth.py). The event log the tables are built from is not
kept."""

from __future__ import annotations

import numpy as np

from metric_tracker_rl.catalog.published import COUNT_COLUMNS
from metric_tracker_rl.catalog.tasks import EpisodeConfig
from metric_tracker_rl.catalog.tiers import Tier
from metric_tracker_rl.generation.episode import Episode, visible_task
from metric_tracker_rl.generation.warehouse.truth import warehouse_truth
from metric_tracker_rl.generation.warehouse.world import build_warehouse_world
from metric_tracker_rl.sql.columns import ServedTable
from metric_tracker_rl.sql.engine import pack_table
from metric_tracker_rl.world.daily_panel import build_panel
from metric_tracker_rl.world.funnel import HOURS, FunnelData, window_calendar
from metric_tracker_rl.world.public_episode import PublicEpisode

PACKED_TABLES = frozenset({"events", "users", "experiment_assignments"})


def build_warehouse_episode(tier: Tier, config: EpisodeConfig) -> Episode:
    """The episode of a warehouse tier: its tables for the SQL tool, its dimensions for report rows, its window
    (the counts the other tiers' tools read are zero: no tool over them answers here), and its truth."""
    world = build_warehouse_world(tier, config)
    calendar = window_calendar(world.log.num_days)
    data = FunnelData(dates=calendar.iso_dates, weekdays=calendar.weekday_names, weekend=calendar.weekend,
                      hourly=np.zeros((len(calendar.dates), HOURS, len(COUNT_COLUMNS)), dtype=np.int64))
    served = world.sql_tables()
    # The tables that grow with the traffic, packed: what an open episode holds of them until a worker reads them.
    tables: dict[str, ServedTable] = {name: pack_table(table) if name in PACKED_TABLES else table
                                      for name, table in served.items()}
    public = PublicEpisode(data, build_panel(data), (), visible_task(tier, config),
                           warehouse_tables=tables, warehouse_dimensions=world.dimension_values)
    return Episode(config, public, warehouse_truth(world, calendar.iso_dates))
