"""The /web debugger on the app, with nothing shared between visitors.

OpenEnv's web interface (`create_web_interface_app`) serves one environment to every caller of `/web/reset`,
`/web/step` and `/web/state`, and broadcasts each of its steps to every listener on `/ws/ui`; none of that can be
made per visitor. So the app is OpenEnv's plain API app, and the debugger page is mounted here on its own: each
tab plays its own episode over the same `/ws` sessions agents use (`tabs.TabSession`), so it counts
against the tab's address in the per-client session cap and its SQL takes the same fair turns as any other
client's. `/web/reset`, `/web/step`, `/web/state` and `/ws/ui` do not exist.

Gradio's own routes stay, with three changes: its event queue runs each event at once (a tab that is still busy
is told so by its session, instead of every visitor waiting behind one queue), run history is off (nothing of a
visit is kept on the server), file uploads are refused (the page has no file input), and a request Gradio fails
on answers 400, not 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from metric_tracker_rl.serving.client_address import client_of
from metric_tracker_rl.serving.hardening import (
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    json_response,
    read_body,
    replaying,
)
from metric_tracker_rl.serving.lifecycle import LIFECYCLE

if TYPE_CHECKING:
    from fastapi import FastAPI

logger = logging.getLogger("metric_tracker_rl.web_page")

WEB_PATH = "/web"
SERVER_ERROR = 500
UPLOAD_SUFFIXES = ("/gradio_api/upload", "/upload")
SHARED_EPISODE_PATHS = ("/web/reset", "/web/step", "/web/state")
NO_SHARED_EPISODE = (
    "This server has no shared /web episode: every visitor plays their own, the debugger page at "
    "/web/ in a browser, or a program over the WebSocket /ws (reset, step and state messages; see "
    "/docs)."
)
HEARTBEAT = "/gradio_api/heartbeat/"
RESULT_STREAM = "/gradio_api/queue/data"
CANCEL = "/gradio_api/cancel"
TITLE_PREFIX = "OpenEnv Agentic Environment: "


class GuardsThePage:
    """ASGI middleware on the page's routes: a file upload answers 403 before Gradio reads (and stores) anything;
    a tab's result stream, heartbeat or cancel asked for from another address than the tab's answers 403
    (`owner_refusal`, the page's queue's: a tab's `session_hash` is no bearer token); and a request Gradio fails on
    (an event that does not exist, arguments of the wrong shape) answers 400 instead of a 500: the request was at
    fault, not the server."""

    def __init__(self, app: ASGIApp, owner_refusal: Callable[[str | None, str], str | None]) -> None:
        self.app, self.owner_refusal = app, owner_refusal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(WEB_PATH + "/"):
            await self.app(scope, receive, send)
            return
        if path.endswith(UPLOAD_SUFFIXES):
            await json_response(send, 403, {"detail": "File uploads are off: the debugger takes no files."})
            return
        tab = tab_of(scope)
        if path.endswith(CANCEL) and scope.get("method") == "POST":
            body = await read_body(receive)  # bounded by BoundedRequestBodies, which sits outside
            if body is None:
                return
            tab, receive = cancelled_tab(body), replaying(body, receive)
        refusal = self.owner_refusal(tab, client_of(scope))
        if refusal is not None:
            await json_response(send, 403, {"detail": refusal})
            return
        failed = False

        async def answered(message: Message) -> None:
            """Gradio's own error handler answers 500 to what it failed on: that becomes the 400 it is."""
            nonlocal failed
            if message["type"] == "http.response.start" and message.get("status") == SERVER_ERROR:
                failed = True
                logger.warning("the debugger page failed on %s %s", scope.get("method"), path)
                await json_response(
                    send, 400, {"detail": "The debugger page cannot handle this request: send what the page sends."}
                )
            elif not failed:
                await send(message)

        try:
            await self.app(scope, receive, answered)
        except Exception:
            if not failed:  # answered already: the error is logged, and the connection stays usable
                raise


def tab_of(scope: Scope) -> str | None:
    """The tab a GET of the page names: `/queue/data?session_hash=...` or `/heartbeat/<session_hash>`."""
    path = scope.get("path", "")
    if HEARTBEAT in path:
        return path.rsplit("/", 1)[-1] or None
    if path.endswith(RESULT_STREAM):
        hashes = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("session_hash")
        return hashes[0] if hashes else None
    return None


def cancelled_tab(body: bytes) -> str | None:
    """The tab a /cancel body names (None when it names none: Gradio answers that itself)."""
    with contextlib.suppress(ValueError, RecursionError):
        request = json.loads(body)
        if isinstance(request, dict) and isinstance(request.get("session_hash"), str):
            return request["session_hash"]
    return None


def mount_debugger(app: FastAPI, name: str, self_url: str | None) -> FastAPI:
    """Mount the debugger page at /web (with `/` and `/web` redirecting to it, and a favicon)."""
    import gradio as gr
    from fastapi.responses import JSONResponse, RedirectResponse
    from starlette.routing import Mount

    from metric_tracker_rl.serving.debugger.event_queue import VisitorQueue
    from metric_tracker_rl.serving.debugger.images import add_favicon
    from metric_tracker_rl.serving.debugger.memory import limit_arenas
    from metric_tracker_rl.serving.debugger.page import build_debugger

    limit_arenas()  # before the page's threads start (memory.py)
    from metric_tracker_rl.serving.debugger.theme import offline_web_theme

    async def to_page() -> RedirectResponse:
        return RedirectResponse(url=WEB_PATH + "/")

    async def no_shared_episode() -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": NO_SHARED_EPISODE})

    app.add_api_route("/", to_page, include_in_schema=False)
    for path in SHARED_EPISODE_PATHS:  # answered here, with a reason, before the page's mount sees them
        app.add_api_route(path, no_shared_episode, methods=["GET", "POST"], include_in_schema=False)
    app.add_api_route(WEB_PATH, to_page, include_in_schema=False)
    add_favicon(app)
    theme, css = offline_web_theme()
    blocks, close_tabs = build_debugger(name, TITLE_PREFIX + name, self_url)
    gr.mount_gradio_app(
        app,
        blocks,
        path=WEB_PATH,
        theme=theme,
        css=css,
        run_history=False,
        footer_links=["api", "gradio", "settings"],
        mcp_server=False,
        max_file_size=0,
    )
    queue = blocks._queue
    assert isinstance(queue, VisitorQueue)  # noqa: S101 - build_debugger installs it
    app.add_middleware(GuardsThePage, owner_refusal=queue.owner_refusal)
    page_app = next(route.app for route in app.routes if isinstance(route, Mount) and route.path == WEB_PATH)
    LIFECYCLE.on_stop.append(functools.partial(stop_page, page_app, queue, close_tabs))
    return app


async def stop_page(page_app: Any, queue: Any, close_tabs: Callable[[], None]) -> None:
    """Let a stopping server exit with tabs open: Gradio ends a tab's heartbeat stream only on its app's stop
    event and a result stream only when the tab's messages are gone, and its mounted app sets neither when the
    server stops, so each would hold its connection (and uvicorn's shutdown) open. Then close the tabs' sessions."""
    queue.close()  # no new events
    page_app.stop_event.set()
    queue.pending_messages_per_session.clear()
    await asyncio.to_thread(close_tabs)
