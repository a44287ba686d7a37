"""The warehouse's data defects: each reaches the dashboard (the standing rules do not catch it) on its segment and
dates only, and makes the metric its record names fall (revenue_usd: move), over several seeds. Its benign changes
move the raw events and leave the dashboard as it was (the standing rules exclude them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
from sweep_helpers import Lazy, first_fast

from metric_tracker_rl.catalog.seeding import EpisodeKey, derive_rng
from metric_tracker_rl.catalog.tiers import DEEP_MIX, WAREHOUSE_DEFECTS
from metric_tracker_rl.generation.defects import DefectRecord, defect_edits
from metric_tracker_rl.generation.defects.log_edits import SessionPlaces
from metric_tracker_rl.generation.segment_plan import segmented_plan
from metric_tracker_rl.generation.warehouse.benign import BENIGN_CHANGES
from metric_tracker_rl.generation.warehouse.events import draw_event_log
from metric_tracker_rl.sql.columns import Labels
from metric_tracker_rl.world.events import EventLog
from metric_tracker_rl.world.funnel import WINDOW_START
from metric_tracker_rl.world.metrics_layer import dashboard
from metric_tracker_rl.world.segments import Segment, world_of

DEFECTS = defect_edits(WAREHOUSE_DEFECTS)  # the warehouse's mechanisms, by name

SEEDS = (11, 12)


def _log(seed: int) -> EventLog:
    key = EpisodeKey.of(seed)
    return draw_event_log(segmented_plan(key, 56, world_of(DEEP_MIX.dimensions)), key)


@pytest.fixture(scope="module")
def logs() -> Lazy[int, EventLog]:
    return Lazy(SEEDS, _log)


Row = tuple[int, str, str, str]


def _rows(log: EventLog) -> dict[Row, dict[str, Any]]:
    """The dashboard's rows by (day, platform, app_version, country): their numbers."""
    board = dashboard(log)
    days = (board["date"] - np.datetime64(WINDOW_START, "D")).astype(int).tolist()
    texts = []
    for name in ("platform", "app_version", "country"):
        column = board[name]
        assert isinstance(column, Labels)
        texts.append([column.values[code] for code in column.codes])
    numbers = [name for name, column in board.items() if not isinstance(column, Labels) and name != "date"]
    return {
        (day, *text): {name: board[name][i] for name in numbers}  # type: ignore[index]
        for i, (day, *text) in enumerate(zip(days, *texts, strict=True))
    }


def _inside(row: Row, segment: Segment) -> bool:
    _, platform, version, country = row
    named = segment.normalised().named()
    return all(
        {"platform": platform, "app_version": version, "country": country}[field] == value
        for field, value in named.items()
    )


def _metric(rows: dict[Row, dict[str, Any]], record: DefectRecord, day: int) -> float:
    """The record's metric over its segment on one date, from the dashboard's counts."""
    chosen = [values for row, values in rows.items() if row[0] == day and _inside(row, record.segment)]
    sums = {name: sum(values[name] for values in chosen) for name in ("sessions", "menu_sessions", "cart_sessions")}
    if record.metric in ("sessions", "revenue_usd"):
        return float(sum(values[record.metric] for values in chosen))
    if record.metric == "app_open_to_menu_open":
        return sums["menu_sessions"] / sums["sessions"]
    assert record.metric == "menu_open_to_product_added_to_cart"
    return sums["cart_sessions"] / sums["menu_sessions"]


@pytest.mark.parametrize("kind", list(DEFECTS))
@pytest.mark.parametrize("seed", first_fast(SEEDS))
def test_a_defect_reaches_the_dashboard_on_its_segment_and_dates_only(
    logs: Mapping[int, EventLog], kind: str, seed: int
) -> None:
    clean = logs[seed]
    broken, record = DEFECTS[kind](clean, derive_rng(EpisodeKey.of(seed), "test-defect", len(kind)))
    assert record.kind == kind and record.days and record.metric
    events = broken.events  # still grouped by session, in time order (the metrics layer's de-duplication reads it so)
    assert (np.lexsort((events.timestamp_us, events.session)) == np.arange(len(events))).all()
    before, after = _rows(clean), _rows(broken)
    reach = range(min(record.days) - 1, max(record.days) + 1)  # a session may run past midnight into a date
    for row in set(before) | set(after):
        if not (_inside(row, record.segment) and row[0] in reach):
            assert before.get(row) is not None and after.get(row) is not None, row
            for name, value in before[row].items():
                assert value == after[row][name] or (np.isnan(value) and np.isnan(after[row][name])), (row, name)
    # Every defect makes its count or rate fall on its last date (clock skew: the date whose sessions moved away);
    # revenue_usd moves, either way (a re-sent purchase doubles it, a mislabelled currency converts it wrongly).
    day = record.days[-1]
    was, now = _metric(before, record, day), _metric(after, record, day)
    if record.metric == "revenue_usd":
        assert abs(now / was - 1) > 0.1, (record, was, now)
    else:
        assert now < 0.75 * was, (record, was, now)


@pytest.mark.parametrize("kind", list(BENIGN_CHANGES))
@pytest.mark.parametrize("seed", first_fast(SEEDS))
def test_a_benign_change_moves_the_raw_events_and_not_the_dashboard(
    logs: Mapping[int, EventLog], kind: str, seed: int
) -> None:
    clean = logs[seed]
    changed, record = BENIGN_CHANGES[kind](clean, derive_rng(EpisodeKey.of(seed), "test-benign", len(kind)))
    before, after = _rows(clean), _rows(changed)
    assert before.keys() == after.keys()
    assert all(
        before[row][name] == after[row][name] or np.isnan(before[row][name]) for row in before for name in before[row]
    )

    def raw_opens(log: EventLog) -> int:
        places = SessionPlaces.of(log)
        users = log.users
        platform = users.platform.values.index(str(record.segment.platform))
        country = users.country.values.index(str(record.segment.country))
        return int(((places.platform == platform) & (places.country == country) & (places.day == record.day)).sum())

    assert raw_opens(changed) > 1.3 * raw_opens(clean), record
