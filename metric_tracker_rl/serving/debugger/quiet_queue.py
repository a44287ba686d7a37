"""Gradio's event queue, without its cost on an idle server.

Gradio's queue (`gradio.queueing.Queue`) runs two loops for the life of the server, whether or not anyone has the
page open: one looks for queued events every millisecond, the other for progress to report every 10 ms. That is
about a thousand wake-ups a second, a visible share of a core on a server nobody uses, paid by every replica
that serves /web. Gradio reads both intervals from the queue at each turn of its loops, so `QuietQueue` answers
with gradio's own intervals while the page is in use (an event queued or running, or one finished within
WARM_S) and with IDLE_POLL_S otherwise. The first event after a quiet spell waits at most IDLE_POLL_S longer to
start; everything after it runs at gradio's pace. (Gradio's loops cannot be woken from outside: a longer idle
interval would cost that first click more, and this one already keeps an idle server's cost within measuring
noise, see lab/speed/idle_cpu.py.)
"""

from __future__ import annotations

import time
from typing import Any

import gradio as gr
from gradio.queueing import Queue

# Gradio's intervals on Linux (`Queue.__init__`), kept while the page is in use.
BUSY_EVENT_POLL_S = 0.001
BUSY_PROGRESS_POLL_S = 0.01
# The interval of both loops on a quiet server: the most a first click after a pause waits to start.
IDLE_POLL_S = 0.25
# How long after its last event the page counts as in use: a person reading a result and clicking again keeps
# gradio's pace; only a pause this long brings back the idle interval.
WARM_S = 30.0


class QuietQueue(Queue):
    """`gradio.queueing.Queue` whose idle intervals depend on whether the page is in use (see the module
    docstring). Installed on a built Blocks' queue by `quiet_when_idle`."""

    last_event_at: float = 0.0

    def in_use(self) -> bool:
        if len(self) or any(job is not None for job in getattr(self, "active_jobs", ())):
            return True
        return time.monotonic() - self.last_event_at < WARM_S

    @property
    def sleep_when_free(self) -> float:
        return BUSY_EVENT_POLL_S if self.in_use() else IDLE_POLL_S

    @sleep_when_free.setter
    def sleep_when_free(self, _value: float) -> None:
        """Gradio's constructor assigns its fixed interval; the property decides instead."""

    @property
    def progress_update_sleep_when_free(self) -> float:
        return BUSY_PROGRESS_POLL_S if self.in_use() else IDLE_POLL_S

    @progress_update_sleep_when_free.setter
    def progress_update_sleep_when_free(self, _value: float) -> None:
        """As for `sleep_when_free`."""

    async def push(self, *args: Any, **kwargs: Any) -> Any:
        self.last_event_at = time.monotonic()
        return await super().push(*args, **kwargs)

    async def process_events(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().process_events(*args, **kwargs)
        finally:
            self.last_event_at = time.monotonic()


def quiet_when_idle(blocks: gr.Blocks) -> gr.Blocks:
    """Make `blocks`' queue a QuietQueue. Gradio builds the queue with the Blocks and starts its loops when the
    app starts, so this runs between the two (the instance keeps its state; only its class changes)."""
    blocks._queue.__class__ = QuietQueue
    return blocks
