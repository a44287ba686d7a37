"""The debugger page's queue, in process: each visitor's events, unread results and tabs are bounded and released,
one address cannot take every event slot, and a tab belongs to the address that opened it.

The same attacks against a live server are in lab/tests/test_debugger_abuse.py (slow)."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from gradio.queueing import EventQueue

from metric_tracker_rl.serving.debugger.event_queue import (
    RUNNING_PER_ADDRESS,
    TABS_PER_ADDRESS,
    UNREAD_TTL_S,
    WAITING_PER_TAB,
    VisitorQueue,
    without_heap_addresses,
)
from metric_tracker_rl.serving.debugger.tabs import OpenTabs, TabSession


def visitor_queue(closed: list[str] | None = None) -> VisitorQueue:
    queue = VisitorQueue(
        live_updates=False,
        concurrency_count=40,
        update_intervals=1,
        max_size=None,
        blocks=None,
        default_concurrency_limit=None,
    )  # type: ignore[arg-type]
    queue.install([], (closed if closed is not None else []).append)
    queue.event_queue_per_concurrency_id["page"] = EventQueue("page", None)
    return queue


def event(address: str, tab: str = "t") -> Any:
    return SimpleNamespace(request=SimpleNamespace(client=SimpleNamespace(host=address)), session_hash=tab)


def test_one_address_runs_a_bounded_number_of_events_and_another_is_started_first() -> None:
    queue = visitor_queue()
    waiting = queue.event_queue_per_concurrency_id["page"].queue
    waiting += [event("10.0.0.1") for _ in range(40)] + [event("10.0.0.2")]
    started = [queue.get_events() for _ in range(RUNNING_PER_ADDRESS + 1)]
    addresses = [batch[0][0].request.client.host for batch in started if batch]
    assert addresses == ["10.0.0.1"] * RUNNING_PER_ADDRESS + ["10.0.0.2"], addresses
    assert queue.get_events() is None  # the first address waits for one of its own to end, holding no slot


def test_a_tabs_unread_events_and_an_addresss_tabs_are_bounded() -> None:
    queue = visitor_queue()
    queue.pending_event_ids_session["mine"] = {f"e{index}" for index in range(WAITING_PER_TAB)}
    queue.owners["mine"] = "10.0.0.1"
    assert "results not yet read" in (queue.admission_refusal("mine", "10.0.0.1") or "")
    for index in range(TABS_PER_ADDRESS - 1):
        queue.pending_event_ids_session[f"tab{index}"] = {"e"}
        queue.owners[f"tab{index}"] = "10.0.0.1"
    assert "tabs with events" in (queue.admission_refusal("another", "10.0.0.1") or "")
    assert queue.admission_refusal("another", "10.0.0.2") is None  # another visitor's tab is its own business


def test_unread_results_are_dropped_and_their_tabs_closed_after_a_while() -> None:
    closed: list[str] = []
    queue = visitor_queue(closed)
    now = time.monotonic()
    queue.pending_event_ids_session.update({"unread": {"done"}, "running": {"busy"}, "read": set()})
    queue.event_ids_to_events["busy"] = event("10.0.0.1", "running")
    for tab in ("unread", "running", "read"):
        queue.pending_messages_per_session[tab] = object()  # type: ignore[assignment]
        queue.last_event_of_tab[tab] = now
    assert queue.release_unread(now + UNREAD_TTL_S / 2) == []
    queue.sweep_page(now, queue.release_unread(now + UNREAD_TTL_S + 1))
    assert closed == ["unread"]
    assert "unread" not in queue.pending_messages_per_session and "read" not in queue.pending_messages_per_session
    assert "running" in queue.pending_messages_per_session  # a running event's results are still to come


def test_a_tab_belongs_to_the_address_that_first_used_it() -> None:
    queue = visitor_queue()
    assert queue.owner_refusal("tab", "10.0.0.1") is None
    assert queue.owner_refusal("tab", "10.0.0.1") is None
    assert "another visitor" in (queue.owner_refusal("tab", "10.0.0.2") or "")
    assert queue.owner_refusal(None, "10.0.0.2") is None


def test_gradio_errors_lose_their_heap_addresses() -> None:
    text = "Wanted inputs:\n    [<gradio.components.state.State object at 0x7f6facfa8510>, <function f at 0x7f01>]"
    assert without_heap_addresses(text) == "Wanted inputs:\n    [<gradio.components.state.State>, <function f>]"


def test_open_tabs_have_a_ceiling_per_address_and_close_when_idle(monkeypatch: Any) -> None:
    closed: list[str] = []
    monkeypatch.setattr(TabSession, "close", lambda self: closed.append(self.base_url))
    tabs = OpenTabs()
    for index in range(TABS_PER_ADDRESS + 2):
        tabs.keep(f"tab{index}", TabSession(f"a{index}", "10.0.0.1"))
    tabs.keep("other", TabSession("b", "10.0.0.2"))
    assert closed == ["a0", "a1"]  # the least recently used of the full address, none of another's
    tabs.close_idle(time.monotonic() + 10_000)
    assert len(closed) == TABS_PER_ADDRESS + 3 and not tabs.tabs
