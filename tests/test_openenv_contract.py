"""The OpenEnv internals `metric_tracker_rl.compat.openenv` relies on, checked against the installed
OpenEnv.

Each test names one internal; an OpenEnv upgrade that removes or changes it fails here with what to update, instead
of breaking a session somewhere later. The behaviour checks drive a real OpenEnv app (in process, no network)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import Response
from fastapi.testclient import TestClient
from openenv.core.env_client import EnvClient
from openenv.core.env_server import gradio_theme, http_server
from openenv.core.env_server.types import ConcurrencyConfig
from openenv.core.sync_client import SyncEnvClient
from starlette.exceptions import HTTPException

from metric_tracker_rl.catalog.task_splits import TaskIndexError
from metric_tracker_rl.client import MetricTrackerRlEnv
from metric_tracker_rl.compat import openenv as internals
from metric_tracker_rl.models import MetricTrackerRlAction, MetricTrackerRlObservation, MetricTrackerRlState
from metric_tracker_rl.serving.environment import MetricTrackerRlEnvironment

UPGRADE = "OpenEnv changed an internal metric_tracker_rl/compat/openenv.py relies on: "


def openenv_fastapi_app(max_sessions: int) -> FastAPI:
    return http_server.create_fastapi_app(
        MetricTrackerRlEnvironment,
        MetricTrackerRlAction,
        MetricTrackerRlObservation,
        env_name="metric_tracker_rl",
        concurrency_config=ConcurrencyConfig(max_concurrent_envs=max_sessions),
        state_cls=MetricTrackerRlState,
    )


@pytest.fixture(scope="module")
def openenv_app() -> Iterator[TestClient]:
    """OpenEnv's own app around this environment, with none of this package's middleware, and room for 2 sessions."""
    with TestClient(openenv_fastapi_app(max_sessions=2)) as client:
        yield client


def rpc(client: TestClient, method: str, request_id: int, **params: Any) -> dict[str, Any]:
    reply = client.post("/mcp", json={"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
    assert reply.status_code == 200, reply.text
    return reply.json()


# --- the client ------------------------------------------------------------------------------------------------


def test_the_client_keeps_its_socket_in_the_private_ws_attribute() -> None:
    client = MetricTrackerRlEnv(base_url="http://127.0.0.1:9")
    assert "_ws" in vars(client), UPGRADE + "EnvClient no longer sets self._ws (client_socket reads it)"
    assert internals.client_socket(client) is None  # before the first connect
    sentinel = object()
    client._ws = sentinel
    assert internals.client_socket(client) is sentinel


def test_connect_and_close_set_and_clear_the_socket() -> None:
    """`_connect_async` stores the connection in `_ws` and `close` clears it, as `client_socket` assumes: checked
    against the source, since a connect needs a server (tests/test_restarts.py covers a live one)."""
    connect_source = inspect.getsource(EnvClient._connect_async)
    assert "self._ws = await ws_connect(" in connect_source, UPGRADE + "_connect_async no longer sets self._ws"


def test_the_client_sends_extra_headers_when_it_connects() -> None:
    """The debugger's tabs name the browser in X-Forwarded-For through `EnvClient(headers=...)`."""
    assert "headers" in inspect.signature(EnvClient.__init__).parameters, UPGRADE + "EnvClient takes no headers"
    assert "additional_headers=self._headers" in inspect.getsource(EnvClient._connect_async), (
        UPGRADE + "_connect_async no longer sends the client's headers"
    )
    client = MetricTrackerRlEnv(base_url="http://127.0.0.1:9", headers={"X-Forwarded-For": "192.0.2.1"})
    internals.set_client_headers(client, {"Cookie": "replica=a"})  # a session's affinity cookie, on its socket
    assert internals.client_http_options(client)[1] == {"Cookie": "replica=a"}


def test_both_clients_close_through_the_overridden_close_hook() -> None:
    """The session a client opened is closed in `_close_async`, which the async `close()` and the sync client's
    `close()` both run."""
    assert "self._close_async" in inspect.getsource(EnvClient.close), UPGRADE + "close() no longer runs _close_async"
    assert "self._async._close_async()" in inspect.getsource(SyncEnvClient.close), (
        UPGRADE + "the sync client's close() no longer runs _close_async"
    )


@pytest.mark.parametrize("hook", internals.CLIENT_HOOKS)
def test_the_overridden_client_hooks_exist_with_their_signatures(hook: str) -> None:
    base = getattr(EnvClient, hook, None)
    assert base is not None and inspect.iscoroutinefunction(base), UPGRADE + f"EnvClient.{hook} is gone"
    ours = inspect.signature(getattr(MetricTrackerRlEnv, hook))
    assert list(inspect.signature(base).parameters) == list(ours.parameters), (
        UPGRADE + f"EnvClient.{hook}'s parameters changed: {inspect.signature(base)}"
    )
    source = inspect.getsource(getattr(MetricTrackerRlEnv, hook))
    assert f"super().{hook}(" in source  # each override still runs OpenEnv's own


# --- the session protocol on POST /mcp -------------------------------------------------------------------------


