"""A step belongs to its connection and answers within the server's step bound (one mechanism, `step_bound`): a
statement past the bound is stopped in its worker and answered as an error that uses no step, the episode going on;
a statement whose socket closes is stopped at once, its worker kept and free for the next."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from websockets.sync.client import connect

from metric_tracker_rl import MetricTrackerRlAction
from metric_tracker_rl.server_process import free_port
from metric_tracker_rl.serving import step_bound
from metric_tracker_rl.serving.app import build_app
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.serving.step_bound import LOOKAHEAD_BYTES, OVERRUN_CODE, GivenUp, watched, within_bound
from metric_tracker_rl.settings import ServerSettings
from metric_tracker_rl.sql.pool import pool

CHEAP = "SELECT count(*) AS n FROM daily"
RUNAWAY = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r"


def query(sql: str) -> MetricTrackerRlAction:
    return MetricTrackerRlAction(analysis_method="query", analysis_args={"sql": sql})


async def _until_idle(deadline_s: float = 60.0) -> None:
    """The pool's stops are read on the loop that made them."""
    until = time.monotonic() + deadline_s
    while pool().busy and time.monotonic() < until:
        await asyncio.sleep(0.02)


def test_a_statement_past_the_step_bound_is_stopped_and_answered_as_an_error_that_uses_no_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = MetricTrackerRlEnvironment()
    env.reset(difficulty="easy", seed=5)

    async def play() -> tuple[Any, Any, Any, int, int]:
        first = await env.step_async(query(CHEAP))  # (starts the workers, within the default bound)
        monkeypatch.setattr(step_bound, "_BOUND_S", [1.0])
        stopped, replaced = pool().stopped, pool().replaced
        given_up = await env.step_async(query(RUNAWAY))
        await _until_idle()
        after = await env.step_async(query(CHEAP))
        return first, given_up, after, pool().stopped - stopped, pool().replaced - replaced

    first, given_up, after, stopped, replaced = asyncio.run(play())
    assert first.status == "ok"
    assert given_up.status == "error" and "step time bound of 1 s (STEP_TIMEOUT_S)" in given_up.message
    assert "No step was used" in given_up.message and not given_up.done
    assert given_up.steps_remaining == first.steps_remaining  # the given-up step counted nothing
    assert after.status == "ok" and after.steps_remaining == first.steps_remaining - 1
    assert (stopped, replaced) == (1, 0)  # interrupted in its worker, which is kept


def _socket_messages() -> tuple[asyncio.Queue[dict[str, Any]], Any]:
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def receive() -> dict[str, Any]:
        return await queue.get()

    return queue, receive


async def _forever(cancelled: asyncio.Event) -> None:
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        cancelled.set()
        raise


@pytest.mark.parametrize("pipelined", [0, 1, 5])
def test_a_close_after_a_step_and_its_pipelined_messages_gives_the_step_up(pipelined: int) -> None:
    async def scenario() -> tuple[GivenUp | None, bool, list[str]]:
        queue, receive = _socket_messages()
        async with watched(receive) as read_ahead:
            cancelled = asyncio.Event()
            stepping = asyncio.ensure_future(within_bound(_forever(cancelled), 3600))
            for index in range(pipelined):
                queue.put_nowait({"type": "websocket.receive", "text": json.dumps({"type": "state", "n": index})})
            queue.put_nowait({"type": "websocket.disconnect", "code": 1006})
            outcome = await asyncio.wait_for(stepping, 30)
            seen = [(await read_ahead())["type"] for _ in range(pipelined + 1)]  # the app still reads every one
        return (outcome if isinstance(outcome, GivenUp) else None), cancelled.is_set(), seen

    outcome, cancelled, seen = asyncio.run(scenario())
    assert outcome is not None and outcome.reason == "closed" and cancelled
    assert seen == ["websocket.receive"] * pipelined + ["websocket.disconnect"]


def test_a_close_hidden_behind_a_message_past_the_read_ahead_bound_still_gives_the_step_up() -> None:
    """A client cannot hide its close behind padded messages: past the app's next message (one of any accepted
    size), a message past the bound ends the connection, so the step is given up as overrun at once (it used to
    run on to its time bound), what was sent ahead is dropped, and the app reads the disconnect next."""

    async def scenario() -> tuple[GivenUp | None, list[Any]]:
        queue, receive = _socket_messages()
        async with watched(receive) as read_ahead:
            queue.put_nowait({"type": "websocket.receive", "text": "x" * (LOOKAHEAD_BYTES + 1)})
            queue.put_nowait({"type": "websocket.receive", "text": "x" * (LOOKAHEAD_BYTES + 1)})
            queue.put_nowait({"type": "websocket.receive", "text": " " * 10})
            queue.put_nowait({"type": "websocket.disconnect", "code": 1006})
            outcome = await within_bound(_forever(asyncio.Event()), 30)
            seen = [(await read_ahead()).get("code")]
        return (outcome if isinstance(outcome, GivenUp) else None), seen

    outcome, seen = asyncio.run(scenario())
    assert outcome is not None and outcome.reason == "overrun" and outcome.seconds < 5
    assert seen == [OVERRUN_CODE]


def test_work_that_cannot_be_stopped_halfway_keeps_its_result() -> None:
    async def scenario() -> object:
        async def on_a_thread() -> str:
            return await step_bound.uncancelled(asyncio.to_thread(time.sleep, 0.3))  # type: ignore[arg-type]

        return await within_bound(on_a_thread(), 0.05)

    assert asyncio.run(scenario()) is None  # time.sleep's result: the work finished and its result stood


@contextlib.contextmanager
def _server_in_this_process() -> Iterator[str]:
    """The real app on a loopback port, served from a thread of this process, so the SQL pool it uses is this
    process's and its counters can be read."""
    port = free_port()
    settings = ServerSettings.load(host="127.0.0.1", port=port, enable_web_interface=False)
    server = uvicorn.Server(
        uvicorn.Config(
            build_app(settings=settings), host="127.0.0.1", port=port, log_level="warning", ws="websockets-sansio"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        until = time.monotonic() + 60
        while not server.started and time.monotonic() < until:
            time.sleep(0.05)
        yield f"ws://127.0.0.1:{port}/ws"
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.mark.slow
def test_a_statement_whose_socket_closes_is_stopped_and_its_worker_kept() -> None:
    with _server_in_this_process() as url:
        stopped, replaced = pool().stopped, pool().replaced
        with connect(url, open_timeout=30) as ws:
            ws.send(json.dumps({"type": "reset", "data": {"difficulty": "easy", "seed": 5}}))
            json.loads(ws.recv(timeout=60))
            ws.send(json.dumps({"type": "step", "data": query(CHEAP).model_dump(exclude_none=True)}))
            json.loads(ws.recv(timeout=60))
            ws.send(json.dumps({"type": "step", "data": query(RUNAWAY).model_dump(exclude_none=True)}))
            time.sleep(0.5)  # the runaway runs
        until = time.monotonic() + 60
        while pool().stopped == stopped and time.monotonic() < until:
            time.sleep(0.05)
        assert pool().stopped == stopped + 1 and pool().replaced == replaced
