"""A debugger tab's episode: its own WebSocket session with this server, and the read-only sessions of the same
episode that read charts and queries without spending the tab's steps.

Every browser tab owns a `TabSession` (kept in `gr.State`), so two tabs never share an episode and a person sees
exactly what an agent gets.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr
from websockets.exceptions import WebSocketException
from websockets.protocol import State

from metric_tracker_rl import MetricTrackerRlAction, MetricTrackerRlEnv
from metric_tracker_rl.analysis_tools.registry import MAX_PAGE_ROWS
from metric_tracker_rl.catalog.published import COUNT_DIFFICULTIES
from metric_tracker_rl.models import MetricTrackerRlObservation
from metric_tracker_rl.serving.debugger import charts
from metric_tracker_rl.serving.debugger import cuboid as cuboids

BUSY_MESSAGE = "this tab is still busy with its previous action: wait for its result, then try again"
CHART_SESSION_STEPS = 500  # the chart session reads every page and every day's hours (the budget's maximum)
QUERY_PAGE_ROWS = MAX_PAGE_ROWS  # a read-only query's page (the SQL tool's largest)
TABS_PER_ADDRESS = 16  # open tabs of one address; a new one closes its least recently used
OPEN_TABS = 128  # open tabs of every address together: the debugger's share of the server's memory
TAB_IDLE_S = 900.0  # a tab without an action this long is closed (the server's default SESSION_TIMEOUT_S)


def own_base_url(request: gr.Request, self_url: str | None) -> str:
    """The address of this server as the tab's own request reached it: the local socket the request arrived
    on (not its Host header, which names a proxy on a Space), so however the server was started and on
    whatever port, the debugger finds its API. `self_url` (METRIC_TRACKER_SELF_URL) overrides it."""
    if self_url:
        return self_url
    if request.request is None:
        raise DebuggerError("the page's request did not reach the server")
    host, port = request.request.scope["server"]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def browser_address(request: gr.Request) -> str | None:
    """The person's address, forwarded with the tab's sessions so the per-client session cap counts them."""
    client = getattr(request, "client", None)
    return getattr(client, "host", None) or None


class ForwardingClient(MetricTrackerRlEnv):
    """The tab's WebSocket client: names the browser in X-Forwarded-For. The server trusts the header only
    from an address named in FORWARDED_ALLOW_IPS (uvicorn's setting; loopback by default), i.e. when this
    client connects from the server's own machine. Its socket is its session (no session that outlives it): the
    connection is the server's own, on loopback, and a tab's session must end with the tab."""

    resume_sessions = False

    def __init__(self, base_url: str, forwarded_for: str | None, message_timeout_s: float) -> None:
        headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else None
        super().__init__(base_url=base_url, message_timeout_s=message_timeout_s, headers=headers)
        self.forwarded_for = forwarded_for


class DebuggerError(RuntimeError):
    """Something the page reports instead of raising: a server error reply or a lost session."""


CONNECTION_ERRORS = (ConnectionError, OSError, TimeoutError, WebSocketException)


class TabSession:
    """One browser tab's episode: a WebSocket client plus what the page derived from its observations."""

    def __init__(self, base_url: str, forwarded_for: str | None) -> None:
        self.base_url = base_url
        self.forwarded_for = forwarded_for
        self._client: Any = None
        self._lock = threading.Lock()
        self._turn = threading.RLock()  # one action of the tab at a time (reentrant: a reset reads queries)
        self.methods: dict[str, dict[str, Any]] = {}
        self.observation: MetricTrackerRlObservation | None = None
        self.config: dict[str, Any] = {}  # the episode's visible config; only the reset observation carries it
        self.charts: charts.ChartData | None = None
        self.read_settings: dict[str, Any] = {}  # the reset settings a read-only session of the same episode takes
        self.dimensions: dict[str, list[str]] = {}  # a segmented episode's dimension values (the cuboid controls)
        self.resets = 0  # successful resets of this tab; the charts carry it so a redraw can be told apart
        self.last_used = time.monotonic()

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        """The tab's one action at a time. An event that arrives while another of the same tab runs is refused at
        once instead of waiting: a tab cannot pile up work (or hold the page's threads) behind its own."""
        if not self._turn.acquire(blocking=False):
            raise DebuggerError(BUSY_MESSAGE)
        self.last_used = time.monotonic()
        try:
            yield
        finally:
            self._turn.release()

    def _connected(self) -> Any:
        if self._client is None:
            self._client = ForwardingClient(self.base_url, self.forwarded_for, message_timeout_s=60.0).sync()
            self._client.connect()
        return self._client

    def _call(self, method: str, *args: Any, **kwargs: Any) -> MetricTrackerRlObservation:
        with self._lock:
            try:
                result = getattr(self._connected(), method)(*args, **kwargs)
            except CONNECTION_ERRORS as exc:
                # The server restarted or reaped the idle session: its episode is gone.
                self._drop_client()
                self.observation = None
                raise DebuggerError(f"the session with the server ended ({exc}); press Reset to start again") from exc
            except RuntimeError as exc:  # an error reply: the session stays open, unless it was refused
                if not self._socket_open() or (method == "reset" and self.observation is None):
                    self._drop_client()  # a refused or failed first reset leaves nothing to keep (nor a thread)
                raise DebuggerError(str(exc)) from exc
        self.observation = result.observation
        return result.observation

    def reset(self, **kwargs: Any) -> MetricTrackerRlObservation:
        with self.turn():
            return self._reset(**kwargs)

    def _reset(self, **kwargs: Any) -> MetricTrackerRlObservation:
        observation = self._call("reset", **kwargs)
        if observation.status != "error":
            self.config = observation.config
            self.methods = {m.name: m.model_dump() for m in observation.available_methods}
            # The same episode again: the seed the server chose, if the form left it out.
            self.read_settings = {**kwargs, "seed": observation.config.get("seed", kwargs.get("seed"))}
            if self.held_out:  # a read-only session would draw another episode (layout.HELD_OUT_NOTE)
                self.charts, self.dimensions = None, {}
                self.resets += 1
                return observation
            try:
                # One read-only session for all of the reset's reads: opening a second right after closing the
                # first could find the first's place still held (the server frees it a moment after the socket
                # closes), so a visitor with one place left could not reset.
                with self.reader() as read:
                    self.charts = charts.read_chart_data(read, self.holds_counts)
                    # The cuboid page reads the count tables a tier of raw events does not have.
                    fields = cuboids.episode_fields(observation.segments) if self.holds_counts else ()
                    self.dimensions = (
                        cuboids.dimension_values(query_rows(read, cuboids.dimension_values_query(fields)), fields)
                        if fields
                        else {}
                    )
            except (*CONNECTION_ERRORS, RuntimeError) as exc:
                raise DebuggerError(f"the episode is ready but its charts could not be read: {exc}") from exc
            self.resets += 1
        return observation

    @property
    def held_out(self) -> bool:
        return bool(self.config.get("held_out"))

    @property
    def holds_counts(self) -> bool:
        """Whether the tab's episode holds count tables (a tier of raw events has none, and no generators)."""
        return self.config.get("difficulty") in COUNT_DIFFICULTIES

    @contextlib.contextmanager
    def reader(self) -> Iterator[Callable[[MetricTrackerRlAction], MetricTrackerRlObservation]]:
        """A read-only session of the tab's episode (the same settings, the chart budget), as a step function: it
        reads without spending the tab's steps. The tab holds at most one at a time, beside its episode. None in
        held-out mode, where a reset of the same settings draws another episode."""
        if self.held_out:
            raise DebuggerError("held-out mode: a read-only session would read another episode than this tab's")
        with self.turn(), ForwardingClient(self.base_url, self.forwarded_for, message_timeout_s=60.0).sync() as env:
            env.reset(**{**self.read_settings, "max_steps": CHART_SESSION_STEPS})
            yield lambda action: env.step(action).observation

    def read_query(self, sql: str) -> list[dict[str, Any]]:
        """Every row of a SQL query on the episode, read in a read-only session of it (no step of the tab's)."""
        with self.reader() as read:
            return query_rows(read, sql)

    def step(self, action: MetricTrackerRlAction) -> MetricTrackerRlObservation:
        if self.observation is None:
            raise DebuggerError("no episode in this tab; press Reset")
        with self.turn():
            return self._call("step", action)

    def _socket_open(self) -> bool:
        socket = getattr(getattr(self._client, "async_client", None), "_ws", None)  # OpenEnv's WebSocket
        return socket is not None and socket.state is State.OPEN

    def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):  # the connection may already be gone; nothing left to release
                client.close()

    def close(self) -> None:
        """Release the tab's session and what was derived from its episode (its next action says to reset)."""
        with self._lock:
            self._drop_client()
            self.observation, self.charts, self.methods, self.dimensions = None, None, {}, {}


