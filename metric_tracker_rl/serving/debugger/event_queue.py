"""The debugger page's event queue, with a bound and a release for everything one visitor can make it hold.

Gradio's queue (`gradio.queueing.Queue`) keeps each tab's results until the tab reads them over `/queue/data`, with
no bound on a tab's unread results and none on the tabs of one address (it forgets a tab only after 2,000 newer
ones); a script that joins events and never reads grows the server without end. It starts queued events in arrival
order on its 40 slots, so one address's 40 slow events leave nothing for anyone else. And a tab is named by the
`session_hash` its client chose, so whoever learns it can read the tab's results and drive its episode.
`VisitorQueue` (installed on the page's Blocks by `bound_visitors`) adds per visitor, a visitor being the address
uvicorn reports (the browser's, behind a trusted proxy):

- at most WAITING_PER_TAB events of one tab queued, running or unread, and at most TABS_PER_ADDRESS tabs of one
  address holding any; past either, the event is refused at once (HTTP 503 with the reason), never stored;
- a tab's results still unread UNREAD_TTL_S after its last event are dropped (a browser reads its results as they
  come; a script that does not is not kept);
- at most RUNNING_PER_ADDRESS events of one address run at once: its other events wait in the queue, holding no
  thread, and the queue starts another visitor's event in the meantime;
- a tab belongs to the address that first used it: an event, a result stream or a heartbeat of that tab from
  another address is refused (`owner_refusal`, which the page's middleware applies to the GET routes).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from typing import Any

import gradio as gr

from metric_tracker_rl.serving.client_address import address_group
from metric_tracker_rl.serving.debugger.memory import return_free_memory
from metric_tracker_rl.serving.debugger.quiet_queue import QuietQueue
from metric_tracker_rl.serving.debugger.tabs import TABS_PER_ADDRESS

WAITING_PER_TAB = 4
RUNNING_PER_ADDRESS = 2  # events run in threads that share one interpreter lock: more buys a visitor little
UNREAD_TTL_S = 60.0
SWEEP_EVERY_S = 5.0
REMEMBERED_TABS = 4096  # tab owners remembered at most (the oldest are forgotten first)
ANALYTICS_EVENTS = 256  # gradio's per-event records kept for its monitoring summary (its default is 10,000)
UNREAD_TABS = 256  # tabs whose results Gradio keeps at most, of every address (its default: 2,000)
UNKNOWN = "unknown"
HEAP_ADDRESS = re.compile(r"(?: object)? at 0x[0-9a-fA-F]+")

logger = logging.getLogger("metric_tracker_rl.debugger_queue")


def without_heap_addresses(text: str) -> str:
    """`<gradio.components.state.State object at 0x7f...>` becomes `<gradio.components.state.State>`."""
    return HEAP_ADDRESS.sub("", text)


def visitor_address(request: Any) -> str:
    """The visitor an HTTP request comes from: the client uvicorn reports (X-Forwarded-For only from a trusted
    proxy), grouped as every other limit groups it (an IPv6 /64 is one visitor)."""
    client = getattr(request, "client", None)
    return address_group(getattr(client, "host", None) or UNKNOWN)


class VisitorQueue(QuietQueue):
    """Gradio's queue with the per-visitor bounds of the module docstring."""

    owners: OrderedDict[str, str]
    last_event_of_tab: dict[str, float]
    running: Counter[str]

    def install(self, sweepers: list[Callable[[float], object]], close_tab: Callable[[str], object]) -> None:
        self.owners, self.last_event_of_tab, self.running = OrderedDict(), {}, Counter()
        self.sweepers, self.close_tab = sweepers, close_tab
        self.ANALYTICS_MAX_EVENTS = ANALYTICS_EVENTS
        self.pending_messages_per_session.max_size = UNREAD_TABS

    # --- admission --------------------------------------------------------------------------------------------

    def owner_refusal(self, session_hash: str | None, address: str) -> str | None:
        """Why `address` may not use tab `session_hash` (None: it may, and the tab is now its own)."""
        if not session_hash:
            return None
        owner = self.owners.get(session_hash)
        if owner is not None and owner != address:
            return "This tab belongs to another visitor: reload the page to open your own."
        self.owners[session_hash] = address
        self.owners.move_to_end(session_hash)
        while len(self.owners) > REMEMBERED_TABS:
            self.owners.popitem(last=False)
        return None

    def waiting(self, session_hash: str) -> int:
        return len(self.pending_event_ids_session.get(session_hash, ()))

    def admission_refusal(self, session_hash: str, address: str) -> str | None:
        if self.waiting(session_hash) >= WAITING_PER_TAB:
            return (
                f"This tab has {WAITING_PER_TAB} events queued, running or with results not yet read: read "
                "them (or wait a minute) before sending more."
            )
        tabs = {tab for tab in self.pending_event_ids_session if self.waiting(tab) and self.owners.get(tab) == address}
        if session_hash not in tabs and len(tabs) >= TABS_PER_ADDRESS:
            return (
                f"Your address has {TABS_PER_ADDRESS} tabs with events queued, running or unread: read their "
                "results or close some before opening more."
            )
        return None

    async def push(self, body: Any, request: Any, username: str | None) -> Any:
        address = visitor_address(request)
        refusal = self.owner_refusal(body.session_hash, address)
        if refusal is None and body.session_hash:
            refusal = self.admission_refusal(body.session_hash, address)
        if refusal is not None:
            return False, refusal, "queue_full"
        if body.session_hash:
            self.last_event_of_tab[body.session_hash] = time.monotonic()
        return await super().push(body, request, username)

    def send_message(self, event: Any, event_message: Any) -> None:
        """Gradio's errors name its objects by their repr, heap address included: that address goes no further."""
        output = getattr(event_message, "output", None)
        if isinstance(output, dict) and isinstance(output.get("error"), str):
            output["error"] = without_heap_addresses(output["error"])
        super().send_message(event, event_message)

    # --- fair starts --------------------------------------------------------------------------------------------

    def get_events(self) -> Any:
        """The first queued event whose address runs fewer than RUNNING_PER_ADDRESS events (the page has no batched
        or concurrency-limited events, so one event at a time)."""
        for concurrency_id, event_queue in self.event_queue_per_concurrency_id.items():
            limit = event_queue.concurrency_limit
            if limit is not None and event_queue.current_concurrency >= limit:
                continue
            for event in event_queue.queue:
                address = visitor_address(event.request)
                if self.running[address] < RUNNING_PER_ADDRESS:
                    event_queue.queue.remove(event)
                    self.running[address] += 1
                    return [event], False, concurrency_id
        return None

    async def process_events(self, events: list[Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().process_events(events, *args, **kwargs)
        finally:
            for event in events:
                address = visitor_address(event.request)
                self.running[address] -= 1
                if self.running[address] <= 0:
                    del self.running[address]

    # --- release ------------------------------------------------------------------------------------------------

    def release_unread(self, now: float) -> list[str]:
        """Drop the results of tabs whose last event is UNREAD_TTL_S old and none of whose events is still queued or
        running; returns the tabs that left results unread (no browser does), whose episodes are to be closed."""
        stale = [tab for tab, last in self.last_event_of_tab.items() if now - last > UNREAD_TTL_S]
        unread = []
        for tab in stale:
            pending = self.pending_event_ids_session.get(tab, set())
            if any(event_id in self.event_ids_to_events for event_id in pending):
                continue
            del self.last_event_of_tab[tab]
            self.pending_event_ids_session.pop(tab, None)
            self.pending_messages_per_session.pop(tab, None)
            if pending:
                unread.append(tab)
        return unread

    async def start_processing(self) -> None:
        sweeper = asyncio.create_task(self.sweep_forever())
        try:
            await super().start_processing()
        finally:
            sweeper.cancel()

    async def sweep_forever(self) -> None:
        """Every SWEEP_EVERY_S: unread results (on the event loop, which owns the queue), then the page's sweepers
        and the closing of the unread tabs' episodes (in a thread: closing a connection waits for its thread)."""
        while not self.stopped:
            await asyncio.sleep(SWEEP_EVERY_S)
            now = time.monotonic()
            try:
                unread = self.release_unread(now)
                await asyncio.to_thread(self.sweep_page, now, unread)
            except Exception:  # a sweep that fails is retried at the next; the queue goes on
                logger.exception("the debugger's sweep failed")

    def sweep_page(self, now: float, unread: list[str]) -> None:
        """Close the unread tabs' episodes and run the page's sweepers; after the page was used, give the memory
        its events freed back to the system."""
        for tab in unread:
            self.close_tab(tab)
        for sweep in self.sweepers:
            sweep(now)
        if now - self.last_event_at < SWEEP_EVERY_S * 2 or unread:
            return_free_memory()


def bound_visitors(
    blocks: gr.Blocks, sweepers: list[Callable[[float], object]], close_tab: Callable[[str], object]
) -> gr.Blocks:
    """Make `blocks`' queue a VisitorQueue (after `quiet_when_idle`: the instance keeps its state). Each of
    `sweepers` is called with the monotonic time every SWEEP_EVERY_S, in a thread (the page's idle tabs);
    `close_tab` closes the episode of a tab, by its session hash, that left its results unread."""
    queue = blocks._queue
    queue.__class__ = VisitorQueue
    assert isinstance(queue, VisitorQueue)  # noqa: S101 - for the type checker
    queue.install(sweepers, close_tab)
    return blocks