def test_create_and_close_answer_in_the_shapes_the_client_and_server_read(openenv_app: TestClient) -> None:
    created = rpc(openenv_app, internals.SESSION_CREATE_METHOD, 1)
    session_id = internals.created_session_id(created)
    assert session_id, UPGRADE + f"openenv/session/create answered {created}"
    closed = rpc(openenv_app, internals.SESSION_CLOSE_METHOD, 2, session_id=session_id)
    assert internals.close_outcome(closed) == "gone", UPGRADE + f"openenv/session/close answered {closed}"
    assert internals.close_confirmed(closed), UPGRADE + f"openenv/session/close answered {closed}"
    again = rpc(openenv_app, internals.SESSION_CLOSE_METHOD, 3, session_id=session_id)
    assert internals.close_outcome(again) == "gone", UPGRADE + f"closing an unknown session answered {again}"
    assert not internals.close_confirmed(again)  # another replica's answer: the client asks again


def test_closing_a_session_with_a_socket_attached_answers_closing(openenv_app: TestClient) -> None:
    session_id = internals.created_session_id(rpc(openenv_app, internals.SESSION_CREATE_METHOD, 1))
    assert session_id
    with openenv_app.websocket_connect(f"/ws?{internals.SESSION_QUERY_PARAMETER}={session_id}") as socket:
        socket.send_json({"type": "reset", "data": {"task_id": "easy_two_spikes"}})
        assert socket.receive_json()["type"] == "observation", UPGRADE + "/ws?session_id= no longer attaches"
        answer = rpc(openenv_app, internals.SESSION_CLOSE_METHOD, 2, session_id=session_id)
        assert internals.close_outcome(answer) == "closing", UPGRADE + f"close with a socket attached: {answer}"
        assert internals.close_confirmed(answer)


def test_a_full_server_refuses_in_the_capacity_shapes_the_client_and_server_read(openenv_app: TestClient) -> None:
    held = [internals.created_session_id(rpc(openenv_app, internals.SESSION_CREATE_METHOD, i)) for i in range(2)]
    try:
        refused = rpc(openenv_app, internals.SESSION_CREATE_METHOD, 3)
        assert internals.created_session_id(refused) is None
        assert internals.is_capacity_error_body(refused.get("error")), UPGRADE + f"JSON-RPC capacity error: {refused}"
        with openenv_app.websocket_connect("/ws") as socket:
            socket.send_json({"type": "reset", "data": {}})
            text = socket.receive_text()
        assert internals.is_capacity_error(text), UPGRADE + f"/ws capacity error: {text}"
    finally:
        for number, session_id in enumerate(held):
            rpc(openenv_app, internals.SESSION_CLOSE_METHOD, 10 + number, session_id=session_id)


def test_an_attaching_socket_is_read_from_the_query_as_openenv_reads_it() -> None:
    source = inspect.getsource(http_server)
    assert f'websocket.query_params.get("{internals.SESSION_QUERY_PARAMETER}")' in source, (
        UPGRADE + "/ws reads the session to attach to some other way (requested_session mirrors it)"
    )
    scope = {"query_string": b"session_id=a&session_id=&x=1"}
    assert internals.requested_session(scope) == ""  # Starlette's rule: blank kept, the last one wins
    assert internals.requested_session({"query_string": b"x=1"}) is None


def test_the_capacity_check_rejects_other_errors() -> None:
    assert not internals.is_capacity_error('{"type": "error", "data": {"code": "SESSION_ERROR", "max_sessions": 1}}')
    assert not internals.is_capacity_error("not json max_sessions")
    assert internals.close_outcome({"error": {"message": "Invalid params"}}) is None


# --- the Task API ----------------------------------------------------------------------------------------------


def test_a_task_index_error_reaches_the_handler_as_the_cause() -> None:
    """OpenEnv raises its bare 400 `from` the provider's IndexError; task_api puts the reason back from there."""
    seen: list[BaseException | None] = []

    async def record(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        seen.append(internals.task_index_cause(exc))
        return await http_exception_handler(request, exc)

    app = openenv_fastapi_app(max_sessions=1)
    app.add_exception_handler(HTTPException, record)
    with TestClient(app) as client:
        reply = client.post("/metric_tracker_rl/task", json={"split": "eval", "index": 10**6})
    assert reply.status_code == 400, reply.text
    assert seen and isinstance(seen[0], TaskIndexError), UPGRADE + "the Task API's 400 no longer carries the cause"


# --- the web theme ---------------------------------------------------------------------------------------------


def test_openenvs_theme_and_css_are_module_globals() -> None:
    assert hasattr(gradio_theme, "OPENENV_GRADIO_THEME") and hasattr(gradio_theme, "OPENENV_GRADIO_CSS"), (
        UPGRADE + "gradio_theme no longer defines OPENENV_GRADIO_THEME / OPENENV_GRADIO_CSS"
    )
    theme, css = internals.openenv_web_theme()
    assert theme is gradio_theme.OPENENV_GRADIO_THEME and css == gradio_theme.OPENENV_GRADIO_CSS


def test_no_module_outside_the_compatibility_module_reads_openenv_private_state() -> None:
    """The class of defect: a private OpenEnv attribute read anywhere but the internals."""
    package = Path(internals.__file__).parents[1]
    private_reads = ["._ws", "._sessions", "._session_info", "OPENENV_GRADIO_", '"openenv/session/']
    found = [
        f"{path.relative_to(package)}: {needle}"
        for path in package.rglob("*.py")
        if path != Path(internals.__file__)
        for needle in private_reads
        if needle in path.read_text()
    ]
    assert not found, "read OpenEnv internals through compat/openenv.py:\n" + "\n".join(found)