class OpenTabs:
    """The tabs with a `TabSession`, by their session hash: at most TABS_PER_ADDRESS of one address and OPEN_TABS
    in all (making room closes the least recently used), and none left without an action for TAB_IDLE_S, so what
    the debugger holds (a connection, a thread, an episode's charts per tab) has a ceiling and comes back."""

    def __init__(self) -> None:
        self.tabs: OrderedDict[str, TabSession] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, session_hash: str) -> TabSession | None:
        with self.lock:
            return self.tabs.get(session_hash)

    def keep(self, session_hash: str, tab: TabSession) -> None:
        """Keep `tab` as the most recently used (added if it is new, or was closed to make room)."""
        with self.lock:
            if self.tabs.get(session_hash) is tab:
                self.tabs.move_to_end(session_hash)
                return
            self.tabs[session_hash] = tab
            same_address = [h for h, t in self.tabs.items() if t.forwarded_for == tab.forwarded_for]
            closing = same_address[: max(len(same_address) - TABS_PER_ADDRESS, 0)]
            closing += list(self.tabs)[: max(len(self.tabs) - len(closing) - OPEN_TABS, 0)]
            leaving = [self.tabs.pop(h) for h in dict.fromkeys(closing)]
        for old in leaving:
            old.close()

    def pop(self, session_hash: str) -> TabSession | None:
        with self.lock:
            return self.tabs.pop(session_hash, None)

    def close(self, session_hash: str) -> None:
        close_session(self.pop(session_hash))

    def close_all(self) -> None:
        with self.lock:
            leaving = list(self.tabs.values())
            self.tabs.clear()
        for old in leaving:
            old.close()

    def close_idle(self, now: float) -> None:
        with self.lock:
            leaving = [self.tabs.pop(h) for h, t in list(self.tabs.items()) if now - t.last_used > TAB_IDLE_S]
        for old in leaving:
            old.close()


def query_rows(read: Callable[[MetricTrackerRlAction], MetricTrackerRlObservation], sql: str) -> list[dict[str, Any]]:
    """Every row of a SQL query, page by page, through the step function of a read-only session."""
    rows: list[dict[str, Any]] = []
    offset: int | None = 0
    while offset is not None:
        observation = read(
            MetricTrackerRlAction(
                analysis_method="query", analysis_args={"sql": sql, "limit": QUERY_PAGE_ROWS, "offset": offset}
            )
        )
        if observation.status != "ok" or observation.analysis_result is None:
            raise RuntimeError(f"query failed: {observation.message}")
        rows += observation.analysis_result["rows"]
        offset = observation.analysis_result.get("next_offset")
    return rows


def close_session(session: TabSession | None) -> None:
    """Gradio's callback when a tab's state is deleted (the tab closed or its state expired)."""
    if session is not None:
        session.close()
