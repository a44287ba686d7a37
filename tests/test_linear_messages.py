"""Every check of an untrusted message is linear in its size: text built so that a backtracking pattern for JSON
strings rescans the rest of the message from every escaped quote (a few hundred KB of `\\"`), sent on every route
of both entry points, is answered at once and nobody else waits; and the scanner that finds strings agrees with
a character-by-character reading of JSON.

A server check bounds only whether an answer comes at all within a generous time (a quadratic scan of these
messages takes minutes); how long anyone waits is lab/speed/attack_latency.py's to measure."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator

import httpx
import pytest
from conftest import ROOT, running_server, serving
from hypothesis import given
from hypothesis import strategies as st
from session_helpers import ask, http_from, inherited_environment, observation, ws_from

from metric_tracker_rl.server_process import free_port
from metric_tracker_rl.serving import message_cost
from metric_tracker_rl.serving.message_cost import MAX_JSON_DEPTH, parse_cost_s, structure_problem

RESET = {"type": "reset", "data": {"task_id": "easy_two_spikes"}}
ANSWER_S = 30.0  # a quadratic scan of ESCAPES takes minutes; a linear one milliseconds
ESCAPES = 150_000  # 300 KB of escaped quotes


def quadratic_text(escapes: int = ESCAPES) -> str:
    """A JSON-like text with more brackets than the fast count allows and an unclosed string of escaped quotes."""
    return '{"type": "step", "data": {"x": "' + "[" * (MAX_JSON_DEPTH + 8) + '\\"' * escapes


def reference_outside_strings(text: str) -> str:
    """What lies outside JSON strings, read one character at a time (slow, plainly right)."""
    kept, in_string, escaped = [], False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        else:
            kept.append(char)
    return "".join(kept)


JSON_VALUES = st.recursive(
    st.none() | st.integers() | st.text(alphabet='"\\[]{},ab\u00e9'),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(alphabet='"\\[{,x'), inner, max_size=4),
    max_leaves=30,
)


@given(JSON_VALUES)
def test_the_string_scanner_reads_json_as_a_parser_does(value: object) -> None:
    text = json.dumps(value, ensure_ascii=False)
    assert message_cost.outside_strings(text) == reference_outside_strings(text)
    assert message_cost.outside_strings(text.encode()) == reference_outside_strings(text)


@given(st.text(alphabet='"\\[]{},a'))
def test_the_string_scanner_agrees_on_any_text(text: str) -> None:
    """Invalid JSON too, up to its first backslash outside a string (where a parser stops reading)."""
    reference = reference_outside_strings(text)
    if "\\" not in reference:
        assert message_cost.outside_strings(text) == reference


def test_a_message_built_to_make_string_scanning_quadratic_is_checked_at_once() -> None:
    """In a child process with a time limit: the backtracking pattern took 3.9 s for 32 KB, so hours for 1 MB."""
    unclosed = quadratic_text(500_000)
    too_deep = '{"x": ' + "[" * 40 + '"' + '\\"' * 500_000 + '"' + "]" * 40 + "}"
    check = (
        "import sys\n"
        "from metric_tracker_rl.serving.message_cost import structure_problem\n"
        "unclosed, too_deep = sys.stdin.read().split('\\n')\n"
        "assert structure_problem(unclosed) is None and structure_problem(unclosed.encode()) is None\n"
        "assert 'nests too deeply' in structure_problem(too_deep).message\n"
    )
    subprocess.run(
        [sys.executable, "-c", check],
        input=f"{unclosed}\n{too_deep}",
        text=True,
        cwd=ROOT,
        check=True,
        timeout=ANSWER_S,
    )


def test_no_message_is_free() -> None:
    assert parse_cost_s("") >= message_cost.MESSAGE_COST_S
    assert parse_cost_s('{"type": "state"}') > parse_cost_s("") and parse_cost_s("x" * 100) > parse_cost_s("x")
    assert structure_problem(quadratic_text(1000)) is None  # text, not structure: the parser answers it


# --- on a live server ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def image_server() -> Iterator[str]:
    """The image's entry point with the debugger on and a secret set."""
    env = {
        "ENABLE_WEB_INTERFACE": "true",
        "MAX_SESSIONS_PER_CLIENT": "8",
        "SQL_WORKERS": "2",
        "HELD_OUT_SECRET": "linear-messages",
    }
    with running_server(extra_env=env) as url:
        yield url


