"""The warehouse's standing traffic: each piece is excluded by exactly the rule the metrics layer states for it, so
the dashboard without that rule's input differs on the piece's own segment and dates, the way a model that skips
the rule would read it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from metric_tracker_rl.generation.segment_plan import SegmentedPlan, segmented_plan
from metric_tracker_rl.generation.warehouse.events import draw_event_log
from metric_tracker_rl.generation.warehouse.standing import QA_COUNTRY, QA_DAYS, QA_DEPTH
from metric_tracker_rl.spec.seeding import EpisodeKey
from metric_tracker_rl.spec.tiers import DEEP_MIX
from metric_tracker_rl.sql.columns import SqlTable
from metric_tracker_rl.world.events import EventLog
from metric_tracker_rl.world.metrics_layer import dashboard, segment_metric
from metric_tracker_rl.world.segments import Segment, world_of

DAYS = 56


@pytest.fixture(scope="module", params=[3, 11])
def seed(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@pytest.fixture(scope="module")
def plan(seed: int) -> SegmentedPlan:
    return segmented_plan(EpisodeKey.of(seed), DAYS, world_of(DEEP_MIX.dimensions))


@pytest.fixture(scope="module")
def log(plan: SegmentedPlan, seed: int) -> EventLog:
    return draw_event_log(plan, EpisodeKey.of(seed))


@pytest.fixture(scope="module")
def board(log: EventLog) -> SqlTable:
    return dashboard(log)


def _differs(before: SqlTable, after: SqlTable, segment: Segment, metric: str, days: range) -> np.ndarray:
    """(len(days),) the metric's change on the segment, date by date, from `before` to `after`."""
    return np.array([segment_metric(after, segment, metric, d) - segment_metric(before, segment, metric, d)
                     for d in days])


def test_release_qa_is_excluded_by_the_internal_tag(plan: SegmentedPlan, log: EventLog, board: SqlTable) -> None:
    """QA's orders on each release's first dates carry traffic_type internal: the dashboard without the tag counts
    them there, orders placed and never paid, so the release's order-to-payment rate falls on those dates."""
    untagged = dashboard(replace(log, events=replace(log.events, internal=np.zeros(len(log.events), dtype=bool))))
    for release in plan.releases:
        segment = Segment(platform=release.platform, country=QA_COUNTRY, app_version=release.version)
        first = range(release.start_day, min(release.start_day + QA_DAYS, DAYS))
        orders = _differs(board, untagged, segment, "order_sessions", first)
        paid = _differs(board, untagged, segment, "payment_sessions", first)
        # The office's own staff (tagged too) may use the new version and pay; QA's orders add only unpaid ones.
        assert (orders >= paid).all() and (paid >= 0).all() and (orders - paid).sum() >= len(first)
        rate = _differs(board, untagged, segment, "order_placed_to_payment_successful", first)
        assert np.nanmean(rate) < -0.05
    assert QA_DEPTH == len(("menu_open", "product_added_to_cart", "order_placed"))  # one step short of payment


def test_the_device_farm_is_excluded_by_the_test_devices_list(log: EventLog, board: SqlTable) -> None:
    """The farm's devices run release builds (no debug tag): only the test_devices list names them. Without the
    list the dashboard counts their sessions, each an app_open and nothing else, many a day on android in the
    office's country."""
    farm = [device for device in log.lists.test_devices if not _tagged(log, device)]
    assert farm, "the farm's devices carry no debug tag"
    unlisted = dashboard(replace(log, lists=replace(log.lists, test_devices=tuple(
        device for device in log.lists.test_devices if device not in farm))))
    segment = Segment(platform="android", country=QA_COUNTRY)
    sessions = _differs(board, unlisted, segment, "sessions", range(DAYS))
    assert (sessions > 0).mean() > 0.9 and sessions.mean() >= 2 * len(farm)
    assert not _differs(board, unlisted, segment, "menu_sessions", range(DAYS)).any()


def _tagged(log: EventLog, device: str) -> bool:
    """Whether any event of the device's sessions carries debug_mode."""
    user = np.flatnonzero(log.users.device_ids == device)
    sessions = np.isin(log.sessions.user, user)
    return bool(log.events.debug[sessions[log.events.session]].any())


def test_offline_mobile_events_are_excluded_by_the_late_cutoff(log: EventLog, board: SqlTable) -> None:
    """Mobile sessions that went offline send the rest of their events days later: the dashboard without the
    cut-off (every event ingested on time) counts more mobile sessions and more of their later steps, by a share
    large enough to move a value past the grader's tolerance; web, which cannot queue, is as it was."""
    on_time = dashboard(replace(log, events=replace(log.events, ingested_us=log.events.timestamp_us)))
    for platform, share in (("ios", 0.02), ("android", 0.03)):
        segment = Segment(platform=platform)
        for metric in ("sessions", "payment_sessions"):
            late = sum(segment_metric(on_time, segment, metric, d) for d in range(DAYS))
            kept = sum(segment_metric(board, segment, metric, d) for d in range(DAYS))
            assert late > (1 + share) * kept, (platform, metric)
    assert not _differs(board, on_time, Segment(platform="web"), "sessions", range(DAYS)).any()
