"""Riding out a restart, in process with a fake clock (the servers' tests in test_restarts.py restart a real one):
a reset is retried on what a later attempt can get past, with waits that double up to a cap, until the deadline,
then it fails naming the URL, the attempts and the last error; other errors come back at once."""

from __future__ import annotations

import asyncio
import logging
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosedError
from websockets.frames import Close

from metric_tracker_rl.reconnect import (
    FIRST_WAIT_S,
    GOING_AWAY,
    MAX_WAIT_S,
    RETRY_DEADLINE_VAR,
    ServerUnavailable,
    SessionLost,
    areset_until_served,
    backoff_waits,
    describe,
    is_transient,
    lost_connection_text,
    reset_until_served,
)

URL = "http://127.0.0.1:9"


class FakeTime:
    """A clock that only the sleeps move."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def failing(times: int, error: BaseException, then: str = "episode") -> tuple[list[int], object]:
    """A reset that raises `error` `times` times, then answers `then`; and the count of its calls."""
    calls = [0]

    def reset() -> str:
        calls[0] += 1
        if calls[0] <= times:
            raise error
        return then

    return calls, reset


@given(seed=st.integers(0, 2**32))
def test_waits_double_to_the_cap_each_scaled_by_half_to_one(seed: int) -> None:
    waits = backoff_waits(random.Random(seed))
    nominal = [min(MAX_WAIT_S, FIRST_WAIT_S * 2**n) for n in range(10)]
    for full in nominal:
        assert full / 2 <= next(waits) <= full


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError("refused"),
        TimeoutError(),
        OSError("unreachable"),
        ConnectionClosedError(Close(1011, "internal"), None),
        RuntimeError("CAPACITY_REACHED: the server is full"),
    ],
)
def test_what_a_later_attempt_can_get_past_is_transient(error: BaseException) -> None:
    assert is_transient(error)


@pytest.mark.parametrize("error", [ValueError("bad difficulty"), RuntimeError("the episode is over"), KeyError("x")])
def test_a_mistake_is_not_transient(error: BaseException) -> None:
    assert not is_transient(error)


def test_a_reset_is_retried_until_the_server_answers(caplog: pytest.LogCaptureFixture) -> None:
    time = FakeTime()
    calls, reset = failing(3, ConnectionRefusedError("refused"))
    dropped = []
    with caplog.at_level(logging.WARNING, logger="metric_tracker_rl.reconnect"):
        answer = reset_until_served(
            reset, lambda: dropped.append(1), URL, deadline_s=300, clock=time.clock, sleep=time.sleep
        )
    assert answer == "episode" and calls == [4] and len(dropped) == 3 and len(time.slept) == 3
    assert len(caplog.records) == 3 and all(URL in record.getMessage() for record in caplog.records)
    assert "attempt 3" in caplog.records[-1].getMessage()


def test_past_the_deadline_it_names_the_url_the_attempts_the_setting_and_the_last_error() -> None:
    time = FakeTime()
    calls, reset = failing(10**6, ConnectionRefusedError("refused"))
    with pytest.raises(ServerUnavailable) as raised:
        reset_until_served(reset, lambda: None, URL, deadline_s=20, clock=time.clock, sleep=time.sleep)
    message = str(raised.value)
    assert time.now <= 20 and calls[0] == len(time.slept) + 1
    assert URL in message and f"{calls[0]} attempt(s)" in message and RETRY_DEADLINE_VAR in message
    assert message.endswith("last error: ConnectionRefusedError: refused")
    assert isinstance(raised.value.__cause__, ConnectionRefusedError)


def test_a_mistake_is_raised_at_once_and_a_dead_connection_that_refuses_to_close_is_passed_over() -> None:
    time = FakeTime()
    _, reset = failing(1, ValueError("bad difficulty"))
    with pytest.raises(ValueError, match="bad difficulty"):
        reset_until_served(reset, lambda: None, URL, deadline_s=300, clock=time.clock, sleep=time.sleep)
    assert time.slept == []

    def refuse_to_close() -> None:
        raise OSError("already closed")

    _, reset = failing(2, TimeoutError())
    assert (
        reset_until_served(reset, refuse_to_close, URL, deadline_s=300, clock=time.clock, sleep=time.sleep) == "episode"
    )


def test_the_asyncio_variant_waits_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    time = FakeTime()

    async def fake_sleep(seconds: float) -> None:
        time.sleep(seconds)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    calls, failing_reset = failing(2, ConnectionRefusedError("refused"))
    dropped = []

    async def reset() -> object:
        return failing_reset()  # type: ignore[operator]

    async def drop() -> None:
        dropped.append(1)

    answer = asyncio.run(areset_until_served(reset, drop, URL, deadline_s=300, clock=time.clock))
    assert answer == "episode" and calls == [3] and len(dropped) == 2 and len(time.slept) == 2
    _, never = failing(10**6, ConnectionRefusedError("refused"))

    async def reset_never() -> object:
        return never()  # type: ignore[operator]

    with pytest.raises(ServerUnavailable, match="within 5 s"):
        asyncio.run(areset_until_served(reset_never, drop, URL, deadline_s=5, clock=time.clock))


def test_a_lost_connection_says_whether_the_server_is_stopping() -> None:
    stopping = lost_connection_text(SessionLost("closed", GOING_AWAY))
    lost = lost_connection_text(ConnectionClosedError(Close(1006, ""), None))
    assert stopping.startswith("error: the server is stopping (SessionLost: closed)")
    assert lost.startswith("error: the connection to the server was lost")
    for text in (stopping, lost):
        assert "Stop calling tools" in text and "the next reset starts a new episode" in text


def test_an_error_is_described_on_one_line_and_cut_short() -> None:
    assert describe(RuntimeError("two\n  lines")) == "RuntimeError: two lines"
    assert describe(OSError()) == "OSError: no message"
    assert len(describe(ValueError("x" * 1000))) == len("ValueError: ") + 300
