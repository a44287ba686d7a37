"""The audit's held-out faults that an analyst's sanity checks catch (generation/defects/mechanisms/<name>.py) and
their finders (agents/audit_traces_sanity.py): each leaves its trace where its docstring says, moves the dashboard
on its record's segment and dates past the margin and nowhere else, its rows follow the published rules, and its
finder finds its dates and segment on a log with it and nothing on the same log without it; the audit's expert
recovers each over a sweep of eval episodes."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
from sweep_helpers import Lazy, first_fast

from metric_tracker_rl.adapters.session import EpisodeSession
from metric_tracker_rl.agents import make_agent, play
from metric_tracker_rl.agents.audit_finders import FINDING_COLUMNS, Finder
from metric_tracker_rl.agents.audit_traces_sanity import FINDERS
from metric_tracker_rl.catalog.published import row_key
from metric_tracker_rl.catalog.seeding import EpisodeKey, derive_rng
from metric_tracker_rl.catalog.task_splits import mechanism_split
from metric_tracker_rl.catalog.tasks import resolve_episode_config
from metric_tracker_rl.catalog.tiers import AUDIT, AUDIT_DEFECTS, AUDIT_HELD_OUT_DEFECTS, DEEP_MIX, WAREHOUSE_DEFECTS
from metric_tracker_rl.generation.audit.truth import AUDIT_METRICS, audit_rows
from metric_tracker_rl.generation.audit.world import audit_mix, build_audit_world
from metric_tracker_rl.generation.defects import DEFECT_REGISTRY, DefectRecord
from metric_tracker_rl.generation.segment_plan import segmented_plan
from metric_tracker_rl.generation.warehouse.benign import BENIGN_CHANGES
from metric_tracker_rl.generation.warehouse.events import draw_event_log
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.sql.columns import Labels, Nested, SqlTable
from metric_tracker_rl.sql.engine import EpisodeTables, open_database
from metric_tracker_rl.world.audit_brief import relative_move
from metric_tracker_rl.world.events import EventLog
from metric_tracker_rl.world.funnel import WINDOW_START, window_calendar
from metric_tracker_rl.world.metrics_layer import dashboard, segment_metric
from metric_tracker_rl.world.segments import world_of

SEEDS = (11, 12)
AREAS = {"inverted_rate": "join", "menu_prefire": "sdk", "purchase_double_fire": "sdk", "stamped_behind": "time"}
# Where each fault's trace is: the one table of the export it changes.
TRACE = {
    "inverted_rate": "currency_rates",
    "menu_prefire": "events",
    "purchase_double_fire": "events",
    "stamped_behind": "events",
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
        lambda k: DEFECT_REGISTRY[k[0]].apply(logs[k[1]], derive_rng(EpisodeKey.of(k[1]), "test-sanity", index[k[0]])),
    )


def _found(log: EventLog, finder: Finder) -> list[dict[str, Any]]:
    columns, rows, _ = EpisodeTables(open_database(), log.sql_tables()).run(finder.sql, 0, 5000)
    assert tuple(columns) == FINDING_COLUMNS
    return [dict(zip(columns, row, strict=True)) for row in rows]


def _iso(day: int) -> str:
    return str(np.datetime64(WINDOW_START, "D") + np.timedelta64(day, "D"))


def _changed_tables(clean: EventLog, broken: EventLog) -> set[str]:
    before, after = clean.sql_tables(), broken.sql_tables()
    return {
        name
        for name in before
        if set(before[name]) != set(after[name])
        or not all(_same(before[name][c], after[name][c]) for c in before[name])
    }


def _same(a: Any, b: Any) -> bool:
    """Two columns hold the same values (a nested one compared whole, a labelled one by its texts)."""
    if isinstance(a, Nested) or isinstance(b, Nested):
        return isinstance(a, Nested) and isinstance(b, Nested) and a.array.equals(b.array)
    if isinstance(a, Labels) or isinstance(b, Labels):
        return (
            isinstance(a, Labels)
            and isinstance(b, Labels)
            and len(a) == len(b)
            and np.array_equal(np.asarray(a.values, dtype=object)[a.codes], np.asarray(b.values, dtype=object)[b.codes])
        )
    left, right = np.asarray(a), np.asarray(b)
    return left.shape == right.shape and bool(np.array_equal(left, right, equal_nan=left.dtype.kind == "f"))


@pytest.mark.parametrize("name", NAMES)
def test_each_fault_is_registered_in_its_area_and_no_warehouse_fault(name: str) -> None:
    assert name in AREAS and name in TRACE, f"{name} needs its expectations in this test's tables"
    assert DEFECT_REGISTRY[name].area == AREAS[name]
    assert name in AUDIT_DEFECTS and name not in WAREHOUSE_DEFECTS
    assert FINDER[name].kind == "defect"


def test_the_first_sanity_faults_are_held_out() -> None:
    """Held out when they were added (a new one need not be: AUDIT_HELD_OUT_DEFECTS says which are)."""
    assert {"inverted_rate", "menu_prefire", "purchase_double_fire", "stamped_behind"} <= set(AUDIT_HELD_OUT_DEFECTS)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("seed", first_fast(SEEDS))
def test_a_fault_leaves_its_trace_in_its_table_alone(
    logs: Mapping[int, EventLog], edited: Mapping[tuple[str, int], tuple[EventLog, DefectRecord]], name: str, seed: int
) -> None:
    assert _changed_tables(logs[seed], edited[name, seed][0]) == {TRACE[name]}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("seed", first_fast(SEEDS))
def test_a_fault_moves_its_segment_past_the_margin_on_its_dates_and_nothing_else(
    logs: Mapping[int, EventLog], edited: Mapping[tuple[str, int], tuple[EventLog, DefectRecord]], name: str, seed: int
) -> None:
    clean = logs[seed]
    broken, record = edited[name, seed]
    assert record.kind == name and record.days and all(6 <= day < clean.num_days - 1 for day in record.days)
    events = broken.events  # still grouped by session, in time order (the de-duplication reads it so)
    assert (np.lexsort((events.timestamp_us, events.session)) == np.arange(len(events))).all()
    before, after = dashboard(clean), dashboard(broken)
    for day in record.days:
        moves = [
            relative_move(segment_metric(after, record.segment, m, day), segment_metric(before, record.segment, m, day))
            for m in AUDIT_METRICS
        ]
        assert max(moves) > MARGIN, (record, day, moves)
    reach = range(min(record.days) - 1, max(record.days) + 1)
    was, now = _board_rows(before), _board_rows(after)
    named = record.segment.normalised().named()
    for key in set(was) | set(now):
        inside = all(
            dict(zip(("platform", "app_version", "country"), key[1:], strict=True))[f] == v for f, v in named.items()
        )
        if not (inside and key[0] in reach):
            assert was.get(key) == now.get(key), (record, key)


def _board_rows(board: SqlTable) -> dict[tuple[object, ...], tuple[float, ...]]:
    days = (np.asarray(board["date"]) - np.datetime64(WINDOW_START, "D")).astype(int).tolist()
    keys = [days] + [[board[n].values[c] for c in board[n].codes] for n in ("platform", "app_version", "country")]  # type: ignore[union-attr]
    numbers = [
        np.nan_to_num(np.asarray(c, dtype=float), nan=-1.0)
        for n, c in board.items()
        if n not in ("date", "platform", "app_version", "country")
    ]
    return {key: tuple(float(column[i]) for column in numbers) for i, key in enumerate(zip(*keys, strict=True))}


@pytest.mark.parametrize("name", NAMES)
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
            and all(row[f] == named.get(f) for f in ("platform", "app_version", "country"))
            for row in rows
        ), (record, day, rows)
    assert {row["date"] for row in rows} <= {_iso(day) for day in record.days}, (record, rows)


@pytest.mark.parametrize("seed", first_fast(SEEDS))
def test_no_sanity_finder_flags_a_clean_log(logs: Mapping[int, EventLog], seed: int) -> None:
    tables = EpisodeTables(open_database(), logs[seed].sql_tables())
    for finder in FINDERS:
        tables.run(finder.sql, 0, 5000)  # the tables' views made
        started = time.process_time()
        _, rows, _ = tables.run(finder.sql, 0, 5000)
        assert time.process_time() - started < 0.3, finder.name
        assert rows == [], (finder.name, rows[:3])


SWEEP = range(100, 124)  # eval seeds (below the train split's base)
PER_MECHANISM = 3  # the sweep's episodes of each fault the expert plays
EXPERT_RECALL = 0.8  # of each fault's expected rows over those episodes


def _expert_recall(seeds: range) -> dict[str, tuple[int, int]]:
    """Per fault of this module's: (its expected rows the expert reported, its expected rows) over the first
    PER_MECHANISM eval episodes of `seeds` that hold it, the expert playing each through the tools."""
    found: dict[str, tuple[int, int]] = {}
    played = 0
    for seed in seeds:
        assert mechanism_split(seed) == "eval"
        world = build_audit_world(AUDIT, resolve_episode_config(seed=seed, difficulty="audit"))
        holds = {d.kind for d in world.defects} & set(NAMES)
        if not holds or all(found.get(name, (0, 0, 0))[2] >= PER_MECHANISM for name in holds):
            continue
        dates = window_calendar(world.log.num_days).iso_dates
        expected = [
            (row.kind, row_key(report.date, report.entity_type, report.entity_name))
            for row, report in ((row, row.report_row(dates)) for row in audit_rows(world, audit_mix(AUDIT)))
            if row.kind in holds
        ]
        session = play(
            make_agent("audit_expert"), EpisodeSession(MetricTrackerRlEnvironment()), difficulty="audit", seed=seed
        )
        assert session.graded is not None
        reported = {row_key(r.date, r.entity_type, r.entity_name) for r in session.graded.submitted_rows}
        played += 1
        for name in holds:
            hit, rows, episodes = found.get(name, (0, 0, 0))
            mine = [key for kind, key in expected if kind == name]
            found[name] = (hit + sum(key in reported for key in mine), rows + len(mine), episodes + 1)
    return {name: (hit, rows) for name, (hit, rows, _) in found.items()}


@pytest.mark.slow
def test_the_expert_recovers_each_fault_from_the_data_over_a_sweep_of_eval_episodes() -> None:
    recall = _expert_recall(SWEEP)
    assert set(recall) == set(NAMES), recall
    print({name: f"{hit}/{rows}" for name, (hit, rows) in recall.items()})
    for name, (hit, rows) in recall.items():
        assert rows and hit >= EXPERT_RECALL * rows, (name, hit, rows)


@pytest.mark.slow
@pytest.mark.parametrize("seeds", [range(1, 36), range(1_000_000, 1_000_030)])
def test_in_audit_episodes_each_sanity_finder_flags_its_faults_dates_and_no_others(seeds: range) -> None:
    """Over a sweep of audit worlds (incidents, the other faults, benign bursts and experiments in them), a finder's
    rows cover each date of a fault of its own mechanism and lie only on dates some mechanism holds (a day's margin
    each side); the train split's worlds, which hold none of these faults, leave every finder silent."""
    for seed in seeds:
        world = build_audit_world(AUDIT, resolve_episode_config(seed=seed, difficulty="audit"))
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
            assert mechanism_split(seed) == "eval" or not dates, (seed, finder.name)


