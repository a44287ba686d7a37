"""A warehouse episode: its world (world.py) as the tools read it, the warehouse's tables as a public episode's
events (the largest packed), and the truth (truth.py). The event log the tables are built from is not kept."""

from __future__ import annotations

from metric_tracker_rl.catalog.tasks import EpisodeConfig
from metric_tracker_rl.catalog.tiers import Tier
from metric_tracker_rl.generation.episode import Episode, visible_task
from metric_tracker_rl.generation.warehouse.truth import warehouse_truth
from metric_tracker_rl.generation.warehouse.world import WarehouseWorld, build_warehouse_world
from metric_tracker_rl.sql.columns import ServedTable
from metric_tracker_rl.sql.sandbox import WAREHOUSE_MAX_SQL_CHARS
from metric_tracker_rl.sql.table_views import pack_table
from metric_tracker_rl.world.funnel import window_calendar
from metric_tracker_rl.world.public_episode import Events, PublicEpisode
from metric_tracker_rl.world.warehouse_brief import WAREHOUSE_OBJECTIVE

PACKED_TABLES = frozenset({"events", "users", "experiment_assignments"})


def build_warehouse_episode(tier: Tier, config: EpisodeConfig) -> Episode:
    """The episode of a warehouse tier: its tables for the SQL tool, its dimensions for report rows, its window,
    and its truth."""
    world = build_warehouse_world(tier, config)
    calendar = window_calendar(world.log.num_days)
    return Episode(
        config, public_warehouse(world, config, WAREHOUSE_OBJECTIVE), warehouse_truth(world, calendar.iso_dates)
    )


def public_warehouse(world: WarehouseWorld, config: EpisodeConfig, objective: str) -> PublicEpisode:
    """What a warehouse world shows: its tables for the SQL tool (those that grow with the traffic packed: what an
    open episode holds of them until a worker reads them), its dimensions for report rows, and its task."""
    calendar = window_calendar(world.log.num_days)
    tables: dict[str, ServedTable] = {
        name: pack_table(table) if name in PACKED_TABLES else table for name, table in world.sql_tables().items()
    }
    events = Events(calendar, tables, world.dimension_values, WAREHOUSE_MAX_SQL_CHARS)
    return PublicEpisode(events, visible_task(config, objective))
