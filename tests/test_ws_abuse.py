"""Abuse of the WebSocket session protocol with a raw client against a live server.

Every malformed message gets a clear error (an error message or an error observation); the session either
survives it or is closed cleanly by the server; a second session keeps working throughout; /health keeps
answering.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from reliability_support import INTERNALS, record
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from metric_tracker_rl.serving.hardening import MAX_JSON_DEPTH, MAX_MESSAGE_BYTES
from metric_tracker_rl.serving.message_cost import MAX_JSON_ELEMENTS
from metric_tracker_rl.serving.report_step import MAX_SUBMISSION_ROWS

pytestmark = pytest.mark.slow  # starts server processes or a browser

STORM_RESETS = 200
OUTCOMES: Counter[str] = Counter()


def open_session(server_url: str) -> ClientConnection:
    # The client's own limit is raised so that only the server's limit is under test.
    return connect(server_url.replace("http", "ws", 1) + "/ws", max_size=8 * MAX_MESSAGE_BYTES, open_timeout=30)


def exchange(ws: ClientConnection, message: Any) -> dict[str, Any]:
    """Send one frame (dicts as JSON, str and bytes as they are) and return the decoded reply."""
    ws.send(json.dumps(message) if isinstance(message, dict) else message)
    reply = json.loads(ws.recv(timeout=60))
    OUTCOMES["frames"] += 1
    if reply["type"] == "error":
        OUTCOMES[f"error:{reply['data']['code']}"] += 1
        assert not INTERNALS.search(reply["data"]["message"]), reply
    elif reply["type"] == "observation" and reply["data"]["observation"]["status"] == "error":
        OUTCOMES["error_observation"] += 1
        assert not INTERNALS.search(reply["data"]["observation"]["message"]), reply
    return reply


def observation(reply: dict[str, Any]) -> dict[str, Any]:
    assert reply["type"] == "observation", reply
    return reply["data"]["observation"]


def error_code(reply: dict[str, Any]) -> str:
    assert reply["type"] == "error", reply
    assert reply["data"]["message"], reply
    return reply["data"]["code"]


def error_observation(reply: dict[str, Any]) -> str:
    obs = observation(reply)
    assert obs["status"] == "error", obs
    assert obs["message"], obs
    return obs["message"]


def assert_session_works(ws: ClientConnection) -> None:
    obs = observation(exchange(ws, {"type": "reset", "data": {"task_id": "easy_two_spikes"}}))
    assert obs["status"] == "ready"
    obs = observation(exchange(ws, {"type": "step", "data": {"analysis_method": "list_dates"}}))
    assert obs["status"] == "ok"


@pytest.fixture(scope="module")
def witness(server_url: str) -> Iterator[ClientConnection]:
    """A well-behaved session open during every abuse test."""
    with open_session(server_url) as ws:
        assert_session_works(ws)
        yield ws
    record("websocket_abuse", dict(OUTCOMES))


@pytest.fixture
def session(server_url: str, witness: ClientConnection) -> Iterator[ClientConnection]:
    """A fresh session for one abuse test; afterwards the witness and /health must still be fine."""
    with open_session(server_url) as ws:
        yield ws
    observation(exchange(witness, {"type": "step", "data": {"analysis_method": "get_annotations"}}))
    assert httpx.get(f"{server_url}/health", timeout=10).json() == {"status": "healthy"}


def row(**overrides: Any) -> dict[str, Any]:
    base = {
        "date": "2026-03-10",
        "entity_type": "event_count",
        "entity_name": "app_opens",
        "anomaly_type": "absolute_spike_in_event_count",
        "detection_method": "compare_count_to_median",
        "baseline_value": 40000.0,
        "observed_value": 60000.0,
        "delta_value": 20000.0,
        "severity": "high",
    }
    return {**base, **overrides}


def test_invalid_json_gets_an_error_and_the_session_survives(session: ClientConnection) -> None:
    for text in ("{not json", "", '{"type": "reset"', "\x00\x01"):
        assert error_code(exchange(session, text)) == "INVALID_JSON"
    assert_session_works(session)


@pytest.mark.parametrize("text", ["[1, 2]", "42", '"reset"', "null", "true"])
def test_json_that_is_not_an_object_gets_an_error(session: ClientConnection, text: str) -> None:
    reply = exchange(session, text)
    assert error_code(reply) == "INVALID_JSON"
    assert "JSON object" in reply["data"]["message"]
    assert_session_works(session)


def test_binary_frames_get_an_error(session: ClientConnection) -> None:
    reply = exchange(session, json.dumps({"type": "reset", "data": {}}).encode())
    assert error_code(reply) == "INVALID_JSON"
    assert "text frame" in reply["data"]["message"]
    assert_session_works(session)


@pytest.mark.parametrize("message", [{"type": "explode"}, {}, {"type": None}, {"type": ["reset"]}, {"data": {}}])
def test_unknown_message_types_get_an_error(session: ClientConnection, message: dict[str, Any]) -> None:
    assert error_code(exchange(session, message)) in {"UNKNOWN_TYPE", "VALIDATION_ERROR"}
    assert_session_works(session)


@pytest.mark.parametrize(
    "message",
    [
        {"type": "step", "data": "hello"},
        {"type": "step", "data": None},
        {"type": "reset", "data": [1, 2]},
        {"type": "step", "data": {"classifications": "all of them"}},
        {"type": "step", "data": {"classifications": [row(baseline_value="high")]}},
        {"type": "step", "data": {"classifications": [row(severity="apocalyptic")]}},
        {"type": "step", "data": {"payload_generators": {"method_name": "x"}}},
        {"type": "step", "data": {"analysis_method": 12}},
        {"type": "step", "data": {"analysis_method": "list_dates", "unknown_field": 1}},
        {"type": "step", "data": {"analysis_method": "x" * 10_000}},
    ],
)
def test_wrong_field_types_get_a_validation_error(session: ClientConnection, message: dict[str, Any]) -> None:
    observation(exchange(session, {"type": "reset", "data": {}}))
    assert error_code(exchange(session, message)) == "VALIDATION_ERROR"
    assert_session_works(session)


@pytest.mark.parametrize(
    "data",
    [
        {"seed": "abc"},
        {"seed": -1},
        {"seed": 2**80},
        {"seed": True},
        {"task_id": ["easy_two_spikes"]},
        {"difficulty": "nightmare"},
        {"anomaly_count": 10**9},
        {"max_steps": 0},
        {"anomalies": "many"},
        {"anomalies": [{"family": "funnel_break"}] * 50},
        {"no_such_setting": 1},
    ],
)
def test_bad_reset_settings_get_an_error_observation(session: ClientConnection, data: dict[str, Any]) -> None:
    assert "reset failed" in error_observation(exchange(session, {"type": "reset", "data": data}))
    assert_session_works(session)


@pytest.mark.parametrize(
    "args",
    [
        [1, 2],
        "date=2026-03-10",
        {"date": 20260310},
        {"date": "2026-13-45"},
        {"limit": 10**12},
        {"threshold_multiplier": -1},
        {"metric_names": ["app_opens"] * 1000},
        {"rows": [{"a": 1}] * 1000},
    ],
)
def test_bad_tool_arguments_get_an_error_observation(session: ClientConnection, args: Any) -> None:
    observation(exchange(session, {"type": "reset", "data": {}}))
    for method in ("rows_for_date", "list_suspicious_dates", "get_median_filter_rows", "preview_submission"):
        reply = exchange(session, {"type": "step", "data": {"analysis_method": method, "analysis_args": args}})
        if reply["type"] == "error":  # a non-object analysis_args fails the action model itself
            assert error_code(reply) == "VALIDATION_ERROR"
        else:
            assert f"arguments for {method}" in error_observation(reply)
    assert_session_works(session)


def test_a_message_over_the_size_limit_closes_only_its_session(session: ClientConnection) -> None:
    """A frame that declares more than the limit is refused from its header, with close code 1009.

    Only the header is written: a client still sending a megabyte when the server closes gets a TCP reset that
    can arrive before the close frame, which would make the close code a matter of timing."""
    length = MAX_MESSAGE_BYTES + 1
    header = bytes([0x81, 0x80 | 127]) + length.to_bytes(8, "big") + bytes(4)  # FIN+text, masked, 64-bit length
    session.socket.sendall(header)
    with pytest.raises(ConnectionClosed) as closed:
        session.recv(timeout=60)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009  # "message too big"
    OUTCOMES["closed_message_too_big"] += 1


def test_a_message_just_under_the_size_limit_is_answered(session: ClientConnection) -> None:
    observation(exchange(session, {"type": "reset", "data": {}}))
    pad = "x" * (MAX_MESSAGE_BYTES - 1000)
    reply = exchange(session, {"type": "step", "data": {"analysis_method": "list_dates", "analysis_args": {"p": pad}}})
    message = error_observation(reply)
    assert "unexpected argument" in message and len(message) < 2000  # the padding is not echoed back
    assert_session_works(session)


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 5_000, 200_000])
def test_deeply_nested_messages_get_an_error(session: ClientConnection, depth: int) -> None:
    nested = "[" * depth + "]" * depth
    text = '{"type": "step", "data": {"analysis_method": "list_dates", "analysis_args": {"x": ' + nested + "}}}"
    reply = exchange(session, text)
    assert error_code(reply) == "INVALID_JSON"
    # Past MAX_JSON_ELEMENTS brackets, the message is refused for its number of values before its depth is read.
    assert ("nests too deeply" if depth <= MAX_JSON_ELEMENTS else "too many JSON values") in reply["data"]["message"]
    assert_session_works(session)


def test_nesting_within_the_limit_is_an_ordinary_bad_argument(session: ClientConnection) -> None:
    observation(exchange(session, {"type": "reset", "data": {}}))
    nested: Any = 1
    for _ in range(MAX_JSON_DEPTH - 6):
        nested = {"k": [nested]} if isinstance(nested, int) else [nested]
    reply = exchange(
        session,
        {"type": "step", "data": {"analysis_method": "preview_submission", "analysis_args": {"rows": [{"x": nested}]}}},
    )
    assert observation(reply)["status"] == "ok"  # the row is reported invalid by the preview
    assert observation(reply)["analysis_result"]["issues"][0]["code"] == "invalid_row"


def test_thousands_of_rows_in_a_submission_get_a_clear_error(session: ClientConnection) -> None:
    observation(exchange(session, {"type": "reset", "data": {}}))
    rows = [row(delta_value=float(i)) for i in range(MAX_SUBMISSION_ROWS + 50)]  # valid: only their number is wrong
    reply = exchange(session, {"type": "step", "data": {"classifications": rows}})
    assert f"at most {MAX_SUBMISSION_ROWS} rows" in error_observation(reply)
    assert observation(reply)["submissions_remaining"] == 1  # no submission used
    rows = [row(delta_value=float(i)) for i in range(3_000)]  # more values than a message may hold
    message = {"type": "step", "data": {"classifications": rows}}
    assert len(json.dumps(message)) < MAX_MESSAGE_BYTES
    reply = exchange(session, message)
    assert error_code(reply) == "INVALID_JSON" and "too many JSON values" in reply["data"]["message"]
    generators = [{"method_name": "get_median_filter_rows", "threshold_multiplier": 0.001}] * 2_000
    reply = exchange(session, {"type": "step", "data": {"payload_generators": generators}})
    assert error_code(reply) == "VALIDATION_ERROR"
    assert reply["data"]["errors"][0]["type"] == "too_long"
    assert_session_works(session)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_get_an_error(session: ClientConnection, literal: str) -> None:
    observation(exchange(session, {"type": "reset", "data": {}}))
    submission = json.dumps({"type": "step", "data": {"classifications": [row(baseline_value=0.0)]}})
    reply = exchange(session, submission.replace('"baseline_value": 0.0', f'"baseline_value": {literal}'))
    assert error_code(reply) == "VALIDATION_ERROR"
    reply = exchange(
        session,
        '{"type": "step", "data": {"analysis_method": "get_median_filter_rows", '
        f'"analysis_args": {{"threshold_multiplier": {literal}}}}}}}',
    )
    assert "threshold_multiplier" in error_observation(reply)
    reply = exchange(session, f'{{"type": "reset", "data": {{"anomaly_density": {literal}}}}}')
    assert "anomaly_density" in error_observation(reply)
    assert_session_works(session)


@pytest.mark.parametrize("name", ["数据🙂", "app_opens\u0000", "\u202eapp_opens", "é" * 200])
def test_unicode_names_get_an_error(session: ClientConnection, name: str) -> None:
    observation(exchange(session, {"type": "reset", "data": {}}))
    reply = exchange(session, {"type": "step", "data": {"analysis_method": name[:128]}})
    assert "unknown analysis method" in error_observation(reply)
    reply = exchange(
        session,
        {
            "type": "step",
            "data": {
                "analysis_method": "compare_count_to_median",
                "analysis_args": {"date": "2026-03-10", "entity_name": name},
            },
        },
    )
    assert "entity_name" in error_observation(reply)
    reply = exchange(session, {"type": "reset", "data": {"task_id": name}})
    assert "unknown task_id" in error_observation(reply)
    assert_session_works(session)


def test_lone_surrogates_get_an_error(session: ClientConnection) -> None:
    lone = ('{"type": "step", "data": {"analysis_method": "\\ud800"}}', '{"type": "reset", "data": {"\\udc00": 1}}')
    for text in lone:
        reply = exchange(session, text)
        assert error_code(reply) == "INVALID_JSON"
        assert "surrogate" in reply["data"]["message"]
    assert_session_works(session)


def test_a_step_before_reset_gets_an_error_observation(session: ClientConnection) -> None:
    reply = exchange(session, {"type": "step", "data": {"analysis_method": "list_dates"}})
    message = error_observation(reply)
    assert "No active episode" in message and "reset" in message
    assert "HTTP" not in message  # advice for stateless HTTP is wrong on a WebSocket session
    assert_session_works(session)


@pytest.mark.parametrize("settings", [{"seed": -5}, {"difficulty": "impossible"}, {"task_id": "no_such_task"}])
def test_a_refused_reset_reports_the_live_episode_unchanged(
    session: ClientConnection, settings: dict[str, Any]
) -> None:
    """A reset the environment refuses leaves the episode running, and its error observation shows that
    episode's true budgets (not zeros); the next step goes on from them."""
    observation(exchange(session, {"type": "reset", "data": {"task_id": "easy_two_spikes"}}))
    stepped = observation(exchange(session, {"type": "step", "data": {"analysis_method": "list_dates"}}))
    refused = observation(exchange(session, {"type": "reset", "data": settings}))
    assert refused["status"] == "error" and "unchanged" in refused["message"], refused
    for budget in ("task_id", "steps_remaining", "submissions_remaining"):
        assert refused[budget] == stepped[budget], (budget, refused, stepped)
    assert refused["submissions_remaining"] > 0
    following = observation(exchange(session, {"type": "step", "data": {"analysis_method": "list_dates"}}))
    assert following["status"] == "ok" and following["steps_remaining"] == stepped["steps_remaining"] - 1


