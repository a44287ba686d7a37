"""The audit's faults of the pipeline, the clock, the joins, the traffic and the SDK's names
(generation/defects/mechanisms/<name>.py) and their finders (agents/audit_traces_pipeline.py): each moves the dashboard
on its record's segment and dates past the margin, by the truth's rule, and nowhere else; each finder finds its
fault's dates on its segment on a log with it, and returns nothing on the same log without it (its benign bursts
and standing traffic included)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from sweep_helpers import Lazy, first_fast

from metric_tracker_rl.agents.audit_finders import FINDING_COLUMNS, Finder
from metric_tracker_rl.agents.audit_traces_pipeline import FINDERS
from metric_tracker_rl.catalog.seeding import EpisodeKey, derive_rng
from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.catalog.tiers import AUDIT_DEFECTS, AUDIT_HELD_OUT_DEFECTS, DEEP_MIX
from metric_tracker_rl.catalog.versions import tier_at
from metric_tracker_rl.generation.audit.truth import AUDIT_METRICS
from metric_tracker_rl.generation.audit.world import build_audit_world
from metric_tracker_rl.generation.defects import DEFECT_REGISTRY, DefectRecord
from metric_tracker_rl.generation.defects.log_edits import STEP_OF_EVENT
from metric_tracker_rl.generation.segment_plan import segmented_plan
from metric_tracker_rl.generation.warehouse.benign import BENIGN_CHANGES
from metric_tracker_rl.generation.warehouse.events import draw_event_log
from metric_tracker_rl.sql.columns import Labels, SqlTable
from metric_tracker_rl.sql.engine import EpisodeTables, open_database
from metric_tracker_rl.world.audit_brief import relative_move
from metric_tracker_rl.world.events import RENAMED_EVENTS, EventLog, event_code
from metric_tracker_rl.world.funnel import WINDOW_START
from metric_tracker_rl.world.metrics_layer import DASHBOARD_SQL, dashboard, segment_metric
from metric_tracker_rl.world.segments import Segment, world_of

# The version whose episodes this module's seeds were chosen on (the rules it tests are the same at version 2).
AUDIT_V1 = tier_at("audit", 1)

SEEDS = (11, 12)
AREAS = {
    "batch_replay": "pipeline",
    "ingestion_gap": "pipeline",
    "device_clock_ahead": "time",
    "missing_rate_rows": "join",
    "minor_units": "join",
    "untagged_load_test": "traffic",
    "event_renamed_silently": "sdk",
}
MARGIN = 0.1  # the audit's
FINDER = {finder.name: finder for finder in FINDERS}
NAMES = tuple(FINDER)  # every finder of the module, each named after its fault


def _log(seed: int) -> EventLog:
    key = EpisodeKey.of(seed)
    log = draw_event_log(segmented_plan(key, 56, world_of(DEEP_MIX.dimensions)), key)
    for index, change in enumerate(BENIGN_CHANGES.values()):
        log, _ = change(log, derive_rng(key, "test-audit-benign", index))
    return log


@pytest.fixture(scope="module")
def logs() -> Lazy[int, EventLog]:
    """Each seed's clean log with the benign bursts the standing rules exclude (what a finder must not flag)."""
    return Lazy(SEEDS, _log)


@pytest.fixture(scope="module")
def edited(logs: Lazy[int, EventLog]) -> Lazy[tuple[str, int], tuple[EventLog, DefectRecord]]:
    index = {name: i for i, name in enumerate(NAMES)}
    return Lazy(
        [(name, seed) for seed in SEEDS for name in NAMES],
        lambda k: DEFECT_REGISTRY[k[0]].apply(logs[k[1]], derive_rng(EpisodeKey.of(k[1]), "test-audit", index[k[0]])),
    )


@pytest.fixture(scope="module")
def clean_boards(logs: Lazy[int, EventLog]) -> Lazy[int, SqlTable]:
    return Lazy(SEEDS, lambda seed: dashboard(logs[seed]))


def _tables(log: EventLog) -> EpisodeTables:
    """The export and its side tables (these finders read no dashboard)."""
    return EpisodeTables(open_database(), log.sql_tables())


