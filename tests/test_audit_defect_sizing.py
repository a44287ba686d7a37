"""The audit's version 2 sizes a bot farm and a load test by their segment's sessions: on each of its dates the
trace its mechanism leaves (the bots' idle sessions or their devices' share, the test's busiest device) stands past
the bar the audit's findability holds a trace to, however big the segment (a sample of the world from the export's
to four times it) and whichever platform and country the edit draws. Version 1 edits as it did."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metric_tracker_rl.catalog.seeding import EpisodeKey
from metric_tracker_rl.catalog.tiers import DEEP_MIX, WAREHOUSE_SAMPLE_RATE
from metric_tracker_rl.catalog.versions import tier_at
from metric_tracker_rl.generation.audit.world import AUDIT_EDIT_SETTINGS, audit_edits, edit_settings
from metric_tracker_rl.generation.defects.log_edits import SessionPlaces
from metric_tracker_rl.generation.segment_plan import segmented_plan
from metric_tracker_rl.generation.warehouse.events import draw_event_log
from metric_tracker_rl.world.events import EventLog, event_code
from metric_tracker_rl.world.segments import Segment, world_of

TRACE_SDS = 4.0  # a trace stands this many (robust) standard deviations from the segment's other dates
SCALES = (1.0, 2.0, 4.0)  # the world's sample, against the export's: its segments from a dozen sessions a date
OPENING = {event_code(name) for name in ("session_start", "first_open", "app_open", "user_engagement")}


@functools.cache
def _log(scale: float) -> EventLog:
    key = EpisodeKey.of(11)
    return draw_event_log(segmented_plan(key, 56, world_of(DEEP_MIX.dimensions)), key, WAREHOUSE_SAMPLE_RATE * scale)


def _opened_sessions(log: EventLog, segment: Segment) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The segment's opened sessions with consent (those a profile of its events reads): each one's date and
    user, and whether it did nothing past opening."""
    events, sessions = log.events, log.sessions
    opened = np.zeros(len(sessions.user), dtype=bool)
    opened[events.session[events.name == event_code("app_open")]] = True
    past_opening = np.zeros(len(sessions.user), dtype=bool)
    past_opening[events.session[~np.isin(events.name, list(OPENING))]] = True
    places, users = SessionPlaces.of(log), log.users
    inside = (
        opened
        & ~sessions.consent_denied
        & (places.day >= 0)
        & (places.platform == users.platform.values.index(str(segment.platform)))
        & (places.country == users.country.values.index(str(segment.country)))
    )
    return places.day[inside], sessions.user[inside], ~past_opening[inside]


def busiest_device_share(log: EventLog, segment: Segment) -> np.ndarray:
    """Each date's busiest device's share of the segment's opened sessions (NaN on a date with none)."""
    day, user, _ = _opened_sessions(log, segment)
    pairs, counts = np.unique(np.stack([day, user]), axis=1, return_counts=True)
    busiest = np.zeros(log.num_days)
    np.maximum.at(busiest, pairs[0], counts)
    total = np.bincount(day, minlength=log.num_days).astype(float)
    return np.where(total > 0, busiest / np.maximum(total, 1.0), np.nan)


def idle_share(log: EventLog, segment: Segment) -> np.ndarray:
    """Each date's share of the segment's opened sessions that did nothing past opening."""
    day, _, idle = _opened_sessions(log, segment)
    total = np.bincount(day, minlength=log.num_days).astype(float)
    return np.where(total > 0, np.bincount(day, idle, minlength=log.num_days) / np.maximum(total, 1.0), np.nan)


def standing(values: np.ndarray, days: tuple[int, ...]) -> float:
    """How far the least of `values` on `days` stands above the other dates' median, in their robust standard
    deviations."""
    others = np.delete(values, list(days))
    others = others[np.isfinite(others)]
    median = float(np.median(others))
    spread = 1.4826 * float(np.median(np.abs(others - median)))
    return (min(values[list(days)]) - median) / spread


@pytest.mark.parametrize(
    "seed",
    [
        3,  # web US, the most web sessions and a busy customer among them
        9,  # android JP, whose busiest customers hold the most of a segment's sessions
    ],
)
def test_version_2s_load_test_leaves_its_trace_in_the_hardest_segments(seed: int) -> None:
    """The sweep below's quick twin: the segments where version 1's load test left none."""
    test_version_2s_load_test_leaves_its_busiest_device_trace_however_big_its_segment.hypothesis.inner_test(1.0, seed)


# A draw the sweep found short when the test's lead device ran 0.7 of its sessions: android in Japan, four devices
# running 69 checkouts on one date, the busiest holding a third of the segment's sessions where a date's busiest holds
# 0.10 to 0.24 (3.89 robust deviations).
SHORT_TRACE_SEED = 1029


def test_version_2s_load_test_trace_stands_in_the_draw_the_sweep_once_found_short() -> None:
    test_version_2s_load_test_leaves_its_busiest_device_trace_however_big_its_segment.hypothesis.inner_test(
        1.0, SHORT_TRACE_SEED
    )


@pytest.mark.slow  # sixty logs edited and read
@settings(max_examples=60, deadline=None, derandomize=True)  # the same sixty draws on every run: no flaky failure
@given(scale=st.sampled_from(SCALES), seed=st.integers(0, 2**32 - 1))
def test_version_2s_load_test_leaves_its_busiest_device_trace_however_big_its_segment(scale: float, seed: int) -> None:
    clean = _log(scale)
    log, record = audit_edits(("untagged_load_test",), 2)["untagged_load_test"](clean, np.random.default_rng(seed))
    shares = busiest_device_share(log, record.segment)
    assert standing(shares, record.days) > TRACE_SDS, (record, scale, shares[list(record.days)])


def test_version_2s_bot_farm_leaves_its_trace_in_the_hardest_segment() -> None:
    """The sweep below's quick twin: web US, the most web sessions, where version 1's bots (its least a date) left
    none."""
    test_version_2s_bot_farm_leaves_its_idle_sessions_trace_however_big_its_segment.hypothesis.inner_test(1.0, 23)


@pytest.mark.slow  # sixty logs edited and read
@settings(max_examples=60, deadline=None, derandomize=True)  # the same sixty draws on every run
@given(scale=st.sampled_from(SCALES), seed=st.integers(0, 2**32 - 1))
def test_version_2s_bot_farm_leaves_its_idle_sessions_trace_however_big_its_segment(scale: float, seed: int) -> None:
    clean = _log(scale)
    log, record = audit_edits(("bot_farm",), 2)["bot_farm"](clean, np.random.default_rng(seed))
    idle, busiest = idle_share(log, record.segment), busiest_device_share(log, record.segment)
    assert max(standing(idle, record.days), standing(busiest, record.days)) > TRACE_SDS, (record, scale)


def test_each_version_edits_with_its_own_settings_and_version_1_as_it_did() -> None:
    """Version 1 keeps the one setting it was published with; version 2 sizes both mechanisms by their segment; a
    later version edits with the latest set at or before it."""
    assert edit_settings(1) == {"bot_farm": {"least_per_day": 30}}
    assert set(edit_settings(2)) == {"bot_farm", "untagged_load_test"}
    latest = tier_at("audit").version
    assert edit_settings(latest) == AUDIT_EDIT_SETTINGS[max(AUDIT_EDIT_SETTINGS)] == edit_settings(latest + 1)