def _rule_baseline(values: list[float], day: int) -> float:
    """The published baseline rule: the median of the other same-weekday dates' values, a date without a value
    skipped (a version's 0 before its rollout is a value), the mean of the middle two of an even number."""
    peers = sorted(v for d, v in enumerate(values) if d % 7 == day % 7 and d != day and not np.isnan(v))
    middle = len(peers) // 2
    return float("nan") if not peers else peers[middle] if len(peers) % 2 else (peers[middle - 1] + peers[middle]) / 2


@pytest.mark.slow
def test_each_faults_rows_follow_the_segment_and_baseline_rules_over_a_sweep_of_eval_episodes() -> None:
    """Each expected row of these faults names its record's segment (a version with its platform), lies on one of
    its record's dates, departs from the value without the fault by more than the margin, and has the baseline the
    published rule gives over the dashboard's values on every date of the window."""
    seen: set[str] = set()
    for seed in SWEEP:
        world = build_audit_world(AUDIT, resolve_episode_config(seed=seed, difficulty="audit"))
        records = {d.kind: d for d in world.defects if d.kind in NAMES}
        for row in (r for r in audit_rows(world, audit_mix(AUDIT)) if r.kind in records):
            record = records[row.kind]
            named = row.segment.named()
            assert row.segment == record.segment.normalised() and ("app_version" not in named or "platform" in named)
            assert row.day in record.days
            clean = segment_metric(world.clean_dashboard, row.segment, row.metric, row.day)
            assert relative_move(row.observed, clean) > MARGIN, row
            series = [segment_metric(world.dashboard, row.segment, row.metric, d) for d in range(world.log.num_days)]
            assert row.baseline == pytest.approx(_rule_baseline(series, row.day), rel=1e-9), row
            seen.add(row.kind)
    assert seen == set(NAMES)
