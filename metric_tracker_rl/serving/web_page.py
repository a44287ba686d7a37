"""The /web debugger on the app, with nothing shared between visitors.

OpenEnv's web interface (`create_web_interface_app`) serves one environment to every caller of `/web/reset`,
`/web/step` and `/web/state`, and broadcasts each of its steps to every listener on `/ws/ui`; none of that can be
made per visitor. So the app is OpenEnv's plain API app, and the debugger page is mounted here on its own: each
tab plays its own episode over the same `/ws` sessions agents use (`debugger_session.TabSession`), so it counts
against the tab's address in the per-client session cap and its SQL takes the same fair turns as any other
client's. `/web/reset`, `/web/step`, `/web/state` and `/ws/ui` do not exist.

Gradio's own routes stay, with three changes: its event queue runs each event at once (a tab that is still busy
is told so by its session, instead of every visitor waiting behind one queue), run history is off (nothing of a
visit is kept on the server), and file uploads are refused (the page has no file input).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from metric_tracker_rl.serving.hardening import ASGIApp, Receive, Scope, Send, json_response

if TYPE_CHECKING:
    from fastapi import FastAPI

WEB_PATH = "/web"
UPLOAD_SUFFIXES = ("/gradio_api/upload", "/upload")
SHARED_EPISODE_PATHS = ("/web/reset", "/web/step", "/web/state")
NO_SHARED_EPISODE = ("This server has no shared /web episode: every visitor plays their own, the debugger page at "
                     "/web/ in a browser, or a program over the WebSocket /ws (reset, step and state messages; see "
                     "/docs).")
TITLE_PREFIX = "OpenEnv Agentic Environment: "


class RefusesUploads:
    """ASGI middleware: a file upload to the page answers 403 before Gradio reads (and stores) anything."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path.startswith(WEB_PATH + "/") and path.endswith(UPLOAD_SUFFIXES):
            await json_response(send, 403, {"detail": "File uploads are off: the debugger takes no files."})
            return
        await self.app(scope, receive, send)


def mount_debugger(app: FastAPI, name: str, self_url: str | None) -> FastAPI:
    """Mount the debugger page at /web (with `/` and `/web` redirecting to it, and a favicon)."""
    import gradio as gr
    from fastapi.responses import JSONResponse, RedirectResponse

    from metric_tracker_rl.serving.debugger import add_favicon, build_debugger
    from metric_tracker_rl.serving.web_theme import offline_web_theme

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
    blocks = build_debugger(name, TITLE_PREFIX + name, self_url)
    gr.mount_gradio_app(app, blocks, path=WEB_PATH, theme=theme, css=css, run_history=False,
                        footer_links=["api", "gradio", "settings"], mcp_server=False, max_file_size=0)
    app.add_middleware(RefusesUploads)
    return app