def test_a_refused_first_reset_says_no_episode_is_active(session: ClientConnection) -> None:
    refused = observation(exchange(session, {"type": "reset", "data": {"seed": -5}}))
    assert refused["status"] == "error" and "No episode is active" in refused["message"], refused


def test_steps_after_done_get_an_error_observation(session: ClientConnection) -> None:
    observation(exchange(session, {"type": "reset", "data": {"max_steps": 1}}))
    reply = exchange(session, {"type": "step", "data": {"analysis_method": "list_dates"}})
    assert reply["data"]["done"] is True
    for _ in range(20):
        reply = exchange(session, {"type": "step", "data": {"classifications": []}})
        assert "episode is over" in error_observation(reply)
        assert reply["data"]["reward"] == 0.0 and reply["data"]["done"] is True
    assert_session_works(session)


def test_a_reset_storm_is_answered_in_order(session: ClientConnection) -> None:
    for i in range(STORM_RESETS):  # pipelined: every reset is sent before any reply is read
        session.send(json.dumps({"type": "reset", "data": {"seed": i, "difficulty": "hard"}}))
    for i in range(STORM_RESETS):
        obs = observation(json.loads(session.recv(timeout=120)))
        assert obs["status"] == "ready" and obs["config"]["seed"] == i
    OUTCOMES["frames"] += STORM_RESETS
    assert_session_works(session)


