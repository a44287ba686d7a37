"""WebSocket client of an episode session on the server, which a dropped connection can come back to.

The client opens its session on the server first (`openenv/session/create` on `POST /mcp`) and attaches its socket
to it (`/ws?session_id=...`): the session, and the episode in it, then outlive the socket for as long as the server
keeps an idle session (SESSION_TIMEOUT_S). A step whose connection drops (a reply that never came, a broken
connection) attaches a new socket to the same session and sends the step again under the same `step_id`: the server
stopped the step when its socket closed, or answers the one it finished, never running it twice. Only when the
session itself is gone (the server restarted, or closed the idle session) or out of reach (a session belongs to the
address that created it, and the client's address changed) is the episode lost: `SessionLost`.

On by default (`resume_sessions=False` turns it off). Behind replicas, the session's socket must reach the replica
that made the session: the client keeps the cookies the session's create answer set (a proxy's affinity cookie, as
deploy/haproxy.cfg inserts) and sends them with the socket's handshake and the session's close. Behind a balancer
without affinity, a socket that reaches another replica finds the session unknown: the client closes the session
(asking again until the replica that holds it answers) and goes on with plain sockets, one socket one session, as
it does with a server that offers no HTTP sessions.
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
    CAPACITY_CODE,
    SESSION_CLOSE_METHOD,
    SESSION_CREATE_METHOD,
    SESSION_QUERY_PARAMETER,
    STILL_ATTACHED,
    UNKNOWN_SESSION,
    client_http_options,
    client_socket,
    client_ws_url,
    close_confirmed,
    created_session_id,
    is_capacity_error_body,
    set_client_headers,
    set_client_ws_url,
    take_client_socket,
)
from metric_tracker_rl.models import MetricTrackerRlAction, MetricTrackerRlObservation, MetricTrackerRlState
from metric_tracker_rl.reconnect import GOING_AWAY, SessionLost, backoff_waits, describe

RESUME_DEADLINE_S = 120.0  # how long a step tries to come back to its session after its connection dropped
# What a dropped connection raises in a step: the socket's end, a reply that never came, a failed reconnect.
DROPPED = (ConnectionClosed, ConnectionError, TimeoutError, asyncio.TimeoutError, OSError)
# Closes sent for one session until the server that holds it answers: a balancer without affinity may send each
# to another replica, which does not know the session.
CLOSE_TRIES = 4


def with_session_cookies(headers: dict[str, str] | None, cookies: httpx.Cookies) -> dict[str, str] | None:
    """The client's headers plus the cookies a session's create answer set: a proxy's affinity cookie routes the
    session's socket and close to the replica that made the session."""
    new = {cookie.name: cookie.value for cookie in cookies.jar if cookie.value is not None}
    if not new:
        return headers
    own = [
        pair.strip()
        for name, value in (headers or {}).items()
        if name.lower() == "cookie"
        for pair in value.split(";")
        if pair.strip()
    ]
    kept = [pair for pair in own if pair.split("=", 1)[0] not in new]  # a new value replaces one of the same name
    others = {name: value for name, value in (headers or {}).items() if name.lower() != "cookie"}
    return {**others, "Cookie": "; ".join([*kept, *(f"{name}={value}" for name, value in new.items())])}


def refused_for_now(response: httpx.Response, answer: Any) -> bool:
    """Whether a session's create was refused by a server that offers sessions (full, or stopping: a later one may
    succeed), not by one without them."""
    error = answer.get("error") if isinstance(answer, dict) else None
    return (
        response.status_code == 503
        or is_capacity_error_body(error)
        or (
            isinstance(error, dict)
            and isinstance(error.get("data"), dict)
            and error["data"].get("code") == CAPACITY_CODE
        )
    )


