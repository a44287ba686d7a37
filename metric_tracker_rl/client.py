"""WebSocket client of an episode session on the server, which a dropped connection can come back to.

The client opens its session on the server first (`openenv/session/create` on `POST /mcp`) and attaches its socket
to it (`/ws?session_id=...`): the session, and the episode in it, then outlive the socket for as long as the server
keeps an idle session (SESSION_TIMEOUT_S). A step whose connection drops (a reply that never came, a broken
connection) attaches a new socket to the same session and sends the step again under the same `step_id`: the server
stopped the step when its socket closed, or answers the one it finished, never running it twice. Only when the
session itself is gone (the server restarted, or closed the idle session) or out of reach (a session belongs to the
address that created it, and the client's address changed) is the episode lost: `SessionLost`.
Opt-in (`resume_sessions=True`). A server that offers no HTTP sessions is used as before: one socket, one session;
so are replicas behind a balancer without affinity, where the socket may reach another replica than the one that
made the session (a reset that finds its new session unknown falls back to plain sockets).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any
from urllib.parse import quote

import httpx
from openenv.core.client_types import StepResult
from openenv.core.env_client import EnvClient
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from metric_tracker_rl.compat.openenv import (
    SESSION_CLOSE_METHOD,
    SESSION_CREATE_METHOD,
    SESSION_QUERY_PARAMETER,
    UNKNOWN_SESSION,
    client_http_options,
    client_socket,
    client_ws_url,
    set_client_ws_url,
    take_client_socket,
)
from metric_tracker_rl.models import MetricTrackerRlAction, MetricTrackerRlObservation, MetricTrackerRlState
from metric_tracker_rl.reconnect import GOING_AWAY, SessionLost, backoff_waits, describe

RESUME_DEADLINE_S = 120.0  # how long a step tries to come back to its session after its connection dropped
# What a dropped connection raises in a step: the socket's end, a reply that never came, a failed reconnect.
DROPPED = (ConnectionClosed, ConnectionError, TimeoutError, asyncio.TimeoutError, OSError)


class MetricTrackerRlEnv(EnvClient[MetricTrackerRlAction, MetricTrackerRlObservation, MetricTrackerRlState]):
    """`await env.reset(task_id=..., seed=...)`, `await env.step(action)`; `.sync()` for blocking use.

    A closed connection is reopened by the next call, which then lands on a new session: `sessions_opened`
    counts them. An episode lives in the session its reset reached, so a step after that session's connection
    closed (a server restart, a replica gone, an idle session closed, a reply that timed out) is not sent to a
    new session, which has no episode: it raises `SessionLost`, saying what ended the session, until the next
    reset starts a new episode."""

    sessions_opened = 0
    # Open a session that outlives its socket (opt-in: behind replicas without session affinity a socket may reach
    # another replica than its session's). False: one socket is one session.
    resume_sessions = False
    resume_deadline_s = RESUME_DEADLINE_S
    resumed = 0  # times a step came back to its session on a new socket
    _session_id: str | None = None  # the server-side session the socket attaches to, when the server offers them
    _plain_ws_url: str | None = None
    _step_number = 0
    _episode_socket: Any = None  # the connection whose session holds the episode (set by a successful reset)
    _loss: SessionLost | None = None  # why that session is gone, once a step found out (read only once)

    def __init__(self, *args: Any, resume_sessions: bool | None = None, **kwargs: Any) -> None:
        """`resume_sessions` (None: the class's default) chooses a session a dropped connection comes back to; the
        TRL class, inference.py and Inspect pass ClientSettings.resume_sessions (METRIC_TRACKER_RESUME_SESSIONS)."""
        super().__init__(*args, **kwargs)
        if resume_sessions is not None:
            self.resume_sessions = resume_sessions

    async def _connect_async(self) -> MetricTrackerRlEnv:
        before = client_socket(self)
        if before is None or before.state in (State.CLOSING, State.CLOSED):
            await self._open_session()
        await super()._connect_async()
        if client_socket(self) is not before and self._session_id is None:
            self.sessions_opened += 1
        return self

    async def _open_session(self) -> None:
        """Open a server-side session for the socket to attach to, once (a server without them: plain sockets)."""
        if not self.resume_sessions or self._session_id is not None or client_ws_url(self) is None:
            return
        self._plain_ws_url = self._plain_ws_url or client_ws_url(self)
        assert self._plain_ws_url is not None
        http_url = self._plain_ws_url.replace("ws", "http", 1).removesuffix("/ws") + "/mcp"
        timeout, headers = client_http_options(self)
        try:
            async with httpx.AsyncClient(timeout=timeout, headers=headers) as http:
                answer = (await http.post(http_url, json={"jsonrpc": "2.0", "id": 1,
                                                          "method": SESSION_CREATE_METHOD})).json()
        except (httpx.HTTPError, ValueError):
            return  # no server to ask yet: the socket's connect says why
        session_id = (answer.get("result") or {}).get("session_id") if isinstance(answer, dict) else None
        if not isinstance(session_id, str):
            self.resume_sessions = False  # a server without HTTP sessions (or full: the socket is refused alike)
            return
        self._session_id = session_id
        self.sessions_opened += 1
        set_client_ws_url(self, f"{self._plain_ws_url}?{SESSION_QUERY_PARAMETER}={quote(session_id)}")

    async def _close_session(self) -> None:
        """Close the server-side session (the client is done with it), best effort."""
        session_id, self._session_id = self._session_id, None
        if session_id is None or self._plain_ws_url is None:
            return
        set_client_ws_url(self, self._plain_ws_url)
        http_url = self._plain_ws_url.replace("ws", "http", 1).removesuffix("/ws") + "/mcp"
        timeout, headers = client_http_options(self)
        with contextlib.suppress(httpx.HTTPError, ValueError):
            async with httpx.AsyncClient(timeout=timeout, headers=headers) as http:
                await http.post(http_url, json={"jsonrpc": "2.0", "id": 1, "method": SESSION_CLOSE_METHOD,
                                                "params": {"session_id": session_id}})

    async def close(self) -> None:
        await super().close()
        await self._close_session()

    async def _reset_async(self, **kwargs: Any) -> StepResult[MetricTrackerRlObservation]:
        try:
            result = await super()._reset_async(**kwargs)
        except DROPPED:  # the socket broke: a reset is sent again whole on a new one (it starts the episode anew)
            if self._session_id is None:
                raise
            await self._drop_socket()
            result = await self._reset_on_a_live_session(**kwargs)
        except RuntimeError as error:
            if self._session_id is None or UNKNOWN_SESSION not in str(error):
                raise
            self._forget_session()
            result = await self._reset_on_a_new_session(**kwargs)
        if result.observation.status != "error":
            self._episode_socket, self._loss = client_socket(self), None
        elif client_socket(self) is not self._episode_socket:
            self._episode_socket, self._loss = None, None  # refused on a new session: there is no episode to lose
        return result

    async def _step_async(self, action: MetricTrackerRlAction, **kwargs: Any) -> StepResult[MetricTrackerRlObservation]:
        if self._session_id is not None and self._episode_socket is not None:
            return await self._resumable_step(action, **kwargs)
        self._loss = self._loss or await self._lost_session()
        if self._loss is not None:
            raise self._loss
        return await super()._step_async(action, **kwargs)

    async def _resumable_step(self, action: MetricTrackerRlAction, **kwargs: Any
                              ) -> StepResult[MetricTrackerRlObservation]:
        """The step, numbered, sent again on a new socket attached to the same session after a drop, until
        `resume_deadline_s` (then, or when the session is gone, SessionLost)."""
        self._step_number += 1
        numbered = action.model_copy(update={"step_id": self._step_number})
        started, waits = time.monotonic(), backoff_waits()
        while True:
            try:
                result = await super()._step_async(numbered, **kwargs)
                self._episode_socket = client_socket(self)
                return result
            except RuntimeError as error:  # the server's error frame: a session it no longer holds
                if UNKNOWN_SESSION not in str(error):
                    raise
                self._forget_session()
                raise SessionLost(f"the session that held this episode is gone: the server no longer holds it "
                                  f"({describe(error)}). The episode and its steps are lost; call reset() to start "
                                  "a new episode.", None) from error
            except DROPPED as error:
                wait = next(waits)
                if time.monotonic() - started + wait > self.resume_deadline_s:
                    raise SessionLost(f"the connection to this episode's session dropped and could not be attached "
                                      f"again within {self.resume_deadline_s:.0f} s ({describe(error)}). Call reset() "
                                      "to start a new episode.", None) from error
                await self._drop_socket()
                await asyncio.sleep(wait)
                self.resumed += 1

    async def _reset_on_a_live_session(self, **kwargs: Any) -> StepResult[MetricTrackerRlObservation]:
        """A reset on a new socket attached to the session, or on a new session if the server no longer holds it."""
        try:
            return await super()._reset_async(**kwargs)
        except RuntimeError as error:  # the session is gone (a server restart, an idle session closed)
            if UNKNOWN_SESSION not in str(error):
                raise
            self._forget_session()
            return await self._reset_on_a_new_session(**kwargs)

    async def _reset_on_a_new_session(self, **kwargs: Any) -> StepResult[MetricTrackerRlObservation]:
        """A reset on a session made for it; if the socket finds even that one unknown (replicas behind a balancer
        without affinity: the socket reached another replica), on plain sockets from then on."""
        try:
            return await super()._reset_async(**kwargs)
        except RuntimeError as error:
            if self._session_id is None or UNKNOWN_SESSION not in str(error):
                raise
            self._forget_session()
            self.resume_sessions = False
            return await super()._reset_async(**kwargs)

    def _forget_session(self) -> None:
        """The server no longer holds the session: the next connection opens a new one."""
        self._session_id, self._episode_socket = None, None
        take_client_socket(self)
        if self._plain_ws_url is not None:
            set_client_ws_url(self, self._plain_ws_url)

    async def _drop_socket(self) -> None:
        """Close the current socket (the server then stops a step it still runs for it); the next send attaches a
        new one to the same session."""
        socket = take_client_socket(self)
        if socket is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(socket.close(), 5)

    async def _lost_session(self) -> SessionLost | None:
        """Why the episode's session is gone, or None while its connection is open (or no reset started one)."""
        held = self._episode_socket
        if held is None or (held is client_socket(self) and held.state not in (State.CLOSING, State.CLOSED)):
            return None
        code, reason = held.close_code, held.close_reason
        if code == GOING_AWAY:
            how = f"the server closed it because it is stopping ({reason or 'code 1001'})"
        elif code is not None:
            how = f"its connection was closed (code {code}{': ' + reason if reason else ''})"
        else:
            how = "its connection was dropped (a reply timed out, or the connection broke)"
        said = await self._last_words(held)
        return SessionLost(f"the session that held this episode is gone: {how}.{said} The episode and its steps are "
                           "lost; call reset() to start a new episode (this client connects again by itself).", code)

    @staticmethod
    async def _last_words(held: Any) -> str:
        """An error the server sent just before it closed the session (why it closed it), if it is still unread."""
        if held.state is not State.CLOSED:
            return ""
        with contextlib.suppress(Exception):  # nothing queued: the connection ends with ConnectionClosed
            reply = json.loads(await asyncio.wait_for(held.recv(), timeout=0.1))
            if reply.get("type") == "error":
                return f" The server said: {reply['data']['message']}"
        return ""

    def _step_payload(self, action: MetricTrackerRlAction) -> dict[str, Any]:
        return action.model_dump(mode="json", exclude_none=True)

    def _parse_result(self, payload: dict[str, Any]) -> StepResult[MetricTrackerRlObservation]:
        observation = MetricTrackerRlObservation.model_validate(
            {**payload.get("observation", {}), "reward": payload.get("reward"), "done": payload.get("done", False)}
        )
        return StepResult(observation=observation, reward=payload.get("reward"), done=bool(payload.get("done")))

    def _parse_state(self, payload: dict[str, Any]) -> MetricTrackerRlState:
        return MetricTrackerRlState.model_validate(payload)
