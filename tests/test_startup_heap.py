"""The server's startup heap is frozen out of full garbage collections: after the app's lifespan starts, a full
collection walks a small part of the objects it walked before, until the lifespan's shutdown thaws them."""

from __future__ import annotations

import asyncio
import gc

from metric_tracker_rl.serving.asgi_types import Message, Receive
from metric_tracker_rl.serving.startup_heap import FrozenStartup


def test_the_lifespan_freezes_the_heap_a_full_collection_walks_and_thaws_it_at_shutdown() -> None:
    heap = [[index] for index in range(50_000)]  # long-lived objects, as a server's startup makes
    walked, seen = len(gc.get_objects()), []
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def app(scope: object, receive: Receive, send: object) -> None:
        await receive()
        seen.append(len(gc.get_objects()))  # started
        await receive()
        seen.append(len(gc.get_objects()))  # stopping

    async def receive() -> Message:
        return next(messages)

    async def send(message: Message) -> None:
        return None

    try:
        asyncio.run(FrozenStartup(app)({"type": "lifespan"}, receive, send))
    finally:
        gc.unfreeze()
    assert seen[0] < walked - len(heap) and seen[1] >= walked - len(heap)