class MetricTrackerRlEnv(EnvClient[MetricTrackerRlAction, MetricTrackerRlObservation, MetricTrackerRlState]):
    """`await env.reset(task_id=..., seed=...)`, `await env.step(action)`; `.sync()` for blocking use.

    A closed connection is reopened by the next call: attached to the same session while the server holds it
    (see the module docstring), else on a new session (`sessions_opened` counts them). An episode lives in the
    session its reset reached, so a step after that session is gone (a server restart, a replica gone, an idle
    session closed; with `resume_sessions=False`, any closed connection) is not sent to a new session, which has
    no episode: it raises `SessionLost`, saying what ended the session, until the next reset starts a new
    episode."""

    sessions_opened = 0
    # Open a session that outlives its socket (see the module docstring). False: one socket is one session.
    resume_sessions = True
    resume_deadline_s = RESUME_DEADLINE_S
    resumed = 0  # times a step came back to its session on a new socket
    _session_id: str | None = None  # the server-side session the socket attaches to, when the server offers them
    _reached = False  # a socket attached to that session was answered (so some server held it)
    _connecting = False
    _plain_ws_url: str | None = None
    _step_number = 0
    _episode_socket: Any = None  # the connection whose session holds the episode (set by a successful reset)
    _loss: SessionLost | None = None  # why that session is gone, once a step found out (read only once)

    def __init__(self, *args: Any, resume_sessions: bool | None = None, **kwargs: Any) -> None:
        """`resume_sessions` (None: the class's default, on) chooses a session a dropped connection comes back
        to; the TRL class, inference.py and Inspect pass ClientSettings.resume_sessions
        (METRIC_TRACKER_RESUME_SESSIONS)."""
        super().__init__(*args, **kwargs)
        if resume_sessions is not None:
            self.resume_sessions = resume_sessions
        self._plain_headers = client_http_options(self)[1]

    async def _connect_async(self) -> MetricTrackerRlEnv:
        before = client_socket(self)
        if before is None or before.state in (State.CLOSING, State.CLOSED):
            await self._open_session()
        self._connecting = True
        try:
            await super()._connect_async()
        finally:
            self._connecting = False
        if client_socket(self) is not before and self._session_id is None:
            self.sessions_opened += 1
        return self

    def _mcp_url(self) -> str:
        assert self._plain_ws_url is not None
        return self._plain_ws_url.replace("ws", "http", 1).removesuffix("/ws") + "/mcp"

    async def _open_session(self) -> None:
        """Open a server-side session for the socket to attach to, once (a server without them: plain sockets)."""
        if not self.resume_sessions or self._session_id is not None or client_ws_url(self) is None:
            return
        self._plain_ws_url = self._plain_ws_url or client_ws_url(self)
        timeout = client_http_options(self)[0]
        try:
            async with httpx.AsyncClient(timeout=timeout, headers=self._plain_headers) as http:
                response = await http.post(
                    self._mcp_url(), json={"jsonrpc": "2.0", "id": 1, "method": SESSION_CREATE_METHOD}
                )
                answer = response.json()
        except (httpx.HTTPError, ValueError):
            return  # no server to ask yet: the socket's connect says why
        session_id = created_session_id(answer) if isinstance(answer, dict) else None
        if session_id is None:
            # A server without HTTP sessions: plain sockets. A full or stopping one refuses the socket alike, and
            # the next connect asks again.
            self.resume_sessions = refused_for_now(response, answer)
            return
        self._session_id, self._reached = session_id, False
        self.sessions_opened += 1
        set_client_headers(self, with_session_cookies(self._plain_headers, response.cookies))
        set_client_ws_url(self, f"{self._plain_ws_url}?{SESSION_QUERY_PARAMETER}={quote(session_id)}")

    async def _close_session(self) -> None:
        """Forget the server-side session and close it, best effort: asked again (CLOSE_TRIES at most, each on a
        connection of its own) until the server that holds it answers, so that no replica keeps it holding a place
        of this client when a balancer without affinity routed a request elsewhere."""
        session_id, (timeout, headers) = self._session_id, client_http_options(self)
        self._forget_session()
        if session_id is None or self._plain_ws_url is None:
            return
        request = {"jsonrpc": "2.0", "id": 1, "method": SESSION_CLOSE_METHOD, "params": {"session_id": session_id}}
        for _ in range(CLOSE_TRIES):
            try:
                async with httpx.AsyncClient(timeout=timeout, headers=headers) as http:
                    if close_confirmed((await http.post(self._mcp_url(), json=request)).json()):
                        return
            except (httpx.HTTPError, ValueError):
                return  # no server to ask: it is gone, or reaps the unused session itself

    async def _close_async(self) -> None:
        """The socket, then the session (`close()` and the sync client's `close()` both end here)."""
        await super()._close_async()
        if not self._connecting:  # OpenEnv closes the client when a connect fails: the session waits to be attached
            await self._close_session()

    async def _reset_async(self, **kwargs: Any) -> StepResult[MetricTrackerRlObservation]:
        try:
            result = await super()._reset_async(**kwargs)
        except DROPPED:  # the socket broke: a reset is sent again whole on a new one (it starts the episode anew)
            if self._session_id is None:
                raise
            await self._drop_socket()
            result = await self._reset_on_the_session(**kwargs)
        except RuntimeError as error:
            if self._session_id is None or UNKNOWN_SESSION not in str(error):
                raise
            result = await self._reset_after_unknown(**kwargs)
        self._reached = self._session_id is not None
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

    async def _resumable_step(
        self, action: MetricTrackerRlAction, **kwargs: Any
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
            except RuntimeError as error:  # the server's error frame: a session it no longer holds, or still attached
                if STILL_ATTACHED in str(error):
                    await self._wait_to_attach(error, started, next(waits))
                    continue
                if UNKNOWN_SESSION not in str(error):
                    raise
                self._loss = await self._session_gone(error)
                await self._close_session()
                raise self._loss from error
            except DROPPED as error:
                await self._wait_to_attach(error, started, next(waits))

    async def _wait_to_attach(self, error: BaseException, started: float, wait: float) -> None:
        """After a drop (or an attachment the server refused while it still held the dropped socket): wait `wait`
        seconds to attach a new socket, or SessionLost past `resume_deadline_s`."""
        if time.monotonic() - started + wait > self.resume_deadline_s:
            raise SessionLost(
                f"the connection to this episode's session dropped and could not be attached "
                f"again within {self.resume_deadline_s:.0f} s ({describe(error)}). Call reset() "
                "to start a new episode.",
                None,
            ) from error
        await self._drop_socket()
        await asyncio.sleep(wait)
        self.resumed += 1

    async def _session_gone(self, error: RuntimeError) -> SessionLost:
        """Why the episode is lost when the server no longer holds its session: with what the server said when it
        closed the episode's last socket (an idle session's notice), if it said anything. Every step raises it until
        a reset."""
        held = self._episode_socket
        said = await self._last_words(held) if held is not None else ""
        return SessionLost(
            f"the session that held this episode is gone: the server no longer holds it "
            f"({describe(error)}).{said} The episode and its steps are lost; call reset() to start a "
            "new episode.",
            None if held is None else held.close_code,
        )

    async def _reset_on_the_session(self, **kwargs: Any) -> StepResult[MetricTrackerRlObservation]:
        """A reset on a socket attached to the client's session (see `_reset_after_unknown` if its server does not
        hold it)."""
        try:
            return await super()._reset_async(**kwargs)
        except RuntimeError as error:
            if self._session_id is None or UNKNOWN_SESSION not in str(error):
                raise
            return await self._reset_after_unknown(**kwargs)

    async def _reset_after_unknown(self, **kwargs: Any) -> StepResult[MetricTrackerRlObservation]:
        """The server the socket reached does not hold the session. If a socket of it was answered before, the
        server forgot it (a restart, an idle session closed): the reset goes to a new session. If none ever was, a
        balancer without affinity sent the socket to another replica than the session's: plain sockets from then
        on. Either way the session is closed first, so that it holds no place on a replica that still has it."""
        if not self._reached:
            self.resume_sessions = False
        await self._close_session()
        return await self._reset_on_the_session(**kwargs)

    def _forget_session(self) -> None:
        """Leave the session: the next connection opens a new one (or a plain socket)."""
        self._session_id, self._episode_socket, self._reached = None, None, False
        take_client_socket(self)
        set_client_headers(self, self._plain_headers)
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
        return SessionLost(
            f"the session that held this episode is gone: {how}.{said} The episode and its steps are "
            "lost; call reset() to start a new episode (this client connects again by itself).",
            code,
        )

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