@pytest.fixture(scope="module")
def uvicorn_server() -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "server.app:app", "--host", "127.0.0.1", "--port", str(port)]
    with serving(command, port, {**inherited_environment(), "ENABLE_WEB_INTERFACE": "false"}) as url:
        yield url


def while_attacked(url: str, attack: Callable[[], object]) -> object:
    """Run `attack` from 127.0.0.40 while another address asks for /health and resets its own session; the
    attack's answer (every answer within ANSWER_S)."""
    answers: list[object] = []
    attacker = threading.Thread(target=lambda: answers.append(attack()), daemon=True)
    attacker.start()
    with http_from(url, "127.0.0.41") as http:
        http.timeout = httpx.Timeout(ANSWER_S)
        assert http.get("/health").status_code == 200
    with ws_from(url, "127.0.0.41") as ws:
        ws.send(json.dumps(RESET))
        assert observation(json.loads(ws.recv(timeout=ANSWER_S)))["status"] == "ready"
    attacker.join(timeout=ANSWER_S)
    assert answers, "the attacker was not answered"
    return answers[0]


def post_quadratic(url: str, path: str) -> Callable[[], int]:
    def post() -> int:
        with http_from(url, "127.0.0.40") as http:
            http.timeout = httpx.Timeout(ANSWER_S)
            return http.post(path, content=quadratic_text(), headers={"content-type": "application/json"}).status_code

    return post


def frame_quadratic(url: str, path: str, query: str = "") -> Callable[[], dict]:
    def send() -> dict:
        with ws_from(url, "127.0.0.40", path + query) as ws:
            ws.send(quadratic_text())
            return json.loads(ws.recv(timeout=ANSWER_S))

    return send


POST_ROUTES = ["/nope", "/reset", "/step", "/mcp", "/web/gradio_api/queue/join"]
slow = pytest.mark.slow


@slow
@pytest.mark.parametrize("path", POST_ROUTES)
def test_quadratic_bodies_are_answered_at_once_on_the_image_server(image_server: str, path: str) -> None:
    status = while_attacked(image_server, post_quadratic(image_server, path))
    assert status in ((200, 400) if path == "/mcp" else range(400, 500)), status  # /mcp: a JSON-RPC parse error


@slow
def test_a_quadratic_tool_call_on_an_http_session_is_answered_at_once(image_server: str) -> None:
    with http_from(image_server, "127.0.0.40") as http:
        created = http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "openenv/session/create"}).json()
    session_id = created["result"]["session_id"]

    def call() -> int:
        text = (
            '{"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"session_id": "'
            + session_id
            + '", "name": "query", "arguments": {"sql": "'
            + quadratic_text()[33:]
            + '"}}}'
        )
        with http_from(image_server, "127.0.0.40") as http:
            http.timeout = httpx.Timeout(ANSWER_S)
            return http.post("/mcp", content=text, headers={"content-type": "application/json"}).status_code

    assert while_attacked(image_server, call) in (200, 400)


@slow
@pytest.mark.parametrize("path", ["/ws", "/mcp"])
def test_quadratic_frames_are_answered_at_once_on_the_image_server(image_server: str, path: str) -> None:
    reply = while_attacked(image_server, frame_quadratic(image_server, path))
    assert isinstance(reply, dict) and ("error" in reply or reply.get("type") == "error"), reply


@slow
def test_a_quadratic_frame_on_an_attached_http_session_is_answered_at_once(image_server: str) -> None:
    with http_from(image_server, "127.0.0.40") as http:
        created = http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "openenv/session/create"}).json()
    query = f"?session_id={created['result']['session_id']}"
    reply = while_attacked(image_server, frame_quadratic(image_server, "/ws", query))
    assert isinstance(reply, dict) and reply.get("type") == "error", reply


@slow
@pytest.mark.parametrize("path", ["/nope", "/reset", "/mcp"])
def test_quadratic_bodies_are_answered_at_once_under_plain_uvicorn(uvicorn_server: str, path: str) -> None:
    status = while_attacked(uvicorn_server, post_quadratic(uvicorn_server, path))
    assert status in ((200, 400) if path == "/mcp" else range(400, 500)), status


@slow
def test_quadratic_frames_are_answered_at_once_under_plain_uvicorn(uvicorn_server: str) -> None:
    reply = while_attacked(uvicorn_server, frame_quadratic(uvicorn_server, "/ws"))
    assert isinstance(reply, dict) and reply.get("type") == "error", reply
    with ws_from(uvicorn_server, "127.0.0.42") as ws:
        assert observation(ask(ws, RESET))["status"] == "ready"
