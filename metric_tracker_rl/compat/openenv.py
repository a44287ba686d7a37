"""Every place this package relies on OpenEnv beyond its documented API, in one module.

OpenEnv's documented surface (`EnvClient`'s `_step_payload` / `_parse_result` / `_parse_state` hooks, `Environment`,
`create_fastapi_app`, the wire types) is used where it is needed. What is not documented, and so may change in any
release, is read here and nowhere else: a private attribute of the client, the protected methods the client
overrides, the JSON-RPC session protocol of `POST /mcp` as OpenEnv's handler answers it, the shape of its capacity
errors, the module globals its web interface reads its theme from, and how its Task API routes wrap an IndexError.
`tests/test_openenv_contract.py` checks each of them against the installed OpenEnv, so an upgrade that changes one
fails there, naming it, rather than somewhere in a session's life.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeGuard
from urllib.parse import parse_qsl

from openenv.core.env_server.mcp_types import JsonRpcErrorCode
from openenv.core.env_server.types import WSErrorCode

if TYPE_CHECKING:
    import gradio as gr
    from openenv.core.env_client import EnvClient

# --- the client ----------------------------------------------------------------------------------------------

# `EnvClient`'s protected coroutines that `MetricTrackerRlEnv` overrides (each calls OpenEnv's through `super()`).
CLIENT_HOOKS = ("_connect_async", "_reset_async", "_step_async", "_close_async")


def client_socket(client: EnvClient[Any, Any, Any]) -> Any:
    """The WebSocket connection a client is using now (`EnvClient._ws`, private: None before the first connect
    and after a close; a new object after a reconnect). The client compares it with the socket that holds its
    episode to tell a lost session from a live one."""
    return client._ws


def take_client_socket(client: EnvClient[Any, Any, Any]) -> Any:
    """Detach the client's socket (`EnvClient._ws`) and return it: its next send connects again."""
    socket, client._ws = client._ws, None
    return socket


def client_ws_url(client: EnvClient[Any, Any, Any]) -> str | None:
    """Where the client's next connection goes (`EnvClient._ws_url`, private, set from its base URL)."""
    return client._ws_url


def set_client_ws_url(client: EnvClient[Any, Any, Any], url: str) -> None:
    """Send the client's next connection to `url` (a session to attach to: `/ws?session_id=...`)."""
    client._ws_url = url


def client_http_options(client: EnvClient[Any, Any, Any]) -> tuple[float, dict[str, str] | None]:
    """The connect timeout and the extra headers the client's next connection sends (private attributes of
    `EnvClient`: the headers it was built with, unless `set_client_headers` changed them)."""
    return client._connect_timeout, client._headers


def set_client_headers(client: EnvClient[Any, Any, Any], headers: dict[str, str] | None) -> None:
    """Send `headers` with the client's next WebSocket handshake (`EnvClient._headers`, private): a session's
    affinity cookie, so a proxy routes its socket to the replica that holds the session."""
    client._headers = headers


# --- sessions: the JSON-RPC session protocol on POST /mcp, and /ws attaching to an HTTP session ---------------

SESSION_CREATE_METHOD = "openenv/session/create"
SESSION_CLOSE_METHOD = "openenv/session/close"
SESSION_QUERY_PARAMETER = "session_id"  # /ws?session_id=<id> attaches to an HTTP session instead of creating one
UNKNOWN_SESSION = "Unknown session_id"  # how OpenEnv's error for a session it does not hold begins
# OpenEnv's error for an attachment to a session whose earlier socket it still holds: after a drop, the server may
# not have seen that socket close yet (a proxy closes its side later), so the attachment is tried again.
STILL_ATTACHED = "already has an attached WebSocket"
CAPACITY_CODE = WSErrorCode.CAPACITY_REACHED.value
SESSION_ERROR_CODE = WSErrorCode.SESSION_ERROR.value
INVALID_JSON_CODE = WSErrorCode.INVALID_JSON.value
SERVER_ERROR = JsonRpcErrorCode.SERVER_ERROR.value
CAPACITY_DATA_KEY = "max_sessions"  # in the data of every server-wide capacity error (SessionCapacityError)


def requested_session(scope: Mapping[str, Any]) -> str | None:
    """The `session_id` a /ws connection asks to attach to, read as OpenEnv reads it (Starlette's query
    parameters: blank values kept, the last one wins), so that no query string counts as an attachment here
    while OpenEnv creates a session for it."""
    pairs = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    return next((value for key, value in reversed(pairs) if key == SESSION_QUERY_PARAMETER), None)


def is_capacity_error(text: str) -> bool:
    """OpenEnv's server-wide refusal: a WebSocket CAPACITY_REACHED error, or a JSON-RPC error with the session
    counts (what OpenEnv's SessionCapacityError carries)."""
    if CAPACITY_DATA_KEY not in text:
        return False
    with contextlib.suppress(ValueError):
        reply = json.loads(text)
        if isinstance(reply, dict) and isinstance(reply.get("data"), dict):
            return reply["data"].get("code") == CAPACITY_CODE
        error = reply.get("error") if isinstance(reply, dict) else None
        return is_capacity_error_body(error)
    return False


def is_capacity_error_body(error: Any) -> TypeGuard[dict[str, Any]]:
    """Whether a JSON-RPC `error` object is OpenEnv's capacity refusal."""
    return isinstance(error, dict) and isinstance(error.get("data"), dict) and CAPACITY_DATA_KEY in error["data"]


def created_session_id(reply: dict[str, Any]) -> str | None:
    """The new session's id in OpenEnv's answer to `openenv/session/create`, or None when it refused."""
    result = reply.get("result")
    if isinstance(result, dict) and isinstance(result.get("session_id"), str):
        return result["session_id"]
    return None


def close_outcome(reply: dict[str, Any]) -> str | None:
    """What OpenEnv's answer to `openenv/session/close` says: "gone" (closed now, or it never held the session,
    having reaped it first), "closing" (a socket is attached: it ends when the socket does), or None (anything
    else, such as a malformed request)."""
    result, error = reply.get("result"), reply.get("error")
    if isinstance(result, dict) and result.get("closed") is True:
        return "gone"
    if isinstance(error, dict) and UNKNOWN_SESSION in str(error.get("message")):
        return "gone"
    if isinstance(result, dict) and result.get("closing") is True:
        return "closing"
    return None


def close_confirmed(reply: dict[str, Any]) -> bool:
    """Whether an answer to `openenv/session/close` came from the server that holds the session ("closed", or
    "closing" with a socket attached), where an unknown session may mean another replica answered."""
    result = reply.get("result")
    return isinstance(result, dict) and (result.get("closed") is True or result.get("closing") is True)


# --- the Task API ---------------------------------------------------------------------------------------------


def task_index_cause(exc: BaseException) -> BaseException | None:
    """The IndexError behind OpenEnv's bare `HTTPException(400, "Invalid task index")`: its Task API routes raise
    that `from` the provider's error, so the reason is the exception's `__cause__`."""
    return exc.__cause__ if isinstance(exc.__cause__, IndexError) else None


# --- the /web page's theme ------------------------------------------------------------------------------------


def openenv_web_theme() -> tuple[gr.themes.Base, str]:
    """OpenEnv's own Gradio theme and CSS (`gradio_theme.OPENENV_GRADIO_THEME` and `OPENENV_GRADIO_CSS`)."""
    from openenv.core.env_server import gradio_theme

    return gradio_theme.OPENENV_GRADIO_THEME, gradio_theme.OPENENV_GRADIO_CSS
