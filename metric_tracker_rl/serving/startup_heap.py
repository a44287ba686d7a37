"""The heap the server starts with is left out of the garbage collector's full collections.

The server starts with about 300,000 objects the collector tracks (its modules, the catalogs, numpy, DuckDB,
pandas), all of them alive for the life of the process. A full collection walks every tracked object, about 0.2 s
of CPU here, on whichever thread allocated past the threshold, holding the GIL throughout: measured on the event
loop (`loop_lag`), each such collection stalled every client for that long, more on a busy machine (the `/health`
maxima of 0.5 to 0.8 s under forced worker kills were these). Frozen once the app has started (`gc.freeze`), those
objects are never walked again; a full collection then walks only what episodes and requests made since.
"""

from __future__ import annotations

import gc

from fastapi import FastAPI

from metric_tracker_rl.serving.asgi_types import ASGIApp, Message, Receive, Scope, Send


class FrozenStartup:
    """ASGI middleware: on the lifespan's startup, collect once and freeze what is left; on its shutdown, thaw it
    (so that the process's exit finds and frees it as before, where native extensions check for leaks)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app, self.frozen = app, False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan" or self.frozen:
            await self.app(scope, receive, send)
            return
        self.frozen = True
        gc.collect()
        gc.freeze()

        async def thawing() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                gc.unfreeze()
            return message

        await self.app(scope, thawing, send)


def freeze_on_startup(app: FastAPI) -> FastAPI:
    app.add_middleware(FrozenStartup)
    return app
