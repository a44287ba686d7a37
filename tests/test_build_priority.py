"""Episodes are built on the builds' thread at the server's own priority, in the caller's context: fairness among
builds is the turns' to keep (tests/test_reset_turns.py), never bought with a priority below every other process
of the machine (a trainer or a tokenizer beside the server would then starve every reset)."""

from __future__ import annotations

import asyncio
import os
import sys
import threading

import pytest

from metric_tracker_rl.serving.reset_turns import in_build_thread
from metric_tracker_rl.sql import pool as sql_pool

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a thread's own niceness is Linux's")


def niceness_of_this_thread() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_an_episode_is_built_at_the_event_loops_priority_in_the_callers_context() -> None:
    async def both() -> tuple[int, int, str]:
        token = sql_pool.CLIENT.set("127.0.0.9")
        try:
            built = await in_build_thread(lambda: (niceness_of_this_thread(), sql_pool.CLIENT.get()))
        finally:
            sql_pool.CLIENT.reset(token)
        return niceness_of_this_thread(), *built

    loop_niceness, build_niceness, client = asyncio.run(both())
    assert build_niceness == loop_niceness
    assert client == "127.0.0.9"
