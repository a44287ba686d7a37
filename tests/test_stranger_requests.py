"""Requests a stranger can send that the server once answered badly: a lone UTF-16 surrogate (or bytes that are not
UTF-8) as a JSON-RPC id or session id on POST /mcp was an HTTP 500 with a traceback; `GET /ready` showed any client
the statement ledger, whose sums before and after another client's step show that statement and its CPU time."""

from __future__ import annotations

import httpx
import pytest

from metric_tracker_rl.serving.session_clock import TrackedSession
from metric_tracker_rl.serving.session_owner import ForeignSessions

LONE = [
    '{"jsonrpc": "2.0", "id": "\\ud800", "method": "tools/list"}',
    '{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "get_annotations", '
    '"session_id": "\\ud800"}}',
    '{"jsonrpc": "2.0", "id": "\\udfff", "method": "openenv/session/create"}',
    '{"jsonrpc": "2.0", "id": 1, "method": "openenv/session/close", "params": {"session_id": "\\udbff"}}',
]


@pytest.mark.parametrize("body", [*LONE, b'{"jsonrpc": "2.0", "id": "\xed\xa0\x80", "method": "tools/list"}'])
def test_text_that_is_not_unicode_on_mcp_is_a_json_rpc_parse_error(server_url: str, body: str | bytes) -> None:
    reply = httpx.post(f"{server_url}/mcp", content=body, headers={"content-type": "application/json"}, timeout=30)
    assert reply.status_code == 200, reply.text
    error = reply.json()["error"]
    assert error["code"] == -32700 and ("surrogate" in error["message"] or "UTF-8" in error["message"])


def test_a_lone_surrogate_elsewhere_is_a_400_and_a_valid_pair_is_served(server_url: str) -> None:
    refused = httpx.post(
        f"{server_url}/reset", content='{"seed": "\\ud800"}', headers={"content-type": "application/json"}, timeout=30
    )
    assert refused.status_code == 400 and "surrogate" in refused.json()["detail"]
    paired = httpx.post(
        f"{server_url}/mcp",
        content='{"jsonrpc": "2.0", "id": "\\ud83d\\ude00", "method": "tools/list"}',
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert paired.status_code == 200 and paired.json()["id"] == "\U0001f600"


def test_ready_shows_another_client_no_statement_ledger(server_url: str) -> None:
    with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.7"), timeout=30) as stranger:
        shown = stranger.get(f"{server_url}/ready")
        forwarded = httpx.get(f"{server_url}/ready", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=30)
    operator = httpx.get(f"{server_url}/ready", timeout=30)
    assert shown.status_code == 200 and shown.json() == {"status": "ready"}
    assert forwarded.json() == {"status": "ready"}
    assert "engine_cpu_s" in operator.json()["statements"]  # the server's own machine reads where time goes


def test_another_clients_id_and_an_id_never_issued_take_the_same_path() -> None:
    """Both reach OpenEnv as a stand-in and are named back in its answer, so neither is answered sooner (another
    client's live id alone was rewritten, and answered measurably slower than an unknown one)."""
    http = {
        "theirs": TrackedSession("10.0.0.2", "http", session_id="theirs"),
        "mine": TrackedSession("10.0.0.1", "http", session_id="mine"),
    }
    sockets = {"their-socket": "10.0.0.2", "my-socket": "10.0.0.1"}
    sessions = ForeignSessions(http, sockets, "10.0.0.1")
    assert [sessions.not_own(named) for named in ("theirs", "their-socket", "never-issued")] == [True] * 3
    assert [sessions.not_own(named) for named in ("mine", "my-socket", "", None, 7)] == [False] * 5
