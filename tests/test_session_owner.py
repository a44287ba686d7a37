"""A session's id opens nothing for another client, in process (the servers' tests in test_session_binding.py check
it on the wire): an id not its client's (another's, or none) goes on as a stand-in no session has, the stand-in is
named back in every answer (a socket's frames, an HTTP body with its length set again), and a socket learns its own
id from OpenEnv's answer."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metric_tracker_rl.serving.asgi_types import Message
from metric_tracker_rl.serving.session_clock import TrackedSession
from metric_tracker_rl.serving.session_owner import (
    CREATED_REPLY_MAX_CHARS,
    ForeignSessions,
    StandIns,
    attaching_to,
    created_id,
    disguised_request,
    may_name_a_session,
    renaming_frames,
    telling_own_id,
    with_body_length,
)

MINE, THEIRS = "10.0.0.1", "10.0.0.2"


def sent_through(send_wrapper: Any, messages: list[Message]) -> list[Message]:
    """The messages a wrapped send passes on, for `messages` sent through it."""
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def run() -> None:
        wrapped = send_wrapper(send)
        for message in messages:
            await wrapped(message)

    asyncio.run(run())
    return sent


def received_through(frames: list[str], foreign: ForeignSessions, stand_ins: StandIns, wrapped: bool) -> list[str]:
    queue = [{"type": "websocket.receive", "text": frame} for frame in frames]

    async def receive() -> Message:
        return queue.pop(0)

    async def run() -> list[str]:
        renamed = renaming_frames(receive, foreign, stand_ins, wrapped)
        return [(await renamed())["text"] for _ in frames]

    return asyncio.run(run())


def foreign_to_me() -> ForeignSessions:
    http = {
        "http-theirs": TrackedSession(client=THEIRS, transport="http"),
        "http-mine": TrackedSession(client=MINE, transport="http"),
    }
    return ForeignSessions(http, {"socket-theirs": THEIRS, "socket-mine": MINE}, MINE)


def test_only_the_clients_own_sessions_are_not_foreign() -> None:
    """Another client's id and an id no session has take one path (a stand-in); the client's own id does not."""
    foreign = foreign_to_me()
    assert foreign.not_own("http-theirs") and foreign.not_own("socket-theirs") and foreign.not_own("unknown")
    assert not foreign.not_own("http-mine") and not foreign.not_own("socket-mine")
    assert not foreign.not_own(7) and not foreign.not_own("") and not foreign.not_own(None)
    mine_only = ForeignSessions({"a": TrackedSession(client=MINE, transport="http")}, {"b": MINE}, MINE)
    assert not mine_only.not_own("a") and not mine_only.not_own("b") and mine_only.not_own("c")


# Only an id some session has gets a stand-in, and OpenEnv's ids are UUIDs: text that JSON writes as it is.
@given(ids=st.lists(st.text("0123456789abcdef-", min_size=1, max_size=36), min_size=1, max_size=5))
def test_each_named_id_has_one_stand_in_of_its_own_and_is_named_back(ids: list[str]) -> None:
    stand_ins = StandIns()
    first = [stand_ins.stand_in_for(session_id) for session_id in ids]
    assert [stand_ins.stand_in_for(session_id) for session_id in ids] == first  # the same id, the same stand-in
    assert len(set(first)) == len(set(ids)) and not set(first) & set(ids)
    answer = json.dumps({"error": {"message": f"Session {first[0]} not found"}}).encode()
    assert stand_ins.named_back(answer) == json.dumps({"error": {"message": f"Session {ids[0]} not found"}}).encode()


def test_an_http_answer_names_the_id_back_with_its_length_set_again() -> None:
    stand_ins = StandIns()
    stand_in = stand_ins.stand_in_for("theirs")
    body = json.dumps({"error": {"message": f"unknown session {stand_in}"}}).encode()
    sent = sent_through(
        stand_ins.sending,
        [
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            },
            {"type": "http.response.body", "body": body[:10], "more_body": True},
            {"type": "http.response.body", "body": body[10:]},
        ],
    )
    start, whole = sent
    expected = json.dumps({"error": {"message": "unknown session theirs"}}).encode()
    assert whole == {"type": "http.response.body", "body": expected}
    assert start["headers"] == [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(expected)).encode()),
    ]


def test_a_socket_frame_names_the_id_back_and_nothing_changes_without_a_stand_in() -> None:
    stand_ins = StandIns()
    frame = {"type": "websocket.send", "text": "no session named"}
    assert sent_through(stand_ins.sending, [frame]) == [frame]  # none yet: passed on as it came
    stand_in = stand_ins.stand_in_for("theirs")
    sent = sent_through(
        stand_ins.sending,
        [{"type": "websocket.send", "text": f'{{"id": "{stand_in}"}}'}, {"type": "websocket.send", "bytes": b"binary"}],
    )
    assert sent == [
        {"type": "websocket.send", "text": '{"id": "theirs"}'},
        {"type": "websocket.send", "bytes": b"binary"},
    ]


def test_a_post_naming_a_foreign_session_carries_a_stand_in_and_its_new_length() -> None:
    body = json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"session_id": "theirs", "name": "query"}}
    ).encode()
    scope = {"type": "http", "headers": [(b"host", b"x"), (b"content-length", str(len(body)).encode())]}
    new_scope, new_body, send = disguised_request(scope, body, lambda message: None, "theirs")  # type: ignore[arg-type]
    request = json.loads(new_body)
    assert request["params"]["name"] == "query" and request["params"]["session_id"] != "theirs"
    assert new_scope["headers"] == [(b"host", b"x"), (b"content-length", str(len(new_body)).encode())]
    assert scope["headers"][1] == (b"content-length", str(len(body)).encode())  # the original scope is untouched


@pytest.mark.parametrize("wrapped", [False, True])
def test_a_socket_frame_naming_a_session_not_its_clients_is_renamed_and_others_pass_as_they_came(wrapped: bool) -> None:
    def frame(session_id: str) -> str:
        request = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"session_id": session_id}}
        return json.dumps({"type": "mcp", "data": request} if wrapped else request)

    stand_ins = StandIns()
    not_own = ["http-theirs", "socket-theirs", "unknown"]  # another client's, or no session's: one path
    untouched = [frame("socket-mine"), frame("http-mine"), "not json {", '{"type": "reset", "data": {}}']
    received = received_through([*map(frame, not_own), *untouched], foreign_to_me(), stand_ins, wrapped)
    assert received[len(not_own) :] == untouched
    for named, text in zip(not_own, received, strict=False):
        renamed = json.loads(text)
        params = (renamed["data"] if wrapped else renamed)["params"]
        assert params["session_id"] != named and stand_ins.named[params["session_id"]] == named
    assert sorted(stand_ins.named.values()) == sorted(not_own)


def test_a_wrapped_frame_is_read_only_inside_its_mcp_envelope() -> None:
    plain = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "x", "params": {"session_id": "http-theirs"}})
    assert received_through([plain], foreign_to_me(), StandIns(), wrapped=True) == [plain]


def test_a_socket_learns_its_own_id_from_the_answer_to_session_create() -> None:
    told: list[str] = []
    answer = json.dumps({"jsonrpc": "2.0", "id": 1, "result": {"session_id": "own"}})
    wrapped_answer = json.dumps({"type": "mcp", "data": json.loads(answer)})
    sent_through(
        lambda send: telling_own_id(send, False, told.append),
        [{"type": "websocket.send", "text": answer}, {"type": "websocket.send", "text": wrapped_answer}],
    )
    sent_through(
        lambda send: telling_own_id(send, True, told.append),
        [{"type": "websocket.send", "text": wrapped_answer}, {"type": "websocket.send", "text": answer}],
    )
    assert told == ["own", "own"]  # each transport's own framing, and only it
    long_answer = json.dumps({"result": {"session_id": "x" * CREATED_REPLY_MAX_CHARS}})
    sent = sent_through(
        lambda send: telling_own_id(send, False, told.append), [{"type": "websocket.send", "text": long_answer}]
    )
    assert told == ["own", "own"] and sent == [{"type": "websocket.send", "text": long_answer}]


@pytest.mark.parametrize(
    "text",
    [
        '{"result": {"session_id": "a", "more": 1}}',
        '{"result": {"session_id": 3}}',
        '{"result": "a"}',
        "[1]",
        "not json",
        "[" * 100_000,
    ],
)
def test_only_an_answer_that_is_exactly_a_new_session_id_names_one(text: str) -> None:
    assert created_id(text, wrapped=False) is None


def test_a_text_may_name_a_session_when_it_spells_the_key_or_escapes_it() -> None:
    assert may_name_a_session('{"session_id": 1}') and may_name_a_session('{"session\\u005fid": 1}')
    assert not may_name_a_session('{"type": "reset"}')


def test_attaching_rewrites_only_the_session_parameter_of_the_query() -> None:
    scope = {"type": "websocket", "query_string": b"session_id=theirs&x=1&session_id="}
    assert attaching_to(scope, "stand-in")["query_string"] == b"session_id=stand-in&x=1&session_id=stand-in"
    assert attaching_to({"type": "websocket"}, "stand-in")["query_string"] == b""


def test_a_replaced_body_gets_its_own_content_length() -> None:
    scope = {"headers": [(b"Content-Length", b"99"), (b"accept", b"*/*")]}
    assert with_body_length(scope, b"12345")["headers"] == [(b"accept", b"*/*"), (b"content-length", b"5")]
