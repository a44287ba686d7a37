"""A warehouse world: the registered kinds' incidents placed in the segmented world, its events drawn, its data
defects edited in on dates clear of every incident and of each other, the same for the same seed; and the dashboard
still the metrics layer's SQL over the raw events, defects included (the rules do not see them)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.catalog.tiers import WAREHOUSE, WAREHOUSE_DEFECTS
from metric_tracker_rl.generation.defects import defect_edits
from metric_tracker_rl.generation.warehouse.truth import DATA_QUALITY, expected_rows
from metric_tracker_rl.generation.warehouse.world import DEFECT_COUNT, WarehouseWorld, build_warehouse_world
from metric_tracker_rl.sql.columns import Labels
from metric_tracker_rl.sql.engine import EpisodeTables, open_database
from metric_tracker_rl.world.metrics_layer import DASHBOARD_SQL, RATE_COLUMNS, dashboard, segment_metric

DEFECTS = defect_edits(WAREHOUSE_DEFECTS)  # the warehouse's mechanisms, by name

SEEDS = (21, 22, 23)


def _world(seed: int) -> WarehouseWorld:
    """The rung's world (its tier is not registered yet: abyss's config carries the same dial)."""
    return build_warehouse_world(WAREHOUSE, resolve_episode_config(seed=seed, difficulty="abyss"))


@pytest.fixture(scope="module")
def worlds() -> dict[int, WarehouseWorld]:
    return {seed: _world(seed) for seed in SEEDS}


def test_defects_are_drawn_clear_of_incidents_and_of_each_other(worlds: dict[int, WarehouseWorld]) -> None:
    kinds = set()
    for world in worlds.values():
        assert 1 <= len(world.defects) <= DEFECT_COUNT[1] and world.incidents
        incident_days = {incident.record.day for incident in world.incidents}
        taken: set[int] = set()
        for defect in world.defects:
            reach = set(range(min(defect.days) - 1, max(defect.days) + 2))
            assert not reach & incident_days, defect
            assert not reach & taken, defect
            taken |= reach
            kinds.add(defect.kind)
        assert world.context.holidays  # the context tables come with the world
        assert 1 <= len(world.benign) <= 2
    assert len(kinds) >= 3 and kinds <= set(DEFECTS)


def test_the_same_seed_builds_the_same_world(worlds: dict[int, WarehouseWorld]) -> None:
    again = _world(SEEDS[0])
    world = worlds[SEEDS[0]]
    assert again.defects == world.defects and again.incidents == world.incidents
    np.testing.assert_array_equal(again.log.events.timestamp_us, world.log.events.timestamp_us)
    np.testing.assert_array_equal(again.log.events.ingested_us, world.log.events.ingested_us)


def test_the_dashboard_is_the_sql_over_events_with_defects(worlds: dict[int, WarehouseWorld]) -> None:
    world = worlds[SEEDS[0]]
    board = dashboard(world.log)
    tables = EpisodeTables(open_database(), pickle.loads(pickle.dumps(world.log.sql_tables())))
    columns, rows, count = tables.run(DASHBOARD_SQL, 0, 5000)
    assert count == len(board["sessions"])
    for position, name in enumerate(columns):
        seen = [row[position] for row in rows]
        column = board[name]
        if isinstance(column, Labels):
            assert seen == [column.values[c] for c in column.codes], name
        elif name == "date":
            assert seen == [str(d) for d in column], name
        else:
            np.testing.assert_allclose(np.array(seen, dtype=float), column.astype(float), rtol=1e-9, err_msg=name)
    _, changes, _ = tables.run("SELECT count(*) FROM tracking_changelog", 0, 1)
    assert changes[0][0] == sum(defect.kind == "tracking_stopped" for defect in world.defects)


def test_a_defects_values_are_the_dashboards_against_the_metrics_layers_without_it(
    worlds: dict[int, WarehouseWorld],
) -> None:
    """Observed: the dashboard's value of the defect's metric and segment; baseline: the same with the defect
    taken out of the events (the clean log's dashboard). Every defect's last date moves its metric down."""
    for world in worlds.values():
        for defect, values in zip(world.defects, world.defect_values, strict=True):
            assert [v.day for v in values] == list(defect.days)
            assert values[-1].observed < 0.75 * values[-1].baseline, (defect, values)
            assert values[-1].observed == segment_metric(world.dashboard, defect.segment, defect.metric, values[-1].day)


def test_every_table_of_the_episode_is_served_and_experiments_are_tagged(worlds: dict[int, WarehouseWorld]) -> None:
    """The episode's tables through the SQL engine; an experiment's assigned users carry its treatment variant on
    its dates' events, and nobody else's events do."""
    world = next(w for w in worlds.values() if w.context.experiments)
    tables = EpisodeTables(open_database(), world.sql_tables())
    for name in (
        "events",
        "users",
        "dashboard",
        "experiments",
        "campaigns",
        "holidays",
        "partner_status",
        "releases",
        "experiment_assignments",
        "internal_accounts",
        "test_devices",
        "known_bots",
        "currency_rates",
        "tracking_changelog",
    ):
        tables.run(f"SELECT * FROM {name} LIMIT 1", 0, 1)
    experiment = world.context.experiments[0]
    sql = (
        "SELECT count(*) FILTER (WHERE a.user_pseudo_id IS NULL), count(*) FROM events e "
        "LEFT JOIN (SELECT DISTINCT user_pseudo_id FROM experiment_assignments WHERE experiment = $name) a "
        "USING (user_pseudo_id) WHERE list_contains(list_transform(e.event_params, lambda p: p.key), "
        "'experiment_variant') AND e.privacy_info.analytics_storage = 'granted' "
        "AND e.event_date BETWEEN $start AND $end"
    )
    sql = (
        sql.replace("$name", f"'{experiment.experiment}'")
        .replace("$start", f"DATE '{experiment.start_date}'")
        .replace("$end", f"DATE '{experiment.end_date}'")
    )
    _, rows, _ = tables.run(sql, 0, 1)
    unassigned, tagged = rows[0]
    overlapping = [
        e
        for e in world.context.experiments
        if e != experiment and not (e.end_date < experiment.start_date or e.start_date > experiment.end_date)
    ]
    assert tagged > 0 and (unassigned == 0 or overlapping)


def test_expected_rows_carry_the_metrics_layers_values(worlds: dict[int, WarehouseWorld]) -> None:
    """An incident's observed value is its segment's metric on its date on the dashboard, its baseline the same
    weekday's median there (or before its change point); a defect's rows are its values; every row of the truth
    has a date in the window and a metric of the dashboard."""
    metrics = {"sessions", "menu_sessions", "cart_sessions", "order_sessions", "payment_sessions", *RATE_COLUMNS}
    for world in worlds.values():
        rows = expected_rows(world)
        assert sum(row.family == DATA_QUALITY for row in rows) == sum(len(d.days) for d in world.defects)
        for row in rows:
            assert 0 <= row.day < world.log.num_days and row.metric in metrics, row
            if row.family != DATA_QUALITY and row.metric in RATE_COLUMNS and not row.segment.names_daily_field:
                assert row.observed == pytest.approx(
                    segment_metric(world.dashboard, row.segment, row.metric, row.day), nan_ok=True
                )
        assert sum(row.family != DATA_QUALITY for row in rows) == len(world.incidents)
