"""The client of each request and connection, for the SQL workers' fair turns (metric_tracker_rl.sql.pool).

A client is its peer address as uvicorn reports it: the X-Forwarded-For client only when the peer is a trusted
proxy (see `sessions`), so the debugger's connections count as the browser's. This middleware sets
`sql_pool.CLIENT` for everything the request or connection runs, which the environment reads when it schedules a
SQL step: the tools themselves know nothing of the server.
"""

from __future__ import annotations

from fastapi import FastAPI

from metric_tracker_rl.serving.hardening import ASGIApp, Receive, Scope, Send
from metric_tracker_rl.sql import pool as sql_pool


class ClientAddress:
    """ASGI middleware: `sql_pool.CLIENT` is the peer address for the whole request or connection."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        token = sql_pool.CLIENT.set((scope.get("client") or ("unknown", 0))[0])
        try:
            await self.app(scope, receive, send)
        finally:
            sql_pool.CLIENT.reset(token)


def name_clients(app: FastAPI, sql_workers: int) -> FastAPI:
    """Size the SQL pool from SQL_WORKERS and name each request's client for it."""
    sql_pool.configure(sql_workers)
    app.add_middleware(ClientAddress)
    return app