def _found(log: EventLog, finder: Finder) -> list[dict[str, Any]]:
    columns, rows, _ = _tables(log).run(finder.sql, 0, 5000)
    assert tuple(columns) == FINDING_COLUMNS
    return [dict(zip(columns, row, strict=True)) for row in rows]


def _iso(day: int) -> str:
    return str(np.datetime64(WINDOW_START, "D") + np.timedelta64(day, "D"))


def _board_rows(board: SqlTable) -> dict[tuple[object, ...], tuple[float, ...]]:
    """The dashboard's rows by (day, platform, app_version, country): their numbers (-1: NULL)."""
    keys: list[list[Any]] = [(np.asarray(board["date"]) - np.datetime64(WINDOW_START, "D")).astype(int).tolist()]
    for name in ("platform", "app_version", "country"):
        column = board[name]
        assert isinstance(column, Labels)
        keys.append([column.values[code] for code in column.codes])
    numbers = [
        np.nan_to_num(np.asarray(c, dtype=float), nan=-1.0)
        for n, c in board.items()
        if not isinstance(c, Labels) and n != "date"
    ]
    return {key: tuple(float(column[i]) for column in numbers) for i, key in enumerate(zip(*keys, strict=True))}


def _inside(key: tuple[object, ...], segment: Segment) -> bool:
    row = dict(zip(("platform", "app_version", "country"), key[1:], strict=True))
    return all(row[field] == value for field, value in segment.normalised().named().items())


@pytest.mark.parametrize("name", NAMES)
def test_each_fault_is_registered_in_its_area_and_drawn_by_the_audit(name: str) -> None:
    assert name in AREAS, f"{name} needs its expectations in this test's tables"
    assert DEFECT_REGISTRY[name].area == AREAS[name]
    assert name in AUDIT_DEFECTS
    assert (name in AUDIT_HELD_OUT_DEFECTS) == (name in ("missing_rate_rows", "device_clock_ahead", "minor_units"))
    assert FINDER[name].kind == "defect"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("seed", first_fast(SEEDS))
def test_a_fault_moves_its_segment_past_the_margin_on_its_dates_and_nothing_else(
    logs: Mapping[int, EventLog],
    clean_boards: Mapping[int, SqlTable],
    edited: Mapping[tuple[str, int], tuple[EventLog, DefectRecord]],
    name: str,
    seed: int,
) -> None:
    clean = logs[seed]
    broken, record = edited[name, seed]
    assert record.kind == name and record.days and all(7 <= day < clean.num_days - 1 for day in record.days)
    events = broken.events  # still grouped by session, in time order (the de-duplication reads it so)
    assert (np.lexsort((events.timestamp_us, events.session)) == np.arange(len(events))).all()
    before, after = clean_boards[seed], dashboard(broken)
    for day in record.days:  # the truth's rule: the metric moved most passes the margin
        moves = [
            relative_move(segment_metric(after, record.segment, m, day), segment_metric(before, record.segment, m, day))
            for m in AUDIT_METRICS
        ]
        assert max(moves) > 3 * MARGIN, (record, day, moves)
    reach = range(min(record.days) - 1, max(record.days) + 1)  # a session may run past midnight into a date
    was, now = _board_rows(before), _board_rows(after)
    for key in set(was) | set(now):
        if not (_inside(key, record.segment) and key[0] in reach):
            assert was.get(key) == now.get(key), (record, key)


@pytest.mark.parametrize("name", first_fast(NAMES))
@pytest.mark.parametrize("seed", first_fast(SEEDS))
def test_a_finder_finds_its_fault_on_its_dates_and_segment(
    edited: Mapping[tuple[str, int], tuple[EventLog, DefectRecord]], name: str, seed: int
) -> None:
    broken, record = edited[name, seed]
    rows = _found(broken, FINDER[name])
    named = record.segment.normalised().named()
    for day in record.days:
        assert any(
            row["date"] == _iso(day)
            and row["what"] == name
            and all(row[f] is None or row[f] == named.get(f) for f in ("platform", "app_version", "country"))
            for row in rows
        ), (record, day, rows)
    listed = {_iso(day) for day in record.days}
    assert {row["date"] for row in rows} <= listed, (record, rows)


