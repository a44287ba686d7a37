"""Who a request or connection counts as: its client, for the session cap, the parse budget and the SQL workers'
fair turns (metric_tracker_rl.sql.pool).

A client is its peer address as uvicorn reports it: the X-Forwarded-For client only when the peer is a trusted
proxy (see `sessions`), so the debugger's connections count as the browser's. An IPv6 address counts as its /64
network: a host is routinely given a whole /64 (a Space's visitors, any cloud machine), so one per address would
give one attacker 2^64 clients. An IPv4 address mapped into IPv6 counts as the IPv4 address. `ClientAddress` sets
`sql_pool.CLIENT` for everything the request or connection runs, which the environment reads when it schedules a
SQL step: the tools themselves know nothing of the server.
"""

from __future__ import annotations

import functools
import ipaddress
from typing import TYPE_CHECKING

from metric_tracker_rl.serving.asgi_types import ASGIApp, Receive, Scope, Send
from metric_tracker_rl.sql import pool as sql_pool

if TYPE_CHECKING:
    from fastapi import FastAPI

IPV6_GROUP_PREFIX = 64


@functools.lru_cache(maxsize=4096)
def address_group(host: str) -> str:
    """The client an address counts as: an IPv4 address itself, an IPv6 address its /64 network ("unknown" and
    other names as they are)."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])  # a zone index names an interface, not a client
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_GROUP_PREFIX), strict=False))
    return str(address)


def client_of(scope: Scope) -> str:
    """The client a request or connection counts as (its peer address, the forwarded one behind a trusted proxy,
    grouped as `address_group` says)."""
    return address_group((scope.get("client") or ("unknown", 0))[0])


class ClientAddress:
    """ASGI middleware: `sql_pool.CLIENT` is the peer's client for the whole request or connection."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        token = sql_pool.CLIENT.set(client_of(scope))
        try:
            await self.app(scope, receive, send)
        finally:
            sql_pool.CLIENT.reset(token)


def name_clients(app: FastAPI, sql_workers: int) -> FastAPI:
    """Size the SQL pool from SQL_WORKERS and name each request's client for it."""
    sql_pool.configure(sql_workers)
    app.add_middleware(ClientAddress)
    return app
