"""The server's startup heap is frozen out of full garbage collections: after the app's lifespan starts, a full
collection walks a small part of the objects it walked before."""

from __future__ import annotations

import asyncio
import gc

from metric_tracker_rl.serving.asgi_types import Message
from metric_tracker_rl.serving.startup_heap import FrozenStartup


def test_the_lifespan_start_freezes_the_heap_a_full_collection_walks() -> None:
    started: list[str] = []

    async def app(scope: object, receive: object, send: object) -> None:
        started.append("app")

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        return None

    heap = [[index] for index in range(50_000)]  # long-lived objects, as a server's startup makes
    walked = len(gc.get_objects())
    try:
        asyncio.run(FrozenStartup(app)({"type": "lifespan"}, receive, send))
        after = len(gc.get_objects())
    finally:
        gc.unfreeze()
    assert started == ["app"] and after < walked - len(heap)
