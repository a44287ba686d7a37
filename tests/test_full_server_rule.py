"""The full server's clock and rules, without a server: work counts until it is answered, and only for one more
period; fresh addresses count as one client against a client seen before them."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metric_tracker_rl.serving.full_server import FullServerRule, is_work
from metric_tracker_rl.serving.session_clock import TrackedSession
from metric_tracker_rl.serving.sessions import answered

IDLE_S = 10.0


@pytest.fixture
def session() -> TrackedSession:
    tracked = TrackedSession("127.0.0.1", "ws", used=True)
    tracked.last_work_at = 100.0
    return tracked


def test_an_idle_session_has_one_period(session: TrackedSession) -> None:
    assert FullServerRule(4, IDLE_S).seconds_left(session, 100.0 + IDLE_S + 1) == pytest.approx(-1.0)


def test_work_being_answered_keeps_the_place_one_more_period_at_most(session: TrackedSession) -> None:
    rule = FullServerRule(4, IDLE_S)
    session.working = True
    assert rule.seconds_left(session, 100.0 + IDLE_S + 1) == pytest.approx(IDLE_S - 1)
    assert rule.seconds_left(session, 100.0 + 2 * IDLE_S + 1) < 0  # a message never answered holds no place for ever


def test_the_answer_starts_the_clock_again(session: TrackedSession) -> None:
    session.working = True
    answered(session, {"type": "websocket.accept"})
    assert session.working and session.last_work_at == 100.0  # not an answer
    answered(session, {"type": "websocket.send", "text": "{}"})
    assert not session.working and session.last_work_at > 100.0


@pytest.mark.parametrize(
    ("text", "transport", "work"),
    [
        ('{"type": "reset"}', "ws", True),
        ('{"type": "step", "data": {}}', "ws", True),
        ('{"type": "state"}', "ws", False),
        ('{"type": ["reset"]}', "ws", False),
        ('{"type": {"a": 1}}', "ws", False),
        ('{"type": null}', "ws", False),
        ('{"method": "tools/call", "type": 1}', "mcp", True),
        ('{"method": ["tools/call"]}', "mcp", False),
        ('[{"type": "reset"}]', "ws", False),
        ('{"type": "reset"', "ws", False),
        (None, "ws", False),
    ],
)
def test_only_a_known_message_name_is_work(text: str | None, transport: str, work: bool) -> None:
    """Any JSON a stranger sends is read without raising: a name that is not a string is no work."""
    assert is_work(text, transport) is work


def _full(rule: FullServerRule, holders: dict[str, int], now: float) -> tuple[list[TrackedSession], Counter[str]]:
    """Sessions of each client in the order given, each client first asking a second after the one before."""
    sessions = []
    for index, (client, count) in enumerate(holders.items()):
        rule.seen(client, now - 100 + index)
        for _ in range(count):
            sessions.append(TrackedSession(client, "ws", used=True, last_work_at=now - 50))
    return sessions, Counter(session.client for session in sessions)


@settings(max_examples=40, deadline=None)
@given(known_holds=st.integers(1, 4), fresh=st.integers(1, 12), waiting=st.sets(st.integers(0, 11)))
def test_fresh_addresses_count_as_one_against_a_client_seen_before_them(
    known_holds: int, fresh: int, waiting: set[int]
) -> None:
    """However many places a known client holds and however many fresh addresses hold one each, a fresh address
    asking for a place is given none of the known client's unless it holds two more than all of them together (it
    used to lose one to each fresh address when it held two); the known client asking is given one of theirs at
    once whenever they hold as many as it does together, a session waiting for a message first."""
    rule, now = FullServerRule(known_holds + fresh, IDLE_S * 10), 1000.0
    holders = {"known": known_holds, **{f"10.9.0.{index}": 1 for index in range(fresh)}}
    sessions, held = _full(rule, holders, now)
    loop = asyncio.new_event_loop()
    for index in waiting & set(range(fresh)):
        sessions[known_holds + index].receiving = loop.create_future()  # its socket waits for a message
    loop.close()
    rule.seen("10.9.1.1", now)
    asked = rule.victim(sessions, held, "10.9.1.1", now)
    assert asked is None or asked[0].client != "known" or known_holds >= fresh + 2
    taken = rule.newer_victim(sessions, held, "known", now)
    if fresh < known_holds:
        assert taken is None
    else:
        assert taken is not None and taken.client != "known"
        assert (taken.receiving is not None) == bool(waiting & set(range(fresh)))
