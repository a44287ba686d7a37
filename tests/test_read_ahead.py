"""What a socket sends ahead of a running step is read, counted and bounded as it arrives (`step_bound.Connection`,
outside the frame guard): a full report pipelined behind a step is a legal client's and is kept; frames the guard
refuses unparsed count against the bound (bytes and parse work), so a close behind them is seen at once and the step
given up; a socket closed for what it sent ahead is told so (code 1008 and a reason), and so is its step."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.serving.hardening import WebSocketFrameGuard
from metric_tracker_rl.serving.message_cost import MAX_JSON_ELEMENTS
from metric_tracker_rl.serving.step_bound import (
    CONNECTION,
    LOOKAHEAD_BYTES,
    OVERRUN_CODE,
    OVERRUN_REASON,
    GivenUp,
    watched,
    within_bound,
)

ROW = {
    "date": "2026-03-10",
    "entity_type": "event_count",
    "entity_name": "app_opens",
    "anomaly_type": "absolute_spike_in_event_count",
    "detection_method": "compare_count_to_median",
    "baseline_value": 1.0,
    "observed_value": 2.0,
    "delta_value": 1.0,
    "severity": "high",
}
# A legal client's full report: 200 rows and a note, about 89 KB (more than the read-ahead's 64 KB).
REPORT = json.dumps(
    {
        "type": "step",
        "data": {
            "classifications": [{**ROW, "delta_value": float(index)} for index in range(200)],
            "metadata": {"note": "n" * 40_000},
        },
    }
)
SQL_STEP = json.dumps({"type": "step", "data": {"analysis_method": "query", "analysis_args": {"sql": "SELECT 1"}}})
# Refused unparsed (too many values), 16 KB each: charged about 0.08 s of parse work each.
DENSE = "[" + ",".join(["0"] * (MAX_JSON_ELEMENTS + 8)) + "]"


async def _forever() -> None:
    await asyncio.sleep(3600)


def _feed() -> tuple[asyncio.Queue[dict[str, Any]], Any]:
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def receive() -> dict[str, Any]:
        return await queue.get()

    return queue, receive


def test_a_full_report_and_a_state_request_pipelined_behind_a_step_are_kept() -> None:
    """A step runs while its client sends its report (89 KB: past the read-ahead's bytes) and a state request:
    nothing is given up and the app reads both (the state request used to close the socket, the step answered
    "not run ... busy", and the episode was lost)."""

    async def scenario() -> tuple[str, list[str]]:
        queue, receive = _feed()
        async with watched(receive) as read_ahead:
            queue.put_nowait({"type": "websocket.receive", "text": SQL_STEP})  # not yet taken by the app
            queue.put_nowait({"type": "websocket.receive", "text": REPORT})
            queue.put_nowait({"type": "websocket.receive", "text": json.dumps({"type": "state"})})
            outcome = await within_bound(asyncio.sleep(0.3, "answered"), 30)
            seen = [json.loads((await read_ahead())["text"])["type"] for _ in range(3)]
        return str(outcome), seen

    outcome, seen = asyncio.run(scenario())
    assert len(REPORT) > LOOKAHEAD_BYTES + 20_000
    assert outcome == "answered" and seen == ["step", "step", "state"]


def test_refused_frames_count_against_the_read_ahead_and_a_close_behind_them_gives_the_step_up() -> None:
    """A step runs; its socket sends 12 frames the guard refuses unparsed (too many values), then closes. The frames
    count against the read-ahead as they arrive, so the step is given up at once, as overrun, and the socket is
    closed with 1008 and a reason (the guard used to swallow them and wait out their parse work before reading on,
    so the close went unseen and the statement ran its full time after its client left)."""

    async def scenario() -> tuple[GivenUp | None, list[dict[str, Any]]]:
        queue, receive = _feed()
        sent: list[dict[str, Any]] = []
        outcome: list[Any] = []

        stepping = asyncio.Event()

        async def app(scope: Any, app_receive: Any, send: Any) -> None:
            assert (await app_receive())["type"] == "websocket.connect"
            await app_receive()  # the step
            assert CONNECTION.get() is not None
            stepping.set()
            outcome.append(await within_bound(_forever(), 30))
            await app_receive()  # the close that ended it

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        queue.put_nowait({"type": "websocket.connect"})
        queue.put_nowait({"type": "websocket.receive", "text": SQL_STEP})
        scope = {"type": "websocket", "path": "/ws", "client": ("127.0.88.1", 5000), "headers": []}
        guarded = asyncio.ensure_future(WebSocketFrameGuard(app)(scope, receive, send))
        await asyncio.wait_for(stepping.wait(), 5)
        for _ in range(12):
            queue.put_nowait({"type": "websocket.receive", "text": DENSE})
        queue.put_nowait({"type": "websocket.disconnect", "code": 1006})
        await asyncio.wait_for(guarded, 10)
        return (outcome[0] if isinstance(outcome[0], GivenUp) else None), sent

    given_up, sent = asyncio.run(scenario())
    assert given_up is not None and given_up.reason == "overrun" and given_up.seconds < 1.0
    assert {"type": "websocket.close", "code": OVERRUN_CODE, "reason": OVERRUN_REASON} in sent


def test_a_step_given_up_for_what_its_socket_sent_ahead_says_so() -> None:
    env = MetricTrackerRlEnvironment()
    env.reset(difficulty="easy", seed=5)
    try:
        answer = env._given_up(GivenUp("overrun", 60.0, 0.1))
    finally:
        env.close()
    assert OVERRUN_REASON in answer.message and str(OVERRUN_CODE) in answer.message
    assert "busy" not in answer.message
