"""The debugger's gradio queue slows its polling only while the page is not in use (the idle cost itself is a
benchmark: lab/speed/idle_cpu.py)."""

from __future__ import annotations

import time

import gradio as gr
from starlette.routing import Mount

from metric_tracker_rl.serving.debugger.quiet_queue import (
    BUSY_EVENT_POLL_S,
    BUSY_PROGRESS_POLL_S,
    IDLE_POLL_S,
    WARM_S,
    QuietQueue,
    quiet_when_idle,
)


def test_the_served_debugger_runs_on_a_quiet_queue() -> None:
    from metric_tracker_rl.serving.app import build_app
    from metric_tracker_rl.settings import ServerSettings

    app = build_app(settings=ServerSettings.load(enable_web_interface=True, debug=False))
    (web,) = [route for route in app.routes if isinstance(route, Mount) and route.path == "/web"]
    assert isinstance(web.app.get_blocks()._queue, QuietQueue)


def test_the_queue_polls_at_gradios_pace_while_in_use_and_slowly_when_quiet() -> None:
    with gr.Blocks() as blocks:
        gr.Markdown("a page")
    queue = quiet_when_idle(blocks)._queue
    queue.active_jobs = [None, None]  # as `start` leaves them, nothing running
    assert (queue.sleep_when_free, queue.progress_update_sleep_when_free) == (IDLE_POLL_S, IDLE_POLL_S)

    queue.last_event_at = time.monotonic()  # an event just finished: the page is in use
    assert (queue.sleep_when_free, queue.progress_update_sleep_when_free) == (BUSY_EVENT_POLL_S, BUSY_PROGRESS_POLL_S)
    queue.last_event_at = time.monotonic() - WARM_S - 1
    queue.active_jobs = [object(), None]  # one still running, however long ago it started
    assert queue.sleep_when_free == BUSY_EVENT_POLL_S
    queue.active_jobs = [None, None]
    assert queue.sleep_when_free == IDLE_POLL_S