@pytest.mark.parametrize("seed", first_fast(SEEDS))
def test_no_finder_flags_a_clean_log(logs: Mapping[int, EventLog], seed: int) -> None:
    tables = _tables(logs[seed])
    for finder in FINDERS:
        tables.run(finder.sql, 0, 5000)  # the tables' views made
        started = time.process_time()
        _, rows, _ = tables.run(finder.sql, 0, 5000)
        assert time.process_time() - started < 0.3, finder.name
        assert rows == [], (finder.name, rows[:3])


def test_a_missing_rate_row_is_left_out_of_the_table_and_drops_its_purchases_as_the_sql_does(
    edited: Mapping[tuple[str, int], tuple[EventLog, DefectRecord]],
) -> None:
    broken, record = edited["missing_rate_rows", SEEDS[0]]
    rates = broken.sql_tables()["currency_rates"]
    missing = int(np.isnan(broken.units_per_usd).sum())
    assert missing == len(record.days)
    assert len(np.asarray(rates["units_per_usd"])) == broken.units_per_usd.size - missing
    assert not np.isnan(np.asarray(rates["units_per_usd"], dtype=float)).any()
    board = dashboard(broken)
    columns, rows, _ = _tables(broken).run(DASHBOARD_SQL, 0, 5000)
    for name in ("purchases", "revenue_usd"):
        np.testing.assert_allclose(
            [row[columns.index(name)] for row in rows], np.asarray(board[name], dtype=float), rtol=1e-9, atol=1e-9
        )


@pytest.mark.slow
@pytest.mark.parametrize("seeds", [range(1, 36), range(1_000_000, 1_000_030)])
def test_in_audit_episodes_each_finder_flags_its_faults_dates_and_no_others(seeds: range) -> None:
    """Over a sweep of audit worlds (incidents, the other faults, benign bursts and experiments in them), a finder's
    rows cover each date of a fault of its own mechanism, and lie only on dates some mechanism holds (a day's margin
    each side: another fault's trace may resemble its own, nothing else does); each mechanism is drawn."""
    drawn: set[str] = set()
    for seed in seeds:
        world = build_audit_world(AUDIT_V1, resolve_episode_config(version=1, seed=seed, difficulty="audit"))
        tables = EpisodeTables(open_database(), world.sql_tables())
        held = {
            _iso(near)
            for day in [
                *(d for defect in world.defects for d in defect.days),
                *(incident.record.day for incident in world.incidents),
            ]
            for near in (day - 1, day, day + 1)
        }
        for finder in FINDERS:
            columns, rows, _ = tables.run(finder.sql, 0, 5000)
            dates = {row[columns.index("date")] for row in rows}
            own = {_iso(day) for defect in world.defects if defect.kind == finder.name for day in defect.days}
            assert own <= dates <= held | own, (seed, finder.name, sorted(own - dates), sorted(dates - held))
        drawn |= {defect.kind for defect in world.defects}
    expected = set(NAMES) if seeds.start < 1_000_000 else set(NAMES) - set(AUDIT_HELD_OUT_DEFECTS)
    assert expected <= drawn


@pytest.mark.parametrize("stray", [False, True])
@pytest.mark.parametrize("seed", first_fast(SEEDS))
def test_a_renamed_event_is_read_on_the_step_it_starts_at_on_every_date(
    edited: Mapping[tuple[str, int], tuple[EventLog, DefectRecord]], seed: int, stray: bool
) -> None:
    """The finder names the step whose event the release renamed, on each of its dates; also where a session begun
    before the update still sent one event under the old name (`stray`)."""
    broken, record = edited["event_renamed_silently", seed]
    if stray:
        old = next(event for event, step in STEP_OF_EVENT.items() if step == record.metric)
        names = broken.events.name.copy()
        names[np.flatnonzero(names == event_code(RENAMED_EVENTS[old]))[0]] = event_code(old)
        broken = replace(broken, events=replace(broken.events, name=names))
    rows = _found(broken, FINDER["event_renamed_silently"])
    assert rows and {row["metric"] for row in rows} == {record.metric}, (record, rows)