def test_state_and_close_messages(session: ClientConnection) -> None:
    observation(exchange(session, {"type": "reset", "data": {"task_id": "hard_mixed_multi"}}))
    reply = exchange(session, {"type": "state"})
    assert reply["type"] == "state" and reply["data"]["task_id"] == "hard_mixed_multi"
    session.send(json.dumps({"type": "close"}))
    with pytest.raises(ConnectionClosed):
        session.recv(timeout=30)


def test_a_session_closed_by_its_client_ends_without_an_error() -> None:
    """OpenEnv closes the socket after the client already did; the guard keeps that out of the error log."""
    from starlette.websockets import WebSocketDisconnect

    from metric_tracker_rl.serving.hardening import WebSocketFrameGuard

    async def app_closing_a_gone_socket(scope: dict, receive: Any, send: Any) -> None:
        raise WebSocketDisconnect(code=1006)

    async def receive() -> dict:
        return {"type": "websocket.disconnect"}

    async def send(message: dict) -> None:
        return None

    guard = WebSocketFrameGuard(app_closing_a_gone_socket)
    asyncio.run(guard({"type": "websocket", "path": "/ws"}, receive, send))  # must not raise
    with pytest.raises(WebSocketDisconnect):  # other paths are not the guard's business
        asyncio.run(guard({"type": "websocket", "path": "/elsewhere"}, receive, send))
