"""The full server's clock, without a server: work counts until it is answered, and only for one more period."""

from __future__ import annotations

import pytest

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
